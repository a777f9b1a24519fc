"""A response body for respx that arrives in the byte chunks a test chooses, as a network
would deliver it, and records whether the client closed it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import httpx


class ChunkStream(httpx.AsyncByteStream):
    """A response body delivered in the given chunks, then optionally a failure or a hang."""

    def __init__(self, chunks: Iterable[bytes], *, then_raise: Exception | None = None, hang: bool = False):
        self.chunks = list(chunks)
        self.then_raise = then_raise
        self.hang = hang
        self.sent = 0
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.sent += 1
            yield chunk
        if self.then_raise is not None:
            raise self.then_raise
        if self.hang:
            await asyncio.Event().wait()  # like Ollama thinking about the next token

    async def aclose(self) -> None:
        self.closed = True
