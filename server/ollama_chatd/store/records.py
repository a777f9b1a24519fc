"""What the store hands back: plain frozen values, no database handles."""

from __future__ import annotations

import datetime
from typing import Literal

import attrs

from ollama_chatd import llm
from ollama_chatd.events import FileChange

MessageStatus = Literal["complete", "streaming", "cancelled", "failed"]
"""`streaming`: a checkpointed partial answer (its turn had not ended when last
written, e.g. the daemon was killed); `cancelled`/`failed`: what was streamed
before the turn was stopped or the model failed."""

TITLE_LENGTH = 80


@attrs.frozen
class StoredMessage:
    message: llm.Message
    status: MessageStatus
    created_at: float


@attrs.frozen
class StoredChat:
    chat_id: str
    title: str | None
    model: str | None
    system: str | None
    created_at: float
    updated_at: float
    messages: tuple[StoredMessage, ...]

    def history(self) -> list[llm.Message]:
        """The messages to send the model to continue this chat.

        An unfinished answer keeps its text but not its tool calls: those never
        ran, and a history with calls lacking results is invalid for the model.
        """
        history: list[llm.Message] = []
        unanswered: list[llm.ToolCall] = []
        for stored in self.messages:
            message = stored.message
            if message.role != "tool":
                history += _interrupted_results(unanswered)
                unanswered = []
            if stored.status != "complete":
                message = attrs.evolve(message, tool_calls=())
            if message.role == "tool" and unanswered:
                unanswered.pop(0)
            unanswered += message.tool_calls
            history.append(message)
        return history + _interrupted_results(unanswered)


def _interrupted_results(calls: list[llm.ToolCall]) -> list[llm.Message]:
    """Results for calls a crash left unanswered, so the model sees a valid history."""
    return [
        llm.Message("tool", "Error: not run: the daemon stopped first", tool_name=call.name, tool_call_id=call.id)
        for call in calls
    ]


@attrs.frozen
class RevertPlan:
    """What reverting some of a chat's turns touches."""

    turns: int  # how many turns the chat has
    changes: tuple[FileChange, ...]  # per file, over the reverted turns
    commands: tuple[str, ...]  # run by `run_command` in those turns: never undone


@attrs.frozen
class ChatSummary:
    chat_id: str
    title: str | None
    model: str | None
    created_at: float
    updated_at: float
    turns: int
    cursor: str
    """Pass as `list_chats(before=...)` to get the chats listed after this one."""


def derive_title(prompt: str) -> str | None:
    """A chat's default title: the first non-blank line of its first prompt, at most 80 characters."""
    line = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
    if len(line) > TITLE_LENGTH:
        return line[: TITLE_LENGTH - 1].rstrip() + "…"
    return line or None


def iso8601(timestamp: float) -> str:
    """A stored timestamp as the wire shows it: UTC, millisecond precision."""
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
