"""The model's tool calls as ACP shows them: kind, title, locations, status, content."""

from __future__ import annotations

from typing import Any

from acp import schema
from acp.helpers import start_tool_call, text_block, tool_content, tool_diff_content, update_tool_call

from ollama_chatd.events import ToolCallStatus
from ollama_chatd.tools.edits import ProposedEdit
from ollama_chatd.tools.workspace import ToolError, Workspace

_KINDS: dict[str, schema.ToolKind] = {
    "read_file": "read",
    "list_directory": "read",
    "search_text": "search",
    "find_files": "search",
    "write_file": "edit",
    "edit_file": "edit",
    "delete_file": "delete",
    "run_command": "execute",
}
EDIT_TOOLS = frozenset(name for name, kind in _KINDS.items() if kind in ("edit", "delete"))

# The engine's statuses in ACP v1's four (it has no `cancelled`: a stopped call fails).
_STATUSES: dict[ToolCallStatus, schema.ToolCallStatus | None] = {
    "pending": "pending",
    "awaiting_permission": None,  # said by session/request_permission itself
    "running": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "denied": "failed",
    "cancelled": "failed",
}
_DEFAULT_ERRORS: dict[ToolCallStatus, str] = {
    "denied": "The user did not allow this change.",
    "cancelled": "Cancelled by the user.",
}


def kind_of(name: str) -> schema.ToolKind:
    return _KINDS.get(name, "other")


def title_of(name: str, arguments: dict[str, Any]) -> str:
    path = arguments.get("path")
    where = f" {path}" if isinstance(path, str) and path else ""
    if name == "read_file":
        return f"Read{where}"
    if name == "list_directory":
        return f"List{where or ' the workspace'}"
    if name == "search_text":
        return f"Search for {arguments.get('pattern')!r}" + (f" in{where}" if where else "")
    if name == "find_files":
        return f"Find files matching {arguments.get('glob')!r}"
    if name == "write_file":
        return f"Write{where}"
    if name == "edit_file":
        return f"Edit{where}"
    if name == "delete_file":
        return f"Delete{where}"
    if name == "run_command" and isinstance(arguments.get("command"), str):
        return arguments["command"]  # the exact command, as the permission prompt shows it
    return name


def locations_of(workspace: Workspace, arguments: dict[str, Any]) -> list[schema.ToolCallLocation]:
    """Where the call acts, as absolute paths, so the editor can follow along."""
    path = arguments.get("path")
    if not isinstance(path, str) or not path:
        return []
    try:
        absolute = workspace.resolve(path)
    except ToolError:  # the call will fail and say why
        return []
    line = arguments.get("start_line")
    return [schema.ToolCallLocation(path=str(absolute), line=line if _is_line(line) else None)]


def _is_line(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def diff_content(edit: ProposedEdit) -> schema.FileEditToolCallContent:
    return tool_diff_content(str(edit.path), edit.new_text or "", edit.old_text)


def started(
    call_id: str,
    name: str,
    arguments: dict[str, Any],
    workspace: Workspace,
    status: ToolCallStatus = "pending",
    text: str | None = None,
) -> schema.ToolCallStart:
    """A call's first update; one announced already finished (skipped, or replayed) has its end in it."""
    end = progressed(call_id, status, text)
    return start_tool_call(
        call_id,
        title_of(name, arguments),
        kind=kind_of(name),
        status=end.status if end else "pending",
        content=end.content if end else None,
        locations=locations_of(workspace, arguments),
        raw_input=arguments,
        raw_output=end.raw_output if end else None,
    )


def progressed(
    call_id: str,
    status: ToolCallStatus,
    text: str | None,
    edit: ProposedEdit | None = None,
) -> schema.ToolCallProgress | None:
    """The update for a status change; None when ACP has nothing to say for it."""
    acp_status = _STATUSES[status]
    if acp_status is None:
        return None
    text = text or _DEFAULT_ERRORS.get(status)
    content: list[Any] = [diff_content(edit)] if edit is not None and status == "completed" else []
    if text:
        content.append(tool_content(text_block(text)))
    return update_tool_call(call_id, status=acp_status, content=content or None, raw_output=_raw_output(status, text))


def _raw_output(status: ToolCallStatus, text: str | None) -> dict[str, Any] | None:
    if text is None or status in ("pending", "running"):
        return None
    return {"error": text} if status in ("failed", "denied", "cancelled") else {"output": text}
