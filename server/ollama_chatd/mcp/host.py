"""The MCP servers of a session: started together, their tools offered under one name each.

A tool `t` of server `s` is offered to the model as `s__t`, with every
character outside [A-Za-z0-9_-] turned into `_` (and cut to 64 characters), in
a stable order (by that name) so that the model server's prompt cache keeps
working from turn to turn.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from ollama_chatd import llm
from ollama_chatd.mcp.config import HttpServer, ServerConfig
from ollama_chatd.mcp.connection import STOPPED, Connection, RemoteTool
from ollama_chatd.mcp.results import ToolOutput, tool_output

logger = logging.getLogger(__name__)

FIRST_TURN_WAIT = 10.0  # seconds a turn waits for servers still starting
MAX_NAME = 64  # OpenAI-style servers (llama-server, ...) refuse longer function names
_OUTSIDE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def exposed_name(server: str, tool: str) -> str:
    name = _OUTSIDE_NAME.sub("_", f"{server}__{tool}")
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]  # keeps two long names apart
    return f"{name[: MAX_NAME - 9]}_{digest}"


@attrs.frozen
class ServerStatus:
    name: str
    transport: str  # "stdio" or "http"
    state: str  # "starting", "ready" or "failed"
    tools: int
    reason: str | None


@attrs.frozen
class OfferedTool:
    name: str  # as the model sees it
    connection: Connection
    tool: RemoteTool


class McpHost:
    def __init__(
        self,
        servers: Sequence[ServerConfig],
        *,
        cwd: Path | None = None,
        on_problem: Callable[[str], None] = lambda text: None,
    ):
        """`on_problem` hears, in a sentence for the user, of a server that failed or stopped."""
        self._connections = [Connection(server, cwd, self._changed) for server in servers]
        self._on_problem = on_problem
        self._offered: dict[str, OfferedTool] = {}

    def start(self) -> None:
        """Start every server at once; returns at once (they start in the background)."""
        for connection in self._connections:
            connection.start()

    async def until_started(self, timeout: float = FIRST_TURN_WAIT) -> None:
        """Wait (at most `timeout`) for the servers still starting."""
        starting = [c.until_settled() for c in self._connections if c.state == "starting"]
        if starting:
            await asyncio.wait([asyncio.ensure_future(s) for s in starting], timeout=timeout)

    def statuses(self) -> list[ServerStatus]:
        return [
            ServerStatus(
                name=c.name,
                transport="http" if isinstance(c.config, HttpServer) else "stdio",
                state=c.state,
                tools=len(c.tools) if c.state == "ready" else 0,
                reason=c.reason,
            )
            for c in self._connections
        ]

    def specs(self) -> tuple[llm.ToolSpec, ...]:
        return tuple(
            llm.ToolSpec(offered.name, offered.tool.description, offered.tool.input_schema)
            for offered in self._offered.values()
        )

    def find(self, name: str) -> OfferedTool | None:
        return self._offered.get(name)

    async def call(self, offered: OfferedTool, arguments: dict[str, object], timeout: float) -> ToolOutput:
        """Raises ServerUnavailable or CallFailed."""
        return tool_output(await offered.connection.call(offered.tool.name, arguments, timeout))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._connections))

    def _changed(self, connection: Connection) -> None:
        if connection.state == "failed" and connection.reason != STOPPED:
            self._on_problem(f"MCP server '{connection.name}' failed: {connection.reason}")
        if connection.state == "ready":  # a restart keeps the tools it had: names stay put
            self._offered = self._index()

    def _index(self) -> dict[str, OfferedTool]:
        offered: dict[str, OfferedTool] = {}
        for connection in self._connections:
            for tool in connection.tools:
                name = exposed_name(connection.name, tool.name)
                if name in offered:
                    logger.warning("MCP tool %s of '%s' has the name of another tool; left out", tool.name, connection.name)
                    continue
                offered[name] = OfferedTool(name, connection, tool)
        return dict(sorted(offered.items()))
