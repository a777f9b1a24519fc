"""An ACP session: one stored chat in one workspace (the session's cwd), with its own
engine and tools (the workspace's, acting through the client, and those of the MCP
servers the client named), its turn's events turned into `session/update`s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from acp.helpers import update_agent_message_text, update_agent_thought_text

from ollama_chatd import llm
from ollama_chatd.acp import tool_calls
from ollama_chatd.acp.client_side import FILE_TOOLS, ClientSide, client_reads
from ollama_chatd.acp.outbox import UpdateOutbox
from ollama_chatd.app import build_engine, command_tool
from ollama_chatd.config import Settings
from ollama_chatd.events import EventSink, TextDelta, ToolCallUpdate, ToolResult, ToolRunner, TurnEvent
from ollama_chatd.mcp.config import ServerConfig
from ollama_chatd.mcp.runner import with_mcp_tools
from ollama_chatd.store import ChatStore
from ollama_chatd.tools.rules import RulesFile
from ollama_chatd.tools.runner import WorkspaceTools
from ollama_chatd.tools.workspace import Folder, Workspace

logger = logging.getLogger(__name__)


class Session:
    def __init__(
        self,
        session_id: str,
        cwd: Path,
        store: ChatStore,
        backend: llm.ChatBackend,
        client: ClientSide,
        settings: Settings,
        mcp_servers: Sequence[ServerConfig],
        model: str | None,
    ):
        self.id = session_id
        self.store = store
        self.client = client
        self.workspace = Workspace([Folder(cwd.name or str(cwd), cwd)], open_document=client.open_document)
        client.workspace = self.workspace
        self.commands = command_tool(settings, self.workspace, client, mcp_servers)
        tools, self.mcp = with_mcp_tools(
            WorkspaceTools(
                self.workspace, client, client, auto_approve=settings.auto_approve, commands=self.commands, changes=store
            ),
            mcp_servers,
            approver=client,
            cwd=cwd,
            auto_approve=settings.auto_approve,
            call_timeout=settings.mcp_call_timeout,
            on_problem=lambda text: logger.warning("%s", text),
        )
        self.engine = build_engine(settings, backend, store, ClientReadingTools(tools), RulesFile(self.workspace))
        self.model = model
        self.stop_requested = False

    async def close(self) -> None:
        self.engine.cancel(self.id)
        self.commands.kill_all()
        if self.mcp is not None:
            await self.mcp.close()


class ClientReadingTools:
    """The session's tools, reading the files a call names through the client."""

    def __init__(self, tools: ToolRunner):
        self._tools = tools

    def specs(self) -> tuple[llm.ToolSpec, ...]:
        return self._tools.specs()

    async def run(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink) -> str | ToolResult:
        with client_reads(call.name in FILE_TOOLS):
            return await self._tools.run(chat_id, call_id, call, emit)

    def skip(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink, why: str) -> str:
        return self._tools.skip(chat_id, call_id, call, emit, why)


class TurnReporter:
    """The engine's event sink for a session: events become `session/update`s."""

    def __init__(self, session: Session, outbox: UpdateOutbox):
        self._session = session
        self._outbox = outbox
        self._announced: set[str] = set()

    @property
    def congested(self) -> bool:
        return self._outbox.congested

    async def until_drained(self) -> None:
        await self._outbox.until_drained()

    def __call__(self, event: TurnEvent) -> None:
        if isinstance(event, TextDelta):
            update = (update_agent_message_text if event.kind == "content" else update_agent_thought_text)(event.text)
            self._outbox.send(self._session.id, update)
        elif isinstance(event, ToolCallUpdate):
            self._tool_call(event)
        # StatusChange (waiting, retrying, ...) has no ACP counterpart: the client shows its own.

    def _tool_call(self, event: ToolCallUpdate) -> None:
        client = self._session.client
        text = event.output or event.error
        if event.call_id not in self._announced:  # a call skipped at once is announced finished
            self._announced.add(event.call_id)
            client.current_edit = None
            update = tool_calls.started(
                event.call_id, event.name, event.arguments, self._session.workspace, event.status, text
            )
        else:
            edit = client.current_edit if event.name in tool_calls.EDIT_TOOLS else None
            update = tool_calls.progressed(event.call_id, event.status, text, edit)
        if update is not None:
            self._outbox.send(self._session.id, update)
