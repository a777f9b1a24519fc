"""`session/update` notifications, sent in order by one task.

The engine reports events synchronously and must never wait on the client, while
the SDK sends a notification with an `await`. Events are queued here and one task
hands them to the connection in order; `flush()` returns once everything queued
before it was written, so a prompt's answer never overtakes its own updates.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger(__name__)

# Past this many unsent updates the turn stops reading from the model until the
# client catches up (as `serve` does with its token outbox).
CONGESTED_AT = 1000
DRAINED_AT = 100


class UpdateOutbox:
    def __init__(self, client: Any):
        self._client = client  # the SDK's connection to the client
        self._queue: asyncio.Queue[tuple[str, Any] | asyncio.Future[None]] = asyncio.Queue()
        self._drained = asyncio.Event()
        self._drained.set()
        self._client_gone = False
        self._task = asyncio.create_task(self._send_in_order(), name="acp-updates")

    def send(self, session_id: str, update: Any) -> None:
        if self._client_gone:
            return
        self._queue.put_nowait((session_id, update))
        if self._queue.qsize() >= CONGESTED_AT:
            self._drained.clear()

    @property
    def congested(self) -> bool:
        return not self._drained.is_set()

    async def until_drained(self) -> None:
        await self._drained.wait()

    async def flush(self) -> None:
        """Wait until every update queued so far has been written."""
        if self._client_gone:
            return
        written = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(written)
        await written

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _send_in_order(self) -> None:
        while True:
            item = await self._queue.get()
            if self._queue.qsize() <= DRAINED_AT:
                self._drained.set()
            if isinstance(item, asyncio.Future):
                if not item.done():
                    item.set_result(None)
                continue
            session_id, update = item
            if self._client_gone:
                continue
            try:
                await self._client.session_update(session_id=session_id, update=update)
            except ConnectionError:
                logger.info("the client closed the connection; dropping session updates")
                self._client_gone = True
                self._drained.set()
