"""A small HTTP client for Ollama's native API, on httpx.

Knows nothing of chats, conversations or JSON-RPC: it turns a `llm.ChatRequest`
into an /api/chat stream of `llm.ChatChunk`s and reports failures as
`llm.BackendError` subclasses.

Layers: `host` (where to connect), `wire` (JSON shapes), `ndjson` (line
splitting), `errors` (what failures mean), `client` (httpx: every endpoint,
/api/chat streamed included).

Import from those modules: the package itself imports nothing, so that reading
an address (`host`) does not load httpx, which the daemon avoids until the
editor has its `initialize` answer.
"""
