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
_CONTENT_LENGTH = re.compile(rb"content-length[ \t]*:[ \t]*(\S*)[ \t]*$", re.IGNORECASE)

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


def content_length(header_line: bytes) -> int | BadFrame | None:
    """The length a header line declares; None when it is another header."""
    match = _CONTENT_LENGTH.search(header_line.rstrip(b"\r\n"))
    if match is None:
        return None  # Content-Type and unknown headers are ignored
    value = match.group(1)
    return int(value) if value.isdigit() else BadFrame(f"invalid Content-Length {value[:40]!r}")

