"""The `ollama-chatd` command line."""
