"""A small, fast HTTP client for Ollama's native API.

Knows nothing of chats, conversations or JSON-RPC: it turns a `llm.ChatRequest`
into an /api/chat stream of `llm.ChatChunk`s and reports failures as
`llm.BackendError` subclasses.

Layers: `host` (where to connect), `wire` (JSON shapes), `ndjson` (line
splitting), `errors` (what failures mean), `client` (httpx, and the choice of
path), `stream` with `http1` (the /api/chat fast path over raw asyncio connections).

Import from those modules: the package itself imports nothing, so that reading
an address (`host`) does not load httpx, which the daemon avoids until the
editor has its `initialize` answer.
"""
