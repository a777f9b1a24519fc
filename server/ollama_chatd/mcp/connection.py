"""One MCP server: starting it, listing its tools, calling them, restarting it after a crash.

The SDK's transports and session are context managers that must be entered and
left in one task, so each connection runs in a task of its own (`_serve`) that
holds them open until the connection is closed or breaks; calls are made from
the turn's task through the open session. Failures become `ServerUnavailable`
or `CallFailed` with a sentence for the model and the user: a server never
takes the daemon down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import attrs

from ollama_chatd import __version__
from ollama_chatd.mcp import sdk
from ollama_chatd.mcp.config import HttpServer, ServerConfig, StdioServer

logger = logging.getLogger(__name__)

State = Literal["starting", "ready", "failed"]
START_TIMEOUT = 30.0  # seconds to start, initialize and list tools (npx may download first)
MAX_RESTARTS = 3  # per server and session: a server that keeps crashing stays down
STOPPED = "stopped before it was ready: the daemon is closing"


@attrs.frozen
class RemoteTool:
    """A tool as its server describes it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    read_only: bool  # annotations.readOnlyHint: runs without asking


class ServerUnavailable(Exception):
    """The server is not running (it failed to start, or crashed and stays down)."""


class CallFailed(Exception):
    """The server could not carry out a call (a protocol error, a timeout, a crash)."""


class Connection:
    def __init__(self, config: ServerConfig, cwd: Path | None, on_change: Callable[[Connection], None]):
        self.config = config
        self.state: State = "starting"
        self.reason: str | None = None  # why it failed
        self.tools: tuple[RemoteTool, ...] = ()
        self.restarts = 0
        self._cwd = cwd
        self._on_change = on_change
        self._session: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._settled = asyncio.Event()

    @property
    def name(self) -> str:
        return self.config.name

    def start(self) -> None:
        self._set("starting")
        self._stop = asyncio.Event()
        self._settled = asyncio.Event()
        self._task = asyncio.create_task(self._serve(), name=f"mcp server {self.name}")

    async def until_settled(self) -> None:
        """Wait until the server is ready or has failed."""
        await self._settled.wait()

    async def call(self, tool: str, arguments: dict[str, Any], timeout: float) -> Any:
        """The server's `CallToolResult`; a crashed server is restarted first (a few times)."""
        mcp = await sdk.load()
        session = await self._usable_session()
        try:
            return await session.call_tool(tool, arguments, read_timeout_seconds=timeout)
        except mcp.exceptions.MCPError as error:
            raise await self._call_error(mcp, error, timeout) from None
        except OSError as error:  # an HTTP server that went away
            await self._lost(f"the connection broke: {error}")
            raise CallFailed(f"MCP server '{self.name}' could not be reached: {error}") from None

    async def close(self) -> None:
        """Stop the server (its whole process tree, for a stdio server)."""
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    # -- running the connection ------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            mcp = await sdk.load()
            async with contextlib.AsyncExitStack() as stack:
                read, write = await stack.enter_async_context(self._transport(mcp, stack))
                client_info = mcp.types.Implementation(name="ollama-chatd", version=__version__)
                session = await stack.enter_async_context(mcp.session.ClientSession(read, write, client_info=client_info))
                async with asyncio.timeout(START_TIMEOUT):
                    await session.initialize()
                    tools = await _list_tools(mcp, session)
                self._session, self.tools = session, tools
                self._set("ready")
                await self._stop.wait()
        except TimeoutError:
            self._set("failed", f"did not start within {START_TIMEOUT:g} s")
        except Exception as error:  # noqa: BLE001 - whatever a server does, the daemon goes on
            self._set("failed", self._describe(error))
        finally:
            self._session = None
            if self.state == "starting":  # cancelled while starting: the daemon is closing
                self._set("failed", STOPPED)

    def _transport(self, mcp: Any, stack: contextlib.AsyncExitStack) -> contextlib.AbstractAsyncContextManager[Any]:
        config = self.config
        if isinstance(config, StdioServer):
            # The SDK passes the server only a few variables of ours (PATH, HOME,
            # USER, ...) plus those its configuration names: never our secrets.
            parameters = mcp.stdio.StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env), cwd=self._cwd
            )
            return mcp.stdio.stdio_client(parameters, errlog=sys.stderr)
        assert isinstance(config, HttpServer)
        http_client = mcp.http_utils.create_mcp_http_client(headers=dict(config.headers))
        stack.push_async_callback(http_client.aclose)
        return mcp.http.streamable_http_client(config.url, http_client=http_client)

    def _set(self, state: State, reason: str | None = None) -> None:
        self.state, self.reason = state, reason
        if state == "ready":
            logger.info("MCP server '%s' is ready with %d tools", self.name, len(self.tools))
        elif state == "failed":
            logger.warning("MCP server '%s' failed: %s", self.name, reason)
        if state != "starting":
            self._settled.set()
        self._on_change(self)

    def _describe(self, error: BaseException) -> str:
        """One sentence for a failure, from the innermost error of a task group's group."""
        while isinstance(error, BaseExceptionGroup) and error.exceptions:
            error = error.exceptions[0]
        if isinstance(self.config, HttpServer):
            return f"cannot use {self.config.url}: {error or type(error).__name__}"
        return _describe_start(error)

    # -- calls ------------------------------------------------------------------------------

    async def _usable_session(self) -> Any:
        if self.state == "failed" and self.restarts < MAX_RESTARTS and self.reason != STOPPED:
            self.restarts += 1
            logger.info("restarting MCP server '%s' (restart %d of at most %d)", self.name, self.restarts, MAX_RESTARTS)
            await self.close()
            self.start()
        await self.until_settled()
        if self._session is None:
            raise ServerUnavailable(f"MCP server '{self.name}' is not running: {self.reason}")
        return self._session

    async def _call_error(self, mcp: Any, error: Any, timeout: float) -> CallFailed:
        code = error.code
        if code == mcp.types.REQUEST_TIMEOUT:
            return CallFailed(f"MCP server '{self.name}' did not answer within {timeout:g} s; the call was cancelled")
        if code == mcp.types.CONNECTION_CLOSED:
            await self._lost("the server closed the connection (it crashed or exited)")
            return CallFailed(f"MCP server '{self.name}' stopped during the call; it will be restarted on the next call")
        return CallFailed(f"MCP server '{self.name}' refused the call: {error}")

    async def _lost(self, reason: str) -> None:
        """The connection broke: tear it down so the next call restarts it."""
        await self.close()
        self._set("failed", reason)


async def _list_tools(mcp: Any, session: Any) -> tuple[RemoteTool, ...]:
    tools: list[RemoteTool] = []
    cursor = None
    while True:
        params = None if cursor is None else mcp.types.PaginatedRequestParams(cursor=cursor)
        listing = await session.list_tools(params=params)
        tools.extend(_remote_tool(tool) for tool in listing.tools)
        cursor = listing.next_cursor
        if not cursor:
            return tuple(tools)


def _remote_tool(tool: Any) -> RemoteTool:
    annotations = tool.annotations
    return RemoteTool(
        name=tool.name,
        description=tool.description or tool.title or tool.name,
        input_schema=tool.input_schema,
        read_only=bool(annotations and annotations.read_only_hint),
    )


def _describe_start(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return f"command not found: {error.filename or error}"
    if isinstance(error, PermissionError):
        return f"command cannot be run: {error.filename or error}"
    text = str(error) or type(error).__name__
    if "Connection closed" in text:
        return "the server exited before it finished starting (see the log for its output)"
    return text
