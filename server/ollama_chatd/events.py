"""The contract between the engine and the front-ends, and between the engine and
the tool runners: what a running turn reports as it goes, how it ends, what the user
may decide, and what the engine asks of whoever runs the model's tool calls. Beside
`llm.py`, which is the contract below the engine.

The wire carries these values as they are (protocol/schemas pins them), so a
front-end takes them from here instead of repeating them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import attrs

from ollama_chatd import llm

ToolCallStatus = Literal[
    "pending", "awaiting_permission", "running", "completed", "failed", "denied", "cancelled"
]


@attrs.frozen
class TextDelta:
    """A piece of the answer (`content`) or of the model's reasoning (`thinking`)."""

    kind: Literal["content", "thinking"]
    text: str


@attrs.frozen
class ToolCallUpdate:
    call_id: str
    name: str
    arguments: dict[str, Any]
    status: ToolCallStatus
    output: str | None = None
    error: str | None = None
    output_length: int | None = None  # with `running` output: characters so far, `output` their end


StopReason = Literal["end_turn", "max_tokens", "cancelled", "max_tool_rounds"]
CallStopReason = Literal["end_turn", "max_tokens", "tool_calls", "cancelled"]  # a stateless model call's
Decision = Literal["allow", "allow_always", "deny"]  # the user's answer to a change

StatusState = Literal["waiting", "streaming", "retrying", "truncated", "no_tools"]


@attrs.frozen
class StatusChange:
    """What the turn is doing when no text flows: waiting for the model, retrying..."""

    state: StatusState
    message: str


TurnEvent = TextDelta | ToolCallUpdate | StatusChange


class EventSink(Protocol):
    """Receives a turn's events in order. Called on the event loop; must not block."""

    def __call__(self, event: TurnEvent) -> None: ...

    @property
    def congested(self) -> bool:
        """True while the front-end cannot deliver events as fast as they come."""
        ...

    async def until_drained(self) -> None:
        """Wait until it can again (the turn then stops reading from the model)."""
        ...


@attrs.frozen
class ToolResult:
    """A result with images (base64): the model gets them only if it can see."""

    text: str
    images: tuple[str, ...]


class ToolRunner(Protocol):
    """Runs the model's tool calls for the engine: the workspace tools (`tools.runner`),
    an MCP server's (`mcp.runner`), or a front-end's own mix (`acp/`)."""

    def specs(self) -> tuple[llm.ToolSpec, ...]: ...

    async def run(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink) -> str | ToolResult:
        """Return the tool's result for the model (failures too, as readable text).
        Cancelled, it reports nothing more: the caller `skip`s the call."""
        ...

    def skip(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink, why: str) -> str:
        """Report a call that will not run, or whose run was cancelled (the turn ended
        first), with its one final status; return its result text."""
        ...


@attrs.frozen
class ProjectRules:
    """The project's own instructions for the model (AGENTS.md), as one turn uses them."""

    name: str  # the file, as chat/start's result names it
    text: str
    cut_bytes: int = 0  # how much of the file was left out for being over the size cap


class RulesSource(Protocol):
    """Where a workspace's rules come from (`tools.rules`); read at the start of each turn."""

    def read(self) -> ProjectRules | None:
        """The rules now, None without any; blocking (a file read), called in a worker thread."""
        ...


@attrs.frozen
class FileChange:
    """What the model's edits in some turns did to one file, as the store recorded it."""

    path: str  # the real path
    display_path: str  # as the model and the user see it
    before_text: str | None  # before the first of those turns changed it; None: it did not exist
    before_mode: int | None  # its permission bits then
    after_text: str | None  # what the model's last change left; None: it deleted the file
    after_known: bool  # False: a change was allowed but never reported done (it failed, or the daemon stopped)


@attrs.frozen
class SkippedFile:
    path: str
    reason: str


@attrs.frozen
class RestoreReport:
    restored: tuple[str, ...]  # display paths
    skipped: tuple[SkippedFile, ...]


class ChangeLog(Protocol):
    """Where a turn's file changes are recorded so it can be reverted (the store)."""

    def before_change(self, chat_id: str, path: str, display_path: str, text: str | None, mode: int | None) -> None:
        """The file as it is before the running turn changes it; only the first call per
        file and turn counts."""
        ...

    def after_change(self, chat_id: str, path: str, text: str | None) -> None:
        """What the running turn's change left in the file (None: deleted)."""
        ...


class FileRestorer(Protocol):
    """Puts files back as they were before some turns (`tools.undo`)."""

    async def restore(self, changes: Sequence[FileChange]) -> RestoreReport: ...
