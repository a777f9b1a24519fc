"""The LSP base protocol's frames: `Content-Length` headers, a blank line, a JSON body.

Free of asyncio (slow to import), so that `startup` can read the first frame and
answer it before the rest of the daemon is loaded; `reader` reads the stream.
"""

from __future__ import annotations

import json
import re

import attrs

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_HEADER_LINE = 8 * 1024
HEADERS_END = b"\r\n\r\n"
# After a broken frame, its body runs on into the next header line.
_TRAILING_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*\S*[ \t]*$", re.IGNORECASE)

dumps = json.JSONEncoder(ensure_ascii=True, check_circular=False).encode


@attrs.frozen
class BadFrame:
    """A frame that could not be read; `reason` is for the log."""

    reason: str


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def frame_json(message: object) -> bytes:
    """Frame a JSON-serialisable message for the wire."""
    return frame(dumps(message).encode())


def content_length(header_line: bytes, *, resynchronising: bool = False) -> int | BadFrame | None:
    """The length a header line declares; None when it is another header.

    The line is split at its first colon and the name compared whole, so that
    `X-Original-Content-Length: 5` is just another header. Only when
    `resynchronising` after a broken frame (whose body of unknown length ran on
    into this line) is a `Content-Length` at the end of the line taken.
    """
    line = header_line.rstrip(b"\r\n")
    if resynchronising and (trailing := _TRAILING_CONTENT_LENGTH.search(line)) is not None:
        line = trailing.group()
    name, colon, value = line.partition(b":")
    if not colon or name.strip(b" \t").lower() != b"content-length":
        return None  # Content-Type and unknown headers are ignored
    value = value.strip(b" \t")
    return int(value) if value.isdigit() else BadFrame(f"invalid Content-Length {value[:40]!r}")

