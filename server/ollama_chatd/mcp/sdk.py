"""The official MCP SDK (`mcp` on PyPI), imported only when a server is configured.

Importing it takes about 0.8 s (pydantic models for the whole protocol), so it
happens on a worker thread the first time a server starts: the event loop keeps
answering the editor meanwhile, and a session without MCP servers never pays.
"""

from __future__ import annotations

import asyncio
import importlib
from types import SimpleNamespace

_MODULES = {
    "session": "mcp.client.session",
    "stdio": "mcp.client.stdio",
    "http": "mcp.client.streamable_http",
    "http_utils": "mcp.shared._httpx_utils",
    "exceptions": "mcp.shared.exceptions",
    "types": "mcp_types",
}
_loaded: SimpleNamespace | None = None


async def load() -> SimpleNamespace:
    """The SDK's modules by short name (`sdk.session.ClientSession`, ...)."""
    global _loaded
    if _loaded is None:
        _loaded = await asyncio.to_thread(_import_all)
    return _loaded


def _import_all() -> SimpleNamespace:
    return SimpleNamespace(**{short: importlib.import_module(name) for short, name in _MODULES.items()})
