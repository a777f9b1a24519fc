"""The stores of the agent's workspace folders, opened on first use (a session's cwd
is its workspace), and the one backend every session shares."""

from __future__ import annotations

import logging
from pathlib import Path

from ollama_chatd import llm
from ollama_chatd.store import ChatStore

logger = logging.getLogger(__name__)


class Projects:
    def __init__(self, backend: llm.ChatBackend, state_dir: Path | None):
        self.backend = backend
        self._state_dir = state_dir
        self._stores: dict[Path, ChatStore] = {}

    def store(self, folder: Path) -> ChatStore:
        if (store := self._stores.get(folder)) is None:
            store = self._stores[folder] = ChatStore.open(
                self._state_dir, str(folder), on_degraded=lambda problem: logger.warning("%s", problem)
            )
        return store

    async def close(self) -> None:
        for store in self._stores.values():
            await store.close()
        await self.backend.aclose()
