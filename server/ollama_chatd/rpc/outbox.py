"""Everything the daemon writes to stdout goes through the `Outbox`.

It never blocks the event loop: the pipe is non-blocking and whatever the client
has not read yet waits here. Messages are written at the end of the event-loop
step that produced them, all in one write: the tokens of one read from Ollama (a
fast model delivers dozens at a time) leave as one `chat/token` per turn and
kind, and the messages of chats that run together share a system call. While
the client lags, later tokens keep merging into what waits, so a slow client
receives fewer, larger notifications instead of an ever-growing queue. Nothing is
dropped or reordered within a chat, other messages keep their place after the
tokens sent before them, and `seq` is assigned when a notification is framed, so
it stays contiguous.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque

from ollama_chatd.rpc import framing
from ollama_chatd.rpc.messages import CHAT_TOKEN

logger = logging.getLogger(__name__)

# Past HIGH bytes buffered in the transport we stop handing it data and start merging.
HIGH_WATER = 32 * 1024
LOW_WATER = 8 * 1024
# Past about this many bytes of tokens waiting for a client that does not read, turns
# stop reading from Ollama (TCP slows it down) until the client catches up. A waiting
# token costs its text plus a Python string's overhead, which dominates for short ones.
CONGESTED_BYTES = 1024 * 1024
TOKEN_OVERHEAD_BYTES = 64


class TokenStream:
    """The token numbering of one turn (`chat/token`) or model call (`model/token`)."""

    __slots__ = ("_prefix", "seq")

    def __init__(self, owner_id: str, method: str = CHAT_TOKEN, id_field: str = "chatId"):
        self._prefix = (
            b'{"jsonrpc":"2.0","method":' + framing.dumps(method).encode()
            + b',"params":{' + framing.dumps(id_field).encode() + b":" + framing.dumps(owner_id).encode()
        )
        self.seq = 0

    def frame(self, kind: str, text: str) -> bytes:
        body = b"".join(
            (self._prefix, b',"kind":"', kind.encode(), b'","text":', framing.dumps(text).encode(),
             b',"seq":', str(self.seq).encode(), b"}}")
        )
        self.seq += 1
        return framing.frame(body)


class _PendingTokens:
    __slots__ = ("stream", "kind", "parts")

    def __init__(self, stream: TokenStream, kind: str, text: str):
        self.stream = stream
        self.kind = kind
        self.parts = [text]

    def frame(self) -> bytes:
        return self.stream.frame(self.kind, "".join(self.parts))


class Outbox(asyncio.Protocol):
    """pygls' writer (`write(bytes)`, `close()`) plus a fast path for tokens."""

    def __init__(self) -> None:
        self._transport: asyncio.WriteTransport | None = None
        self._paused = False
        self._closed = False
        self._backlog: deque[bytes | _PendingTokens] = deque()
        # The newest backlog entry of each stream that later tokens may still join.
        self._open: dict[TokenStream, _PendingTokens] = {}
        self._flush_scheduled = False
        self._waiting_bytes = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self.lost = asyncio.Event()

    @classmethod
    async def connect(cls, fd: int) -> Outbox:
        loop = asyncio.get_running_loop()
        outbox = cls()
        pipe = os.fdopen(fd, "wb", buffering=0, closefd=False)
        try:
            await loop.connect_write_pipe(lambda: outbox, pipe)
        except ValueError:
            # A regular file (`serve > out.jsonl`) cannot be a pipe transport; writes
            # to a file do not block on a reader, so plain writes are fine there.
            outbox.connection_made(_FileTransport(pipe))
        return outbox

    # -- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if isinstance(transport, asyncio.WriteTransport):
            transport.set_write_buffer_limits(high=HIGH_WATER, low=LOW_WATER)

    def connection_lost(self, exc: Exception | None) -> None:
        logger.info("stdout closed: %s", exc or "client went away")
        self._closed = True
        self._backlog.clear()
        self._open.clear()
        self._drained.set()
        self.lost.set()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._flush_backlog()

    # -- writing ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send an already framed message (pygls' path for everything but tokens),
        after the tokens waiting before it, at the end of this event-loop step."""
        if self._closed:
            return
        # Tokens queued before this message must not absorb tokens sent after it.
        self._open.clear()
        self._backlog.append(data)
        self._schedule_flush()

    def send_token(self, stream: TokenStream, kind: str, text: str) -> None:
        if self._closed:
            return
        pending = self._open.get(stream)
        if pending is not None and pending.kind == kind:
            pending.parts.append(text)
        else:
            self._open[stream] = pending = _PendingTokens(stream, kind, text)
            self._backlog.append(pending)
        self._waiting_bytes += len(text) + TOKEN_OVERHEAD_BYTES
        if self._waiting_bytes > CONGESTED_BYTES:
            self._drained.clear()
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_step)

    def _flush_step(self) -> None:
        self._flush_scheduled = False
        self._flush_backlog()

    def _flush_backlog(self, *, force: bool = False) -> None:
        """Hand the waiting messages to the transport in one write, unless the client lags."""
        if self._closed or not self._backlog or (self._paused and not force):
            return
        frames = []
        for item in self._backlog:
            if isinstance(item, _PendingTokens):
                if self._open.get(item.stream) is item:
                    del self._open[item.stream]
                item = item.frame()
            frames.append(item)
        self._backlog.clear()
        self._waiting_bytes = 0
        self._drained.set()
        assert self._transport is not None
        self._transport.write(b"".join(frames))

    @property
    def congested(self) -> bool:
        """The client has left so much unread that producers should wait."""
        return not self._drained.is_set()

    async def until_drained(self) -> None:
        await self._drained.wait()

    @property
    def pending_bytes(self) -> int:
        """Bytes handed to the transport but not yet taken by the client."""
        if self._transport is None or self._closed:
            return 0
        return self._transport.get_write_buffer_size()

    async def flush(self, timeout: float) -> bool:
        """Wait until the client has taken everything, or `timeout` passes."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._closed and (self._backlog or self.pending_bytes):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def close(self) -> None:
        """pygls calls this on `exit`. Turns cancelled by the exit still owe their
        answers, so the daemon closes the pipe itself once they are written."""

    def shut(self) -> None:
        """Hand everything to the transport and close it (it flushes as it can)."""
        self._flush_backlog(force=True)
        if self._transport is not None and not self._closed:
            self._transport.close()


class _FileTransport:
    """The part of a write transport the Outbox uses, over a plain file."""

    def __init__(self, file) -> None:
        self._file = file

    def write(self, data: bytes) -> None:
        self._file.write(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        self._file.flush()
