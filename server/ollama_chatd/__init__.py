"""ollama-chatd: chat with a local Ollama model from any editor, over stdio JSON-RPC."""

__version__ = "0.1.0"
