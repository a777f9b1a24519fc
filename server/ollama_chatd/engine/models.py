"""What the engine knows of the server's models, asked once per session."""

from __future__ import annotations

import asyncio
import logging

from ollama_chatd import llm

logger = logging.getLogger(__name__)


class ModelCatalog:
    def __init__(self, backend: llm.ChatBackend):
        self._backend = backend
        self._described: dict[str, llm.ModelInfo] = {}
        self._describing: dict[str, asyncio.Future[llm.ModelInfo]] = {}
        self._installed: list[llm.ModelInfo] | None = None
        self._lock = asyncio.Lock()

    async def describe(self, name: str) -> llm.ModelInfo:
        """The model's capabilities and context length.

        Raises ModelNotFound and BackendUnreachable; any other failure (an old
        server without /api/show, say) gives a model whose abilities are unknown,
        which the engine then discovers by trying.
        """
        if (info := self._described.get(name)) is not None:
            return info
        # Chats starting together share one question to the server.
        asking = self._describing.get(name)
        if asking is None:
            asking = self._describing[name] = asyncio.ensure_future(self._ask(name))
            asking.add_done_callback(lambda _: self._describing.pop(name, None))
        return await asyncio.shield(asking)

    async def _ask(self, name: str) -> llm.ModelInfo:
        try:
            info = await self._backend.describe_model(name)
        except (llm.ModelNotFound, llm.BackendUnreachable):
            raise
        except llm.BackendError as error:
            logger.warning("cannot describe model %s (%s); its abilities are unknown", name, error)
            info = llm.ModelInfo(name)
        self._described[name] = info
        return info

    async def installed(self, refresh: bool = False) -> list[llm.ModelInfo]:
        async with self._lock:  # one listing at a time, even if several clients ask
            if self._installed is None or refresh:
                self._installed = await self._backend.installed_models()
                if refresh:
                    self._described.clear()
                self._described.update((info.name, info) for info in self._installed)
            return self._installed
