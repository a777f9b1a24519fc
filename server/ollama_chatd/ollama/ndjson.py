"""Split a byte stream into NDJSON lines without ever decoding partial data.

Network chunks are not aligned to lines: one chunk can hold half a line, several
lines, or end in the middle of a multi-byte UTF-8 character. Working on bytes and
only handing out complete lines makes all three cases the same case.
"""

from __future__ import annotations

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024  # Ollama's Go client (api/client.go) uses the same cap

_NEWLINE = b"\n"


class LineTooLong(ValueError):
    """A line grew past the splitter's limit; the stream cannot be trusted further."""

    def __init__(self, limit: int):
        super().__init__(
            f"Ollama sent a line longer than the limit of {_describe_size(limit)} (max_line_bytes={limit})"
        )
        self.limit = limit


class LineSplitter:
    """Incremental newline splitter: `feed()` raw chunks, get back complete lines.

    Lines come back without their `\\n`; blank lines are dropped. A line longer than
    `max_line_bytes` raises `LineTooLong` as soon as that is known, so a broken
    server cannot make the buffer grow without bound.
    """

    __slots__ = ("_max_line_bytes", "_pending", "_pending_size")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES):
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self._max_line_bytes = max_line_bytes
        # The unfinished line, kept as a list of pieces so a long line arriving in
        # many small chunks is joined once instead of being copied on every chunk.
        self._pending: list[bytes] = []
        self._pending_size = 0

    @property
    def max_line_bytes(self) -> int:
        return self._max_line_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add a chunk; return the lines it completed (possibly none)."""
        lines = chunk.split(_NEWLINE)
        unfinished = lines.pop()
        if not lines:  # no newline in this chunk: the current line goes on
            self._keep_pending(unfinished)
            return []
        if self._pending:
            self._pending.append(lines[0])
            lines[0] = b"".join(self._pending)
            self._pending.clear()
        # Cheap guard first: no line can be too long if all bytes together are not.
        if self._pending_size + len(chunk) > self._max_line_bytes:
            self._check_lengths(lines)
        self._pending_size = 0
        if unfinished:
            self._keep_pending(unfinished)
        if len(lines) == 1:  # the usual case: Ollama flushes one line per write
            return [] if _is_blank(lines[0]) else lines
        return [line for line in lines if line and not line.isspace()]

    def flush(self) -> bytes | None:
        """End of stream: return the last line if it had no trailing newline."""
        line = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        return None if _is_blank(line) else line

    def _keep_pending(self, piece: bytes) -> None:
        if not piece:
            return
        self._pending_size += len(piece)
        if self._pending_size > self._max_line_bytes:
            self._pending.clear()
            self._pending_size = 0
            raise LineTooLong(self._max_line_bytes)
        self._pending.append(piece)

    def _check_lengths(self, lines: list[bytes]) -> None:
        if lines and max(map(len, lines)) > self._max_line_bytes:
            raise LineTooLong(self._max_line_bytes)


def _is_blank(line: bytes) -> bool:
    return not line or line.isspace()


def _describe_size(size: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"
