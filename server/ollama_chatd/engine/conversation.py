"""A chat's history, as the model sees it."""

from __future__ import annotations

import attrs

from ollama_chatd import llm


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


class Conversations:
    """Every chat of this daemon, in memory, by client-chosen id."""

    def __init__(self) -> None:
        self._by_id: dict[str, Conversation] = {}

    def get(self, chat_id: str) -> Conversation | None:
        return self._by_id.get(chat_id)

    def add(self, conversation: Conversation) -> None:
        self._by_id[conversation.chat_id] = conversation
