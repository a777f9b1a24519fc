"""Reading LSP base-protocol frames (`Content-Length` headers + body) from a stream.

A broken frame never ends the session: it is reported and reading resumes at
the next header.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator

import attrs

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_HEADER_LINE = 8 * 1024
_SKIP_CHUNK = 1024 * 1024
_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\S*)[ \t]*$", re.IGNORECASE)


@attrs.frozen
class BadFrame:
    """A frame that could not be read; `reason` is for the log."""

    reason: str


async def read_frames(
    reader: asyncio.StreamReader, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> AsyncIterator[bytes | BadFrame]:
    """Yield each message body, or a `BadFrame`; stop at end of input."""
    while True:
        try:
            length = await _read_headers(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        if isinstance(length, BadFrame):
            yield length
            continue
        if length > max_message_bytes:
            # Refused before allocating: skip the body in pieces to stay in sync.
            if not await _skip(reader, length):
                return
            yield BadFrame(f"message of {length} bytes exceeds the {max_message_bytes}-byte limit")
            continue
        try:
            yield await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            logger.warning("input ended inside a message body (%d bytes declared)", length)
            return


async def _read_headers(reader: asyncio.StreamReader) -> int | BadFrame:
    """Read header lines up to the blank line; return the Content-Length."""
    length: int | BadFrame | None = None
    saw_header = False
    while True:
        line = await _read_line(reader)
        if not line.strip():
            if not saw_header:
                continue  # stray blank lines between messages are harmless
            return length if length is not None else BadFrame("headers without Content-Length")
        saw_header = True
        match = _CONTENT_LENGTH.search(line.rstrip(b"\r\n"))
        if match is None:
            continue  # Content-Type and unknown headers are ignored
        value = match.group(1)
        length = int(value) if value.isdigit() else BadFrame(f"invalid Content-Length {value[:40]!r}")


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    overlong = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError as overrun:
            # Drop what is buffered of the line and keep reading until its end.
            await reader.readexactly(max(overrun.consumed, 1))
            overlong = True
            continue
        return b"X-Overlong-Header: dropped\r\n" if overlong else line


async def _skip(reader: asyncio.StreamReader, count: int) -> bool:
    while count:
        piece = await reader.read(min(count, _SKIP_CHUNK))
        if not piece:
            return False
        count -= len(piece)
    return True
