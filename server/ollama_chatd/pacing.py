"""Reading a model's stream: in batches, in turns with the other streams, watched for stalls.

Shared by the backends (`ollama/`, `openai/`). A model server sends every token as
its own write. Read as they come, each token costs the daemon an event-loop wake-up,
a socket read and a pipe write: about 165 µs, 14% of a core at 1,000 tokens/s. So
when a read gave the event loop a turn (every socket read does: it waited for the
network, or at least for the event loop to collect what the kernel had gathered),
the piece it brought is held `READ_INTERVAL_S` before it is handed out. Meanwhile
the kernel gathers the tokens that follow; the pieces of that read still buffered
in the HTTP library are handed out without a wake-up, and the next socket read's
turn of the event loop sends them all in one `chat/token`: one socket read, one
wake-up for the hold and one notification per interval. The hold comes after a
read, not before the next one, because httpx hands a read's pieces out one at a
time and cannot say which is the last without reading the network again: a wait
placed before the next read gave the loop a turn after each batch's first piece,
which then left in a notification of its own (two per interval). A token waits
at most about two intervals, 40 ms (it arrives just after a read, comes with the
next one, and is held with it); a screen refreshes every 17. The first piece of a
turn is never held, and a cancel still acts at once: the hold is an
`asyncio.sleep`, which a cancellation interrupts. Nor is a piece held that the read
waited half an interval or more for: tokens that far apart (a model on a CPU makes
tens a second) would not batch, and the hold would only add a wake-up and its delay
to each (at 50 tokens/s, about 30% of the daemon's CPU).

Reads served from what the HTTP library has already buffered do not give the event
loop a turn: after `FAIR_SHARE_S` of them the stream yields, so one flooding stream
cannot keep the other chats (and the client's cancels) waiting. It is 1 ms, about
the time a loaded machine takes for one interval's 20 tokens: at 0.5 ms a batch was
often split in two by the yield, and so was its notification.

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
FAIR_SHARE_S = 0.001  # longest a stream keeps the event loop to itself

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
        self._delivered = False  # the turn's first piece is never held back
        self._marker: asyncio.Handle | None = None
        self._turn_at = self._loop.time()
        self._watch = self._loop.call_at(self._turn_at + stall_timeout, self._check_stall)
        self._arm()

    async def next(self) -> T | None:
        """The next chunk; None at the end of the stream."""
        if self._loop.time() - self._turn_at > FAIR_SHARE_S:
            await self._give_turn(0)
        self._reading_since = started = self._loop.time()
        try:
            piece = await anext(self._reads, None)
        finally:
            self._reading_since = None
        if self._waited and self._delivered and piece is not None and self._loop.time() - started < self._interval / 2:
            # The read gave the event loop a turn (it read the socket) and the tokens
            # come faster than the hold: let the next ones gather in the kernel while
            # this read's pieces wait together.
            await self._give_turn(self._interval)
        self._delivered = True
        return piece

    def close(self) -> None:
        self._watch.cancel()
        if self._marker is not None:
            self._marker.cancel()
            self._marker = None

    async def _give_turn(self, delay: float) -> None:
        await asyncio.sleep(delay)
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
