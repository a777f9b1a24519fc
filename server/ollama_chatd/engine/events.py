"""What a running turn reports as it goes, for a front-end to show."""

from __future__ import annotations

from typing import Any, Literal, Protocol

import attrs

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
