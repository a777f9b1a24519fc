"""Reading the client's frames from stdin.

A broken frame never ends the session: it is reported and reading resumes at
the next header.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import threading
from collections.abc import AsyncIterator

from ollama_chatd.rpc.framing import DEFAULT_MAX_MESSAGE_BYTES, MAX_HEADER_LINE, BadFrame, content_length

logger = logging.getLogger(__name__)

_SKIP_CHUNK = 1024 * 1024


async def open_reader(fd: int, already_read: bytes = b"") -> asyncio.StreamReader:
    """A reader of `fd`, starting with what was read from it before."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_HEADER_LINE)
    reader.feed_data(already_read)
    pipe = os.fdopen(fd, "rb", buffering=0, closefd=False)
    if _pollable(fd):
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    else:
        # epoll cannot watch a regular file (`serve < session.jsonrpc`) or /dev/null.
        threading.Thread(target=_pump_file, args=(pipe, reader, loop), daemon=True).start()
    return reader


def _pollable(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)


def _pump_file(file, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
    while chunk := file.read(64 * 1024):
        loop.call_soon_threadsafe(reader.feed_data, chunk)
    loop.call_soon_threadsafe(reader.feed_eof)


async def read_frames(
    reader: asyncio.StreamReader, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> AsyncIterator[bytes | BadFrame]:
    """Yield each message body, or a `BadFrame`; stop at end of input."""
    resynchronising = False
    while True:
        try:
            length = await _read_headers(reader, resynchronising)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        resynchronising = isinstance(length, BadFrame)
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


async def _read_headers(reader: asyncio.StreamReader, resynchronising: bool) -> int | BadFrame:
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
        declared = content_length(line, resynchronising=resynchronising)
        if declared is not None:
            length = declared


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
