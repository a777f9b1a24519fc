"""The workspace folders of the agent's sessions, each with its store and engine,
all sharing one backend. Opened on first use: a session's cwd is its workspace."""

from __future__ import annotations

import logging
from pathlib import Path

from ollama_chatd import llm
from ollama_chatd.acp.session import Project
from ollama_chatd.app import build_engine
from ollama_chatd.config import Settings
from ollama_chatd.engine.engine import ChatEngine, ToolRunner
from ollama_chatd.store import ChatStore

logger = logging.getLogger(__name__)


class Projects:
    def __init__(self, backend: llm.ChatBackend, settings: Settings, state_dir: Path | None):
        self.backend = backend
        self._settings = settings
        self._state_dir = state_dir
        self._by_folder: dict[Path, Project] = {}

    def open(self, folder: Path) -> Project:
        if (project := self._by_folder.get(folder)) is None:
            store = ChatStore.open(self._state_dir, str(folder), on_degraded=lambda problem: logger.warning("%s", problem))
            project = self._by_folder[folder] = Project(store, self._engine)
        return project

    def _engine(self, store: ChatStore, tools: ToolRunner) -> ChatEngine:
        return build_engine(self._settings, self.backend, store, tools)

    async def close(self) -> None:
        for project in self._by_folder.values():
            await project.store.close()
        await self.backend.aclose()
