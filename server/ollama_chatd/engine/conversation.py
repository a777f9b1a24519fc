"""A chat's history, as the model sees it, and where it is kept."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from ollama_chatd import llm
from ollama_chatd.events import FileChange


class RevertPlan(Protocol):
    turns: int  # how many turns the chat has
    changes: Sequence[FileChange]  # per file, over the reverted turns
    commands: Sequence[str]  # run by `run_command` in those turns


@attrs.define
class Conversation:
    chat_id: str
    model: str | None = None
    messages: list[llm.Message] = attrs.Factory(list)
    # Fixed at the first turn: changing num_ctx makes Ollama reload the model.
    num_ctx: int | None = None
    # Index of the oldest message still sent to the model (after the system prompt).
    window_start: int = 0

    @classmethod
    def start(cls, chat_id: str, system: str | None) -> Conversation:
        conversation = cls(chat_id)
        if system:
            conversation.messages.append(llm.Message("system", system))
        return conversation

    def append(self, message: llm.Message) -> None:
        self.messages.append(message)


class SavedChat(Protocol):
    model: str | None

    def history(self) -> Sequence[llm.Message]: ...


class Journal(Protocol):
    """Where turns are recorded as they happen (`ollama_chatd.store.ChatStore`).

    Writes return at once: recording must never slow the turn down.
    """

    async def load(self, chat_id: str) -> SavedChat | None: ...

    def begin_turn(self, chat_id: str, user: llm.Message, *, model: str, system: str | None) -> None: ...

    def checkpoint(self, chat_id: str, partial: llm.Message) -> None: ...

    def append(self, chat_id: str, message: llm.Message, status: str = "complete") -> None: ...

    def end_turn(self, chat_id: str, *, stop_reason: str, usage: llm.Usage) -> None: ...

    def discard_turn(self, chat_id: str) -> None: ...

    async def revert_plan(self, chat_id: str, first: int) -> RevertPlan | None:
        """What reverting the turns from the `first` (0-based) on touches; None: no such chat."""
        ...

    def drop_turns(self, chat_id: str, first: int) -> None: ...


KEPT_IN_MEMORY = 32  # chats; the others wait in the journal


class Conversations:
    """The chats of this session, loaded from the journal on first use. An editor's daemon
    lives for hours, through many chats: only the most recently used stay in memory, and
    one used again after that is loaded again (its next request re-trims the window)."""

    def __init__(self, journal: Journal, keep: int = KEPT_IN_MEMORY) -> None:
        self._journal = journal
        self._keep = keep
        self._by_id: dict[str, Conversation] = {}  # the least recently used first

    async def get(self, chat_id: str) -> Conversation | None:
        if (conversation := self._by_id.get(chat_id)) is not None:
            self.add(conversation)  # now the most recently used
            return conversation
        saved = await self._journal.load(chat_id)
        if saved is None:
            return None
        conversation = Conversation(chat_id, saved.model, list(saved.history()))
        self.add(conversation)
        return conversation

    def add(self, conversation: Conversation) -> None:
        self._by_id.pop(conversation.chat_id, None)
        self._by_id[conversation.chat_id] = conversation
        while len(self._by_id) > self._keep:
            del self._by_id[next(iter(self._by_id))]

    def forget(self, chat_id: str) -> None:
        self._by_id.pop(chat_id, None)
