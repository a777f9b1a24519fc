"""What a command writes, kept in bounded memory however much it writes.

The model gets the head and the tail (a test run's summary is at its end), with how
many bytes and lines were cut between them; the client sees the last characters so
far while it runs. Only those are kept: 20 MB of output cost the daemon a few KiB.
Bytes that are not UTF-8 are replaced (U+FFFD), never an error.
"""

from __future__ import annotations

import codecs
from collections import deque

HEAD_BYTES = 2 * 1024
TAIL_BYTES = 6 * 1024  # ~2,000 tokens in all: room for the rest of a small model's window
SHOWN_CHARS = 2000  # of the output so far, in each `running` update (the wire's preview size)
_CONTINUATION = range(0x80, 0xC0)


class CommandOutput:
    def __init__(self) -> None:
        self.total_bytes = 0
        self.total_lines = 0  # newlines seen
        self.shown_length = 0  # characters decoded so far; `shown` is the last of them
        self.shown = ""
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_bytes = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes) -> None:
        self.total_bytes += len(data)
        self.total_lines += data.count(b"\n")
        self._show(self._decoder.decode(data))
        room = HEAD_BYTES - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
        if data:
            self._keep_tail(data)

    def finish(self) -> None:
        """The end of the output: an incomplete character at its very end is shown replaced."""
        self._show(self._decoder.decode(b"", final=True))

    def _show(self, text: str) -> None:
        self.shown_length += len(text)
        self.shown = (self.shown + text)[-SHOWN_CHARS:]

    def _keep_tail(self, data: bytes) -> None:
        self._tail.append(data)
        self._tail_bytes += len(data)
        while self._tail_bytes - len(self._tail[0]) >= TAIL_BYTES:
            self._tail_bytes -= len(self._tail.popleft())

    def for_model(self) -> str:
        """The output, its middle cut (with how much) when it is longer than head and tail."""
        head = bytes(self._head)
        tail = b"".join(self._tail)[-TAIL_BYTES:]
        cut = self.total_bytes - len(head) - len(tail)
        if cut == 0:
            return (head + tail).decode("utf-8", "replace")
        lines = self.total_lines - head.count(b"\n") - tail.count(b"\n")
        return (
            f"{_head_text(head)}\n[... {cut:,} bytes ({lines:,} lines) cut here: the output was "
            f"{self.total_bytes:,} bytes; only its first {len(head):,} and last {len(tail):,} are shown ...]\n"
            f"{_tail_text(tail)}"
        )


def _head_text(head: bytes) -> str:
    """The head without the character its cut split (that would read as a bad byte)."""
    return codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=False)


def _tail_text(tail: bytes) -> str:
    skip = 0
    while skip < min(3, len(tail)) and tail[skip] in _CONTINUATION:
        skip += 1
    return tail[skip:].decode("utf-8", "replace")
