"""Reading a model's stream: in batches, in turns with the other streams, watched for stalls.

Shared by the backends (`ollama/`, `openai/`). A model server sends every token as
its own write. Read as they come, each token costs the daemon an event-loop wake-up,
a socket read and a pipe write: about 165 µs, 14% of a core at 1,000 tokens/s. So
once a read has had to wait for the network, the stream waits `READ_INTERVAL_S`
before reading again: meanwhile the kernel gathers the tokens that arrive, and the
next read (and the `chat/token` it becomes) carries them all. The first token of a
turn is not delayed. The wait comes after the first piece a read brings, not after
the last (the HTTP library hands them out one at a time and cannot say which is its
last without waiting for the network), so a token may wait up to two intervals,
40 ms; a screen refreshes every 17. A cancel still acts at once: the wait is an
`asyncio.sleep`, which a cancellation interrupts.

Reads served from what the HTTP library has already buffered do not give the event
loop a turn: after `FAIR_SHARE_S` of them the stream yields, so one flooding stream
cannot keep the other chats (and the client's cancels) waiting.

A stall (nothing arriving for `stall_timeout` while reading) raises TimeoutError.
Only the wait for the network counts, not the time the consumer holds what was read
(an editor that lags) nor the pacing; it is watched by one timer per stall period
instead of a timer rescheduled on every read, which cost more than parsing the token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

READ_INTERVAL_S = 0.02  # between two reads that wait for the network
FAIR_SHARE_S = 0.0005  # longest a stream keeps the event loop to itself

T = TypeVar("T")


@contextlib.asynccontextmanager
async def paced_reads(
    reads: AsyncIterator[T], stall_timeout: float, interval: float = READ_INTERVAL_S
) -> AsyncIterator[PacedReads[T]]:
    """`reads` (an HTTP body's chunks or events), read through `PacedReads.next()`;
    raises TimeoutError when one of them waits longer than `stall_timeout`."""
    async with asyncio.timeout(None) as silence:
        paced = PacedReads(reads, stall_timeout, interval, silence)
        try:
            yield paced
        finally:
            paced.close()


class PacedReads(Generic[T]):
    def __init__(self, reads: AsyncIterator[T], stall_timeout: float, interval: float, silence: asyncio.Timeout):
        self._reads = reads
        self._loop = asyncio.get_running_loop()
        self._interval = interval
        self._stall_timeout = stall_timeout
        self._silence = silence
        self._reading_since: float | None = None
        self._waited = False
        self._marker: asyncio.Handle | None = None
        self._turn_at = self._loop.time()
        self._watch = self._loop.call_at(self._turn_at + stall_timeout, self._check_stall)
        self._arm()

    async def next(self) -> T | None:
        """The next chunk; None at the end of the stream."""
        await self._pause()
        self._reading_since = self._loop.time()
        try:
            return await anext(self._reads, None)
        finally:
            self._reading_since = None

    def close(self) -> None:
        self._watch.cancel()
        if self._marker is not None:
            self._marker.cancel()
            self._marker = None

    async def _pause(self) -> None:
        if self._waited:
            # The last read gave the event loop a turn: the network had nothing more
            # then. Let the next tokens gather instead of waking up for each of them.
            await asyncio.sleep(self._interval)
        elif self._loop.time() - self._turn_at > FAIR_SHARE_S:
            await asyncio.sleep(0)
        else:
            return
        self._turn_at = self._loop.time()
        self._waited = False
        self._arm()

    def _arm(self) -> None:
        # Runs at the event loop's next turn, which comes only when the stream waits
        # (for the network, or in its consumer).
        if self._marker is None:
            self._marker = self._loop.call_soon(self._mark)

    def _mark(self) -> None:
        self._marker = None
        self._waited = True

    def _check_stall(self) -> None:
        now = self._loop.time()
        since = self._reading_since
        if since is not None and now - since >= self._stall_timeout:
            self._silence.reschedule(now)  # expires: the read is cancelled, TimeoutError raised
            return
        self._watch = self._loop.call_at((since or now) + self._stall_timeout, self._check_stall)
