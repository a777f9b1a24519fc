"""`ollama-chatd acp`: the chat engine as an Agent Client Protocol agent (Zed,
JetBrains IDEs, Neovim, Emacs), beside the JSON-RPC front-end in `rpc/`.

Built on the official Python SDK (`agent-client-protocol`); speaks ACP protocol
version 1. Imported only by the `acp` command, so `serve` starts without it.
"""
