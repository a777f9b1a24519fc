"""A small, fast HTTP client for Ollama's native API.

Knows nothing of chats, conversations or JSON-RPC: it turns a `llm.ChatRequest`
into an /api/chat stream of `llm.ChatChunk`s and reports failures as
`llm.BackendError` subclasses.

Layers: `host` (where to connect), `wire` (JSON shapes), `ndjson` (line
splitting), `errors` (what failures mean), `client` (httpx, and the choice of
path), `stream` with `http1` (the /api/chat fast path over raw asyncio connections).
"""

from .client import TIMEOUT, OllamaClient
from .host import DEFAULT_URL, HostChoice, HostSource, InvalidHost, parse_host, resolve_host
from .ndjson import DEFAULT_MAX_LINE_BYTES, LineSplitter, LineTooLong
from .wire import (
    ModelDetails,
    ModelSummary,
    chat_payload,
    parse_chat_line,
    parse_show,
    parse_tags,
    parse_version,
)

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_URL",
    "TIMEOUT",
    "HostChoice",
    "HostSource",
    "InvalidHost",
    "LineSplitter",
    "LineTooLong",
    "ModelDetails",
    "ModelSummary",
    "OllamaClient",
    "chat_payload",
    "parse_chat_line",
    "parse_host",
    "parse_show",
    "parse_tags",
    "parse_version",
    "resolve_host",
]
