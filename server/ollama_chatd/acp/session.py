"""An ACP session: one stored chat in one workspace (the session's cwd), its tools
acting through the client, and its turn's events turned into `session/update`s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acp.helpers import update_agent_message_text, update_agent_thought_text

from ollama_chatd import llm
from ollama_chatd.acp import tool_calls
from ollama_chatd.acp.client_side import FILE_TOOLS, ClientSide, client_reads
from ollama_chatd.acp.outbox import UpdateOutbox
from ollama_chatd.engine.engine import ChatEngine
from ollama_chatd.events import EventSink, TextDelta, ToolCallUpdate, TurnEvent
from ollama_chatd.store import ChatStore
from ollama_chatd.tools.registry import tool_specs
from ollama_chatd.tools.runner import WorkspaceTools
from ollama_chatd.tools.workspace import Folder, Workspace


class Session:
    def __init__(
        self,
        session_id: str,
        cwd: Path,
        project: Project,
        client: ClientSide,
        auto_approve: frozenset[str],
        model: str | None,
    ):
        self.id = session_id
        self.project = project
        self.client = client
        self.workspace = Workspace([Folder(cwd.name or str(cwd), cwd)], open_document=client.open_document)
        client.workspace = self.workspace
        self.tools = WorkspaceTools(self.workspace, client, client, auto_approve=auto_approve)
        self.model = model
        self.stop_requested = False


class Project:
    """The chats of one workspace folder: its store and the engine running them."""

    def __init__(self, store: ChatStore, make_engine: Any):
        self.store = store
        self.sessions: dict[str, Session] = {}
        self.engine: ChatEngine = make_engine(store, SessionTools(self.sessions))


class SessionTools:
    """The engine's `ToolRunner`: each chat's calls run with its own session's tools."""

    def __init__(self, sessions: dict[str, Session]):
        self._sessions = sessions

    def specs(self) -> tuple[llm.ToolSpec, ...]:
        return tool_specs()

    async def run(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink) -> str:
        with client_reads(call.name in FILE_TOOLS):
            return await self._sessions[chat_id].tools.run(chat_id, call_id, call, emit)

    def skip(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink, why: str) -> str:
        return self._sessions[chat_id].tools.skip(chat_id, call_id, call, emit, why)


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
