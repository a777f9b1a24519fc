"""HTTP/1.1 responses read at the byte level: the head, the body's framing, its coding.

Pure functions and small state machines, no I/O: `stream` feeds them whole socket
reads. The per-token cost matters here, because Ollama sends every NDJSON object as
its own HTTP chunk: `ChunkedBody.feed` strips all the chunk framing of a read in one
loop and hands back the payload as one `bytes`.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024  # status line and headers; Ollama sends a few hundred bytes
_MAX_CHUNK_LINE = 4096  # a chunk-size line (with extensions) or a trailer line
_CRLF = b"\r\n"


class ProtocolError(Exception):
    """The bytes are not a well-formed HTTP/1.1 response."""


# ---------------------------------------------------------------- the head


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    reason: str
    version: str  # "HTTP/1.1"
    headers: dict[str, str]  # lower-case names; a repeated field's values joined with ", "

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after this response."""
        tokens = {token.strip().lower() for token in self.headers.get("connection", "").split(",")}
        return self.version == "HTTP/1.1" and "close" not in tokens

    @property
    def informational(self) -> bool:
        """A 1xx that another head follows (101 would switch protocols: it is an answer)."""
        return 100 <= self.status <= 199 and self.status != 101


def parse_head(block: bytes) -> ResponseHead:
    """The status line and header fields; `block` ends before the blank line."""
    status_line, *field_lines = block.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not (code.isascii() and code.isdigit()):
        raise ProtocolError(f"illegal status line: {_quote(status_line)}")
    headers: dict[str, str] = {}
    for line in field_lines:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"illegal header line: {_quote(line)}")
        key, value = name.lower(), value.strip(" \t")
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return ResponseHead(int(code), reason, version, headers)


def _quote(text: str) -> str:
    return repr(text if len(text) <= 100 else text[:100] + "…")


# ---------------------------------------------------------------- body framing


class Body:
    """How the body's end is found. `feed` returns the payload in `data` (framing removed)."""

    __slots__ = ("complete", "extra")

    def __init__(self) -> None:
        self.complete = False
        self.extra = 0  # bytes received after the body's end: the connection cannot be reused

    @property
    def ends_at_close(self) -> bool:
        """Only the server closing the connection ends this body."""
        return False

    def feed(self, data: bytes) -> bytes:
        raise NotImplementedError

    def end_of_input(self) -> str | None:
        """The connection ended here: None if that ends the body, else why it is cut short."""
        raise NotImplementedError


class ChunkedBody(Body):
    """Transfer-Encoding: chunked, decoded over reads that split chunks anywhere."""

    __slots__ = ("_crlf_left", "_data_left", "_in_trailers", "_partial")

    def __init__(self) -> None:
        super().__init__()
        self._data_left = 0  # bytes of the current chunk's data still to come
        self._crlf_left = 0  # bytes of the CRLF after that data still to come
        self._in_trailers = False
        self._partial = b""  # an unfinished chunk-size or trailer line

    def feed(self, data: bytes) -> bytes:
        if self.complete:
            self.extra += len(data)
            return b""
        if self._partial:
            data = self._partial + data
            self._partial = b""
        pieces: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._data_left or self._crlf_left:
                pos = self._continue_chunk(data, pos, pieces)
                continue
            eol = data.find(_CRLF, pos)
            if eol < 0 or eol - pos > _MAX_CHUNK_LINE:
                self._keep_partial(data[pos:])
                break
            if self._in_trailers:
                pos = self._trailer_line(data, pos, eol)
                continue
            start = eol + 2
            try:
                size = int(data[pos:eol], 16)  # fast: no extension, as Go writes it
            except ValueError:
                size = _chunk_size_with_extensions(data[pos:eol])
            if size <= 0:
                if size < 0:
                    raise ProtocolError("negative chunk size")
                self._in_trailers = True
                pos = start
                continue
            stop = start + size
            if data[stop : stop + 2] == _CRLF:  # the whole chunk is in this read: the usual case
                pieces.append(data[start:stop])
                pos = stop + 2
            else:
                self._data_left = size
                pos = start
        return b"".join(pieces)

    def _continue_chunk(self, data: bytes, pos: int, pieces: list[bytes]) -> int:
        """Take the rest of a chunk that began in an earlier read, then its CRLF."""
        if self._data_left:
            take = min(self._data_left, len(data) - pos)
            pieces.append(data[pos : pos + take])
            pos += take
            self._data_left -= take
            if self._data_left:
                return pos
            self._crlf_left = 2
        while self._crlf_left and pos < len(data):
            if data[pos] != _CRLF[2 - self._crlf_left]:
                raise ProtocolError("chunk data is not followed by CRLF")
            pos += 1
            self._crlf_left -= 1
        return pos

    def _trailer_line(self, data: bytes, pos: int, eol: int) -> int:
        if eol == pos:  # the blank line after the last chunk: the body is over
            self.complete = True
            self.extra += len(data) - (eol + 2)
            return len(data)
        return eol + 2  # trailer fields: nothing we need

    def _keep_partial(self, rest: bytes) -> None:
        if len(rest) > _MAX_CHUNK_LINE:
            raise ProtocolError("chunk-size line too long")
        self._partial = rest

    def end_of_input(self) -> str | None:
        if self.complete:
            return None
        # h11's wording, so both HTTP paths report a cut the same way
        return "peer closed connection without sending complete message body (incomplete chunked read)"


def _chunk_size_with_extensions(line: bytes) -> int:
    size = line.split(b";", 1)[0].strip()
    try:
        return int(size, 16)
    except ValueError:
        raise ProtocolError(f"illegal chunk size line: {line[:40]!r}") from None


class LengthBody(Body):
    """Content-Length bytes (also 0 for bodiless statuses)."""

    __slots__ = ("_expected", "_left")

    def __init__(self, length: int) -> None:
        super().__init__()
        self._expected = self._left = length
        self.complete = length == 0

    def feed(self, data: bytes) -> bytes:
        if len(data) < self._left:
            self._left -= len(data)
            return data
        payload, self.extra = data[: self._left], self.extra + len(data) - self._left
        self._left = 0
        self.complete = True
        return payload

    def end_of_input(self) -> str | None:
        if self.complete:
            return None
        received = self._expected - self._left
        return (
            "peer closed connection without sending complete message body "
            f"(received {received} bytes, expected {self._expected})"
        )


class UntilCloseBody(Body):
    """No length given: the body is everything until the server closes."""

    __slots__ = ()

    @property
    def ends_at_close(self) -> bool:
        return True

    def feed(self, data: bytes) -> bytes:
        return data

    def end_of_input(self) -> str | None:
        self.complete = True
        return None


def body_of(head: ResponseHead) -> Body:
    """The framing that `head` announces (RFC 9112 §6.3, as far as a client needs it)."""
    if head.status < 200 or head.status in (204, 304):
        return LengthBody(0)
    transfer_encoding = head.headers.get("transfer-encoding")
    if transfer_encoding is not None:
        if transfer_encoding.strip().lower() != "chunked":
            raise ProtocolError(f"unsupported Transfer-Encoding {transfer_encoding!r}")
        return ChunkedBody()
    content_length = head.headers.get("content-length")
    if content_length is None:
        return UntilCloseBody()
    lengths = {value.strip() for value in content_length.split(",")}  # repeats must agree
    length = lengths.pop()
    if lengths or not (length.isascii() and length.isdigit()):
        raise ProtocolError(f"illegal Content-Length {content_length!r}")
    return LengthBody(int(length))


# ---------------------------------------------------------------- content coding


class Decompressor:
    """Undoes gzip/deflate content coding incrementally. We ask for identity, but a proxy
    may compress anyway; like httpx, codings it does not know are passed through."""

    __slots__ = ("_steps",)

    def __init__(self, codings: list[str]):
        self._steps = [_Inflate(coding) for coding in reversed(codings)]

    def decode(self, data: bytes) -> bytes:
        for step in self._steps:
            data = step.decode(data)
        return data

    def flush(self) -> bytes:
        data = b""
        for step in self._steps:
            data = step.decode(data) + step.flush()
        return data


def decompressor_for(content_encoding: str) -> Decompressor | None:
    codings = [coding.strip().lower() for coding in content_encoding.split(",")]
    known = [coding for coding in codings if coding in ("gzip", "x-gzip", "deflate")]
    return Decompressor(known) if known else None


class _Inflate:
    __slots__ = ("_first", "_inflater", "_raw_fallback")

    def __init__(self, coding: str):
        gzip = coding != "deflate"
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if gzip else zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
        self._raw_fallback = not gzip
        self._first = True

    def decode(self, data: bytes) -> bytes:
        first, self._first = self._first, False
        try:
            return self._inflater.decompress(data)
        except zlib.error as exc:
            if not (first and self._raw_fallback):
                raise ProtocolError(f"cannot decompress the body: {exc}") from exc
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._inflater.decompress(data)

    def flush(self) -> bytes:
        try:
            return self._inflater.flush()
        except zlib.error as exc:
            raise ProtocolError(f"cannot decompress the body: {exc}") from exc
