"""Running the model's tool calls: reads at once, changes only once the user allows.

This is the engine's `ToolRunner`. How permission is asked and how an allowed
change lands (through the editor, or on disk) are the front-end's business,
handed in as an `Approver` and an `EditApplier`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path
from typing import Any, Protocol

from ollama_chatd import llm
from ollama_chatd.events import ChangeLog, Decision, EventSink, ToolCallStatus, ToolCallUpdate
from ollama_chatd.tools.commands import RUN_COMMAND, RunCommand
from ollama_chatd.tools.edits import ProposedEdit
from ollama_chatd.tools.interrupt import interruptible
from ollama_chatd.tools.registry import ToolDef, check_arguments, find_tool, tool_specs
from ollama_chatd.tools.workspace import ToolError, Workspace

PREVIEW_CHARS = 2000

logger = logging.getLogger(__name__)


class Approver(Protocol):
    async def ask(self, chat_id: str, call_id: str, call: llm.ToolCall, edit: ProposedEdit) -> Decision:
        """Ask the user; raise ToolError when there is no way to ask."""
        ...


class EditApplier(Protocol):
    async def apply(self, edit: ProposedEdit) -> None:
        """Make the change; raise ToolError when it did not happen."""
        ...


class WorkspaceTools:
    def __init__(
        self,
        workspace: Workspace,
        approver: Approver,
        applier: EditApplier,
        auto_approve: frozenset[str] = frozenset(),
        commands: RunCommand | None = None,
        changes: ChangeLog | None = None,
    ):
        self._workspace = workspace
        self._approver = approver
        self._applier = applier
        self._allowed = set(auto_approve)
        self._commands = commands
        self._changes = changes  # records what each change replaced, so its turn can be reverted

    def specs(self) -> tuple[llm.ToolSpec, ...]:
        return tool_specs() + ((self._commands.spec(),) if self._commands else ())

    async def run(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink) -> str:
        report = CallReporter(call_id, call, emit)
        report("pending")
        try:
            if self._workspace.refusal is not None:
                raise ToolError(self._workspace.refusal)
            given = call.arguments if call.unreadable_arguments is None else call.unreadable_arguments
            if call.name == RUN_COMMAND and self._commands is not None:
                return await self._commands.run(chat_id, call_id, call, given, report)
            tool = self._known_tool(call.name)
            arguments = check_arguments(tool, given)
            if not tool.writes:
                report("running")
                output = await self._in_thread(tool, arguments)
                report("completed", output=output[:PREVIEW_CHARS])
                return output
            edit = await self._in_thread(tool, arguments)
            assert isinstance(edit, ProposedEdit)
            if not await self._permitted(chat_id, call_id, call, tool, edit, report):
                report("denied")
                return f"The user did not allow this change to {edit.display_path}. Do not retry it; ask what they want instead."
            report("running")
            await self._apply(chat_id, edit)
        except ToolError as error:
            report("failed", error=str(error))
            return f"Error: {error}"
        except Exception as error:  # a bug or resource failure: the call still gets its result
            logger.error("%s failed unexpectedly", call.name, exc_info=error)
            message = f"{call.name} failed because of an internal error ({type(error).__name__}: {error})"
            report("failed", error=message)
            return f"Error: {message}. Try a different, smaller request."
        # Cancelled: the engine `skip`s this call, which reports its one final status.
        summary = _summary(edit)
        report("completed", output=summary)
        return summary

    async def _in_thread(self, tool: ToolDef, arguments: dict[str, Any]) -> str | ProposedEdit:
        """Run the tool in a worker thread; a cancelled turn stops it (and kills its rg) too."""
        with interruptible() as interrupt:
            try:
                return await asyncio.to_thread(tool.run, self._workspace, arguments)
            except asyncio.CancelledError:
                interrupt.cancel()
                raise

    def _known_tool(self, name: str) -> ToolDef:
        tool = find_tool(name)
        if tool is None:
            available = ", ".join(spec.name for spec in self.specs())
            raise ToolError(f"there is no tool named '{name}'; the tools are: {available}")
        return tool

    async def _apply(self, chat_id: str, edit: ProposedEdit) -> None:
        """Apply an allowed change, recording first what it replaces and then what it left."""
        if self._changes is not None:
            mode = await asyncio.to_thread(_mode_of, edit.path)
            self._changes.before_change(chat_id, str(edit.path), edit.display_path, edit.old_text, mode)
        await self._applier.apply(edit)
        if self._changes is not None:
            self._changes.after_change(chat_id, str(edit.path), edit.new_text)

    def skip(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink, why: str) -> str:
        CallReporter(call_id, call, emit)("cancelled", error=why)
        return f"Error: {why}"

    async def _permitted(
        self, chat_id: str, call_id: str, call: llm.ToolCall, tool: ToolDef, edit: ProposedEdit, report: CallReporter
    ) -> bool:
        if tool.name in self._allowed and not edit.runs_code:
            return True
        report("awaiting_permission")
        decision = await self._approver.ask(chat_id, call_id, call, edit)
        if decision == "allow_always":
            self._allowed.add(tool.name)
        return decision != "deny"


class CallReporter:
    """Sends a call's status changes as `ToolCallUpdate` events."""

    def __init__(self, call_id: str, call: llm.ToolCall, emit: EventSink):
        self._call_id = call_id
        self._call = call
        self._emit = emit

    def __call__(
        self, status: ToolCallStatus, *, output: str | None = None, error: str | None = None, output_length: int | None = None
    ) -> None:
        self._emit(ToolCallUpdate(self._call_id, self._call.name, self._call.arguments, status, output, error, output_length))




def _mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path, follow_symlinks=False).st_mode)
    except OSError:
        return None  # not on disk (a new file)


def _summary(edit: ProposedEdit) -> str:
    if edit.new_text is None:
        return f"Deleted {edit.display_path}."
    verb = "Created" if edit.old_text is None else "Updated"
    lines = edit.new_text.count("\n") + (not edit.new_text.endswith("\n") and bool(edit.new_text))
    return f"{verb} {edit.display_path} ({lines} lines)."
