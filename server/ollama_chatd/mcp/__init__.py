"""MCP host: the tools of the MCP servers the user configured, offered to the model (docs/mcp.md)."""
