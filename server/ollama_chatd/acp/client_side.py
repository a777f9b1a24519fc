"""The client's side of one session's tools: its unsaved buffers (`fs/read_text_file`),
asking its user (`session/request_permission`) and writing through it
(`fs/write_text_file`), each used only when the client says it can.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acp import RequestError, schema

from ollama_chatd import llm
from ollama_chatd.acp import tool_calls
from ollama_chatd.events import Decision
from ollama_chatd.tools.commands import RUN_COMMAND
from ollama_chatd.tools.edits import ProposedEdit, apply_to_disk, check_same_target
from ollama_chatd.tools.workspace import ToolError, Workspace

logger = logging.getLogger(__name__)

CLIENT_READ_SECONDS = 30.0
METHOD_NOT_FOUND = -32601

# Reads of a file the model names go through the client; the many files a search or
# listing opens are read from disk (asking the editor to open each would be slow).
_reading_through_client: contextvars.ContextVar[bool] = contextvars.ContextVar("reading_through_client", default=False)
FILE_TOOLS = frozenset({"read_file", *tool_calls.EDIT_TOOLS})


@contextlib.contextmanager
def client_reads(enabled: bool = True) -> Iterator[None]:
    """Within this block (and the threads it starts), reads see the client's buffers."""
    token = _reading_through_client.set(enabled)
    try:
        yield
    finally:
        _reading_through_client.reset(token)


class ClientSide:
    """One session's link to the client; also the tools' `Approver` and `EditApplier`."""

    def __init__(self, client: Any, session_id: str, capabilities: schema.ClientCapabilities | None):
        self._client = client
        self._session_id = session_id
        fs = capabilities.fs if capabilities and capabilities.fs else None
        self._can_read = bool(fs and fs.read_text_file)
        self._can_write = bool(fs and fs.write_text_file)
        self._cannot_ask = False
        self._loop = asyncio.get_running_loop()
        self.workspace: Workspace | None = None  # set once the session's workspace exists
        # The change being made by the session's current tool call, for its diff.
        self.current_edit: ProposedEdit | None = None

    # -- the workspace overlay (runs on the tools' worker threads) ------------------

    def open_document(self, path: Path) -> str | None:
        """The client's text of `path` (unsaved edits included), or None to read the disk."""
        if not (self._can_read and _reading_through_client.get()):
            return None
        asking = asyncio.run_coroutine_threadsafe(self.read_text(path), self._loop)
        try:
            return asking.result(CLIENT_READ_SECONDS)
        except TimeoutError:
            asking.cancel()
            logger.warning("the client did not answer fs/read_text_file for %s in %g s", path, CLIENT_READ_SECONDS)
            return None

    async def read_text(self, path: Path) -> str | None:
        try:
            response = await self._client.read_text_file(session_id=self._session_id, path=str(path))
        except (RequestError, ConnectionError) as error:  # e.g. no such file: the disk read says it well
            logger.info("fs/read_text_file %s: %s; reading the disk", path, error)
            return None
        return response.content

    # -- Approver ---------------------------------------------------------------

    async def ask(self, chat_id: str, call_id: str, call: llm.ToolCall, edit: ProposedEdit) -> Decision:
        self.current_edit = edit
        request = schema.ToolCallUpdate(
            tool_call_id=call_id,
            title=f"{edit.verb} {edit.display_path}",
            kind="edit",
            status="pending",
            content=[tool_calls.diff_content(edit)],
            locations=[schema.ToolCallLocation(path=str(edit.path))],
            raw_input=call.arguments,
        )
        return await self._ask(request, call.name)

    async def _ask(self, request: schema.ToolCallUpdate, tool: str) -> Decision:
        if self._cannot_ask:
            raise _cannot_ask()
        try:
            response = await self._client.request_permission(
                session_id=self._session_id, tool_call=request, options=_permission_options(tool)
            )
        except RequestError as error:
            if error.code == METHOD_NOT_FOUND:
                self._cannot_ask = True
            raise _cannot_ask() from None
        outcome = response.outcome
        if isinstance(outcome, schema.AllowedOutcome):
            return _DECISIONS.get(outcome.option_id, "deny")
        return "deny"  # cancelled: the turn is being stopped anyway

    async def ask_to_run(self, chat_id: str, call_id: str, call: llm.ToolCall, title: str) -> Decision:
        """Before a command (`run_command`), or an MCP tool call that may change something."""
        request = schema.ToolCallUpdate(tool_call_id=call_id, title=title, kind=tool_calls.kind_of(call.name),
                                        status="pending", raw_input=call.arguments)
        return await self._ask(request, call.name)

    # -- EditApplier --------------------------------------------------------------

    async def apply(self, edit: ProposedEdit) -> None:
        self.current_edit = edit
        assert self.workspace is not None
        if not self._can_write or edit.new_text is None:  # ACP's file system has no deletion
            await asyncio.to_thread(apply_to_disk, self.workspace, edit)
            return
        await asyncio.to_thread(check_same_target, self.workspace, edit)
        if self._can_read and await self.read_text(edit.path) not in (edit.old_text, None):
            raise ToolError(
                f"{edit.display_path!r} changed in the editor since the change was proposed; "
                "read it again and redo the change"
            )
        try:
            await self._client.write_text_file(session_id=self._session_id, path=str(edit.path), content=edit.new_text)
        except RequestError as error:
            raise ToolError(f"the editor did not write {edit.display_path}: {error}") from None


_DECISIONS: dict[str, Decision] = {"allow": "allow", "allow_always": "allow_always", "reject": "deny"}


def _permission_options(tool: str) -> list[schema.PermissionOption]:
    return [
        schema.PermissionOption(option_id="allow", name="Allow", kind="allow_once"),
        schema.PermissionOption(option_id="allow_always", name=_always(tool), kind="allow_always"),
        schema.PermissionOption(option_id="reject", name="Reject", kind="reject_once"),
    ]


def _always(tool: str) -> str:
    # "Always" for a command is for that exact command (tools/commands.py), not the tool.
    return "Always allow this exact command" if tool == RUN_COMMAND else f"Always allow {tool}"


def _cannot_ask() -> ToolError:
    return ToolError(
        "changes and commands are refused: this editor cannot ask its user for permission "
        "(it does not implement session/request_permission). Tell the user what you would change instead."
    )
