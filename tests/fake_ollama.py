#!/usr/bin/env python3
"""A fake Ollama server that speaks Ollama's real HTTP wire format.

The end-to-end tests, the benchmark and the VS Code extension's node tests run it on
127.0.0.1 in place of a real Ollama. The HTTP/1.1 is written by hand on asyncio streams
(stdlib only, no web framework) because the tests need byte-level control over what the
client sees: when the status line goes out (Ollama sends nothing until its first chunk),
where HTTP chunks start and end (one NDJSON object per chunk, as Go flushes per object),
keep-alive, and connections that close mid-stream. A background reader notices a client
that drops the connection at once, so cancellation latency can be measured.

In-process use (the fake runs its own event loop in a daemon thread)::

    with FakeOllama() as fake:
        fake.script(Reply.text(["Hel", "lo"]), model="tiny")
        ...point the client at fake.url...
        [req] = fake.wait_for_requests(1)

From another language: ``python tests/fake_ollama.py [--port 0]`` prints one JSON line
``{"url": "http://127.0.0.1:PORT"}`` and serves until SIGTERM/SIGINT or stdin EOF; it is
scripted through ``POST /_fake/script``, ``GET /_fake/requests`` and ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import email.utils
import hashlib
import http
import itertools
import json
import logging
import os
import re
import signal
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("fake_ollama")

OLLAMA_VERSION = "0.12.10"
NDJSON = "application/x-ndjson"
JSON_UTF8 = "application/json; charset=utf-8"
MAX_HEAD = 1 << 20  # bytes of request line + headers we accept
WRITE_BATCH = 1 << 18  # bulk replies are written in slices of this size, with drain


# --------------------------------------------------------------------------- wire helpers

_GO_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def go_json(obj: Any) -> bytes:
    """Encode like Go's json.Marshal: compact, raw UTF-8, but <, >, & and U+2028/9 escaped.

    Raw multi-byte UTF-8 matters: clients must cope with characters split across reads.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_GO_ESCAPES).encode("utf-8", "replace")


def go_type(value: Any) -> str:
    """The JSON type name Go's decoder uses in its "cannot unmarshal X" errors."""
    for types, name in ((bool, "bool"), ((int, float), "number"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, types):
            return name
    return "null"


def ollama_timestamp() -> str:
    """`created_at` as Ollama writes it (RFC 3339, UTC, sub-second)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def reason_phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return f"status code {status}"  # what Go writes for codes it doesn't know (e.g. 499)


def encode_chunk(data: bytes) -> bytes:
    """One HTTP/1.1 chunk: hex size, CRLF, data, CRLF."""
    return b"%x\r\n%s\r\n" % (len(data), data)


LAST_CHUNK = b"0\r\n\r\n"


def split_words(text: str) -> list[str]:
    """Word tokens that keep their leading whitespace, so that ``"".join(tokens) == text``."""
    return re.findall(r"\s*\S+|\s+", text)


def normalize_model(name: str) -> str:
    """Ollama's implicit tag: "tiny" and "tiny:latest" are the same model."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


# --------------------------------------------------------------------------- connections


class ClientGone(Exception):
    """The client closed or reset the connection; the reply must stop."""


class BadRequest(Exception):
    """The bytes on the connection are not an HTTP/1.1 request we can parse."""


class Connection:
    """One accepted TCP connection.

    A background task reads the socket all the time and buffers what arrives, so a client
    that drops the connection is noticed the moment it happens, even while a reply is being
    written or is "loading" before its first byte (Ollama notices through the request
    context the same way). Request parsing consumes that buffer, so keep-alive and even
    pipelined requests still work.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_gone: Callable) -> None:
        self._reader = reader
        self._writer = writer
        self._on_gone = on_gone
        self._buf = bytearray()
        self._arrived = asyncio.Event()
        self.gone = asyncio.Event()  # set once, when either side ended the connection
        self.current: RecordedRequest | None = None  # request whose response is still open
        self._pump = asyncio.create_task(self._read_socket())

    async def _read_socket(self) -> None:
        with contextlib.suppress(OSError):
            while data := await self._reader.read(1 << 16):
                self._buf += data
                self._arrived.set()
        self._mark_gone(by_peer=True)

    def _mark_gone(self, *, by_peer: bool) -> None:
        if not self.gone.is_set():
            self.gone.set()
            self._arrived.set()
            self._on_gone(self, time.monotonic(), by_peer)

    async def _more(self) -> bool:
        """Wait for more bytes; False when the connection is gone."""
        if self.gone.is_set():
            return False
        self._arrived.clear()
        await self._arrived.wait()
        return True

    async def read_until(self, sep: bytes, limit: int) -> bytes | None:
        """Bytes up to and including `sep`, or None if the connection ends first."""
        while (i := self._buf.find(sep)) < 0:
            if len(self._buf) > limit:
                raise BadRequest("line or header block too long")
            if not await self._more():
                return None
        return self._take(i + len(sep))

    async def read_exactly(self, n: int) -> bytes | None:
        while len(self._buf) < n:
            if not await self._more():
                return None
        return self._take(n)

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    async def write(self, data: bytes | memoryview) -> None:
        if self.gone.is_set():
            raise ClientGone
        self._writer.write(data)
        transport = self._writer.transport
        if self.current is not None and transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            self.current._pushed_back.set()  # drain() now waits until the client reads
        try:
            await self._writer.drain()
        except OSError as exc:  # ConnectionResetError, BrokenPipeError
            self._mark_gone(by_peer=True)
            raise ClientGone from exc

    def close(self, *, abort: bool = False) -> None:
        """Close from our side (after flushing, unless `abort`); not a client drop."""
        self._mark_gone(by_peer=False)
        if abort:
            self._writer.transport.abort()
        else:
            self._writer.close()
        self._pump.cancel()


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


async def read_request(conn: Connection) -> HttpRequest | None:
    """Parse one request (head and body) off the connection; None at a clean EOF."""
    head = await conn.read_until(b"\r\n\r\n", MAX_HEAD)
    if head is None:
        return None
    request_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    try:
        method, target, version = request_line.split(" ")
    except ValueError:
        raise BadRequest(f"bad request line {request_line!r}") from None
    if not version.startswith("HTTP/1."):
        raise BadRequest(f"unsupported version {version!r}")
    headers: dict[str, str] = {}
    for line in header_lines:
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            raise BadRequest(f"bad header line {line!r}")
        key, value = name.strip().lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value

    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise BadRequest("bad Content-Length") from None
    if headers.get("expect", "").lower() == "100-continue" and (chunked or length):
        await conn.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits for this before big bodies
    body = await (read_chunked_body(conn) if chunked else conn.read_exactly(length))
    if body is None:
        return None
    return HttpRequest(method, target, version, headers, body)


async def read_chunked_body(conn: Connection) -> bytes | None:
    body = bytearray()
    while True:
        size_line = await conn.read_until(b"\r\n", 1024)
        if size_line is None:
            return None
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise BadRequest("bad chunk size") from None
        if size == 0:
            while (trailer := await conn.read_until(b"\r\n", MAX_HEAD)) not in (None, b"\r\n"):
                pass
            return None if trailer is None else bytes(body)
        data = await conn.read_exactly(size + 2)
        if data is None:
            return None
        body += data[:-2]


class Response:
    """Writes the one HTTP response to a request.

    The status line and headers go out together with the first body bytes, never before:
    Ollama sends nothing at all until its first chunk, and client first-byte timeouts
    depend on that. Every write and sleep raises ClientGone once the client has dropped.

    Status and completion are recorded on the request *before* the bytes go out: the test
    thread may read the whole response before this loop runs again.
    """

    def __init__(self, conn: Connection, record: RecordedRequest, *, head_only: bool = False,
                 close: bool = False) -> None:
        self.conn = conn
        self.record = record
        self.head_only = head_only
        self.close_after = close  # close the connection when the reply is done
        self._chunked_head = (200, NDJSON)

    @property
    def status(self) -> int | None:
        """The status sent, None while no status line has gone out."""
        return self.record.status

    def _head(self, status: int, fields: list[tuple[str, Any]]) -> bytes:
        self.record.status = status
        lines = [f"HTTP/1.1 {status} {reason_phrase(status)}", *(f"{k}: {v}" for k, v in fields)]
        lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
        if self.close_after:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def send(self, status: int, body: bytes, content_type: str) -> None:
        """A complete response with Content-Length."""
        head = self._head(status, [("Content-Type", content_type), ("Content-Length", len(body))])
        await self._write_last(head if self.head_only else head + body)

    async def _write_last(self, data: bytes | memoryview) -> None:
        """Write the response's final bytes; it is complete once they are handed to the socket."""
        if self.conn.gone.is_set():
            raise ClientGone
        self.record.response_completed = True
        await self.conn.write(data)

    async def send_json(self, obj: Any, status: int = 200) -> None:
        await self.send(status, go_json(obj), JSON_UTF8)

    async def send_error(self, status: int, message: str) -> None:
        await self.send_json({"error": message}, status)

    # chunked bodies

    def begin_chunked(self, status: int = 200, content_type: str = NDJSON) -> None:
        """Choose the status line of a chunked response; it is written with the first chunk."""
        self._chunked_head = (status, content_type)

    def _pending_head(self) -> bytes:
        if self.status is not None:
            return b""
        status, content_type = self._chunked_head
        return self._head(status, [("Content-Type", content_type), ("Transfer-Encoding", "chunked")])

    async def chunk(self, data: bytes) -> None:
        """Send `data` as exactly one HTTP chunk (empty data would end the body, so it is skipped)."""
        if data:
            await self.conn.write(self._pending_head() + encode_chunk(data))

    async def chunk_json(self, obj: Any) -> None:
        await self.chunk(go_json(obj) + b"\n")

    async def write_encoded(self, encoded: bytes) -> None:
        """Write already chunk-encoded bytes in large slices, draining between them."""
        view = memoryview(self._pending_head() + encoded)
        for start in range(0, len(view), WRITE_BATCH):
            last = start + WRITE_BATCH >= len(view)
            await (self._write_last if last else self.conn.write)(view[start : start + WRITE_BATCH])

    async def finish(self, *, terminate: bool = True) -> None:
        """End the chunked body with the zero-size chunk, or (terminate=False) by closing
        the connection without it, like a server that died mid-stream."""
        self.close_after |= not terminate
        if terminate or self.status is None:
            await self._write_last(self._pending_head() + (LAST_CHUNK if terminate else b""))
        else:
            self.record.response_completed = True

    # time

    async def sleep(self, seconds: float) -> None:
        """Sleep, but give up at once if the client drops (a cancelled load aborts in Ollama too)."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.conn.gone.wait(), seconds)
        else:
            await asyncio.sleep(0)
        if self.conn.gone.is_set():
            raise ClientGone

    async def wait_for_drop(self) -> None:
        await self.conn.gone.wait()
        raise ClientGone


# --------------------------------------------------------------------------- records and models


@dataclass(eq=False)
class RecordedRequest:
    """One request as the fake received it, plus what became of its connection."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    raw_body: bytes
    body: Any  # parsed JSON, or None
    received_at: float  # time.monotonic() when the whole request had arrived
    closed_at: float | None = None  # when the connection ended while this response was open
    response_completed: bool = False  # the fake wrote everything its reply meant to write
    client_dropped: bool = False  # the client went away before the response was complete
    status: int | None = None  # status code sent, None if no status line went out
    _dropped: threading.Event = field(default_factory=threading.Event, repr=False)
    _pushed_back: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Block until the client dropped the connection before this response was complete."""
        return self._dropped.wait(timeout)

    async def wait_closed_async(self, timeout: float = 5.0) -> bool:
        """`wait_closed` for async tests, without blocking their event loop."""
        return await asyncio.to_thread(self._dropped.wait, timeout)

    async def wait_pushed_back(self, timeout: float = 10.0, *, or_completed: bool = False) -> bool:
        """Wait until the client stops reading this response: the fake's writes fill the
        socket buffers and wait for it (a client applying flow control). `or_completed`:
        also return once the whole response is written."""

        def wait() -> bool:
            deadline = time.monotonic() + timeout
            while not (or_completed and self.response_completed):
                if self._pushed_back.wait(min(0.01, max(0.0, deadline - time.monotonic()))):
                    return True
                if time.monotonic() >= deadline:
                    return False
            return True

        return await asyncio.to_thread(wait)

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": self.headers,
            "body": self.body,
            "received_at": self.received_at,
            "closed_at": self.closed_at,
            "response_completed": self.response_completed,
            "client_dropped": self.client_dropped,
            "status": self.status,
        }


@dataclass
class FakeModel:
    name: str
    family: str = "llama"
    parameter_size: str = "3.2B"
    quantization: str = "Q4_K_M"
    size: int = 2_019_393_189
    capabilities: list[str] = field(default_factory=lambda: ["completion"])
    context_length: int = 4096
    architecture: str = ""  # defaults to `family`

    def __post_init__(self) -> None:
        self.name = normalize_model(self.name)
        self.architecture = self.architecture or self.family

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization,
        }

    def parameter_count(self) -> int:
        number, unit = re.fullmatch(r"([\d.]+)([KMBT]?)", self.parameter_size.upper()).groups()
        return int(float(number) * {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "T": 1e12}[unit])


MODIFIED_AT = "2025-10-30T12:00:00.123456789Z"


def default_models() -> dict[str, FakeModel]:
    models = [
        FakeModel("tiny", "llama", "1.2B", size=807_694_464, capabilities=["completion", "tools"], context_length=8192),
        FakeModel("thinker", "qwen3", "8.2B", size=5_225_388_164, capabilities=["completion", "tools", "thinking"], context_length=40960),
        FakeModel("vision", "gemma3", "4.3B", size=3_338_801_804, capabilities=["completion", "vision"], context_length=131072),
        FakeModel("plain", "llama", "3.2B", capabilities=["completion"], context_length=4096),
    ]
    return {m.name: m for m in models}


# --------------------------------------------------------------------------- replies


@dataclass
class ChatContext:
    """What a reply needs to know about the /api/chat request it answers."""

    model: str  # as the client spelt it: Ollama echoes req.Model unchanged
    body: dict[str, Any]
    received_at: float
    new_call_id: Callable[[], str]

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is not False  # absent or null means true

    def obj(self, message: dict[str, Any] | None = None, *, done: bool = False, **extra: Any) -> dict[str, Any]:
        """A ChatResponse object: `content` is always present, other message fields only if set."""
        msg = {"role": "assistant", "content": "", **(message or {})}
        return {"model": self.model, "created_at": ollama_timestamp(), "message": msg, "done": done, **extra}

    def line(self, message: dict[str, Any] | None = None, **kw: Any) -> bytes:
        return go_json(self.obj(message, **kw)) + b"\n"

    def tool_call(self, spec: dict[str, Any], index: int) -> dict[str, Any]:
        """`{"name", "arguments"}` or `{"id"?, "function": {...}}` -> Ollama's whole-call shape."""
        fn = spec.get("function", spec)
        return {
            "id": spec.get("id") or self.new_call_id(),
            "function": {"index": index, "name": fn["name"], "arguments": fn.get("arguments", {})},
        }

    def prompt_tokens(self) -> int:
        messages = [m for m in self.body.get("messages") or [] if isinstance(m, dict)]
        chars = sum(len(m.get("content") or "") for m in messages)
        return max(1, chars // 4 + 4 * len(messages))

    def final_fields(self, done_reason: str, prompt_eval_count: int | None, eval_count: int) -> dict[str, Any]:
        """done_reason and metrics of the final chunk; zero values are omitted, as Go's omitempty does."""
        prompt = self.prompt_tokens() if prompt_eval_count is None else prompt_eval_count
        load_ns, prompt_ns, eval_ns = 1_334_875, prompt * 350_000, eval_count * 16_000_000
        elapsed_ns = int((time.monotonic() - self.received_at) * 1e9)
        fields = {
            "done_reason": done_reason,
            "total_duration": max(elapsed_ns, load_ns + prompt_ns + eval_ns),
            "load_duration": load_ns,
            "prompt_eval_count": prompt,
            "prompt_eval_duration": prompt_ns,
            "eval_count": eval_count,
            "eval_duration": eval_ns,
        }
        return {k: v for k, v in fields.items() if v}


def _tokens(tokens: list[str] | str) -> list[str]:
    return split_words(tokens) if isinstance(tokens, str) else list(tokens)


@dataclass(kw_only=True)
class Reply:
    """A scripted answer to one /api/chat request. Build them with the constructors below.

    Every kind takes `first_byte_delay`: seconds of total silence before anything is sent,
    like Ollama loading a model (a client that drops meanwhile is noticed at once).
    """

    first_byte_delay: float = 0.0
    kind: ClassVar[str] = ""

    async def respond(self, resp: Response, chat: ChatContext) -> None:
        if self.first_byte_delay > 0:
            await resp.sleep(self.first_byte_delay)
        await self._respond(resp, chat)

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        raise NotImplementedError

    # constructors

    @staticmethod
    def text(tokens: list[str] | str, *, thinking: list[str] | str = (), tool_calls: list[dict] = (),
             tool_calls_in_final: bool = False, done_reason: str = "stop", delay: float = 0.0,
             first_byte_delay: float = 0.0, prompt_eval_count: int | None = None,
             eval_count: int | None = None) -> Reply:
        """A normal answer: thinking chunks, content chunks, tool calls, then the done chunk.
        A string instead of a list is split into words (see split_words)."""
        return TextReply(tokens=_tokens(tokens), thinking=_tokens(thinking), tool_calls=list(tool_calls),
                         tool_calls_in_final=tool_calls_in_final, done_reason=done_reason, delay=delay,
                         first_byte_delay=first_byte_delay, prompt_eval_count=prompt_eval_count,
                         eval_count=eval_count)

    @staticmethod
    def error(status: int, message: str, *, first_byte_delay: float = 0.0) -> Reply:
        """`{"error": message}` with that status, as Ollama reports failures before the first chunk."""
        return ErrorReply(status=status, message=message, first_byte_delay=first_byte_delay)

    @staticmethod
    def plain(status: int, body: str, content_type: str = "text/plain", *, first_byte_delay: float = 0.0) -> Reply:
        """A non-JSON body, e.g. an HTML page from a proxy."""
        return PlainReply(status=status, body=body, content_type=content_type, first_byte_delay=first_byte_delay)

    @staticmethod
    def mid_stream_error(tokens: list[str] | str, message: str, delay: float = 0.0, *, terminate: bool = True,
                         first_byte_delay: float = 0.0) -> Reply:
        """Status 200 NDJSON: content chunks, an `{"error"}` line, no done, then the fake closes."""
        return MidStreamErrorReply(tokens=_tokens(tokens), message=message, delay=delay, terminate=terminate,
                                   first_byte_delay=first_byte_delay)

    @staticmethod
    def endless(token: str = "tok ", delay: float = 0.005, first_byte_delay: float = 0.0) -> Reply:
        """Content chunks until the client disconnects (cancel tests)."""
        return EndlessReply(token=token, delay=delay, first_byte_delay=first_byte_delay)

    @staticmethod
    def hang(*, first_byte_delay: float = 0.0) -> Reply:
        """Never answer; wait for the client to give up."""
        return HangReply(first_byte_delay=first_byte_delay)

    @staticmethod
    def bulk(n_tokens: int, token: str = "x", *, first_byte_delay: float = 0.0) -> Reply:
        """n content chunks and a done chunk, written as fast as the socket takes them (benchmark)."""
        return BulkReply(n_tokens=n_tokens, token=token, first_byte_delay=first_byte_delay)

    @staticmethod
    def raw(pieces: list[bytes | float], status: int = 200, content_type: str = NDJSON, *,
            terminate: bool = True, first_byte_delay: float = 0.0) -> Reply:
        """Each bytes item becomes exactly one HTTP chunk; a number sleeps that many seconds."""
        return RawReply(pieces=list(pieces), status=status, content_type=content_type, terminate=terminate,
                        first_byte_delay=first_byte_delay)

    @staticmethod
    def stall(tokens: list[str] | str, then_silence: float, *, first_byte_delay: float = 0.0) -> Reply:
        """Tokens, then silence with the connection open; after `then_silence` the fake closes it."""
        return StallReply(tokens=_tokens(tokens), then_silence=then_silence, first_byte_delay=first_byte_delay)

    @staticmethod
    def from_json(spec: dict[str, Any]) -> Reply:
        """Build a reply from `{"kind": "text", "tokens": [...], ...}` (the keyword arguments of
        the constructor of that name). Raw pieces are numbers, `{"text": str}` or `{"b64": str}`."""
        spec = dict(spec)
        kind = spec.pop("kind", None)
        if kind not in REPLY_KINDS:
            raise ValueError(f"unknown reply kind {kind!r}; expected one of {sorted(REPLY_KINDS)}")
        if kind == "raw":
            spec["pieces"] = [_piece_from_json(p) for p in spec.get("pieces", [])]
        return getattr(Reply, kind)(**spec)


REPLY_KINDS = {"text", "error", "plain", "mid_stream_error", "endless", "hang", "bulk", "raw", "stall"}


def _piece_from_json(piece: Any) -> bytes | float:
    if isinstance(piece, (int, float)) and not isinstance(piece, bool):
        return float(piece)
    if isinstance(piece, str):
        return piece.encode()
    if isinstance(piece, dict) and "text" in piece:
        return piece["text"].encode()
    if isinstance(piece, dict) and "b64" in piece:
        return base64.b64decode(piece["b64"])
    raise ValueError(f"bad raw piece {piece!r}: use a number, {{'text': ...}} or {{'b64': ...}}")


def _coerce_reply(reply: Reply | dict) -> Reply:
    return reply if isinstance(reply, Reply) else Reply.from_json(reply)


@dataclass(kw_only=True)
class TextReply(Reply):
    kind: ClassVar[str] = "text"
    tokens: list[str]
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[dict] = field(default_factory=list)
    tool_calls_in_final: bool = False
    done_reason: str = "stop"
    delay: float = 0.0
    prompt_eval_count: int | None = None
    eval_count: int | None = None

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        calls = [chat.tool_call(spec, i) for i, spec in enumerate(self.tool_calls)]
        eval_count = len(self.thinking) + len(self.tokens) + len(calls) if self.eval_count is None else self.eval_count
        if not chat.stream:  # one object, everything concatenated
            merged: dict[str, Any] = {"content": "".join(self.tokens)}
            if self.thinking:
                merged["thinking"] = "".join(self.thinking)
            if calls:
                merged["tool_calls"] = calls
            final = chat.final_fields(self.done_reason, self.prompt_eval_count, eval_count)
            await resp.send_json(chat.obj(merged, done=True, **final))
            return

        messages = [{"thinking": t} for t in self.thinking] + [{"content": t} for t in self.tokens]
        if calls and not self.tool_calls_in_final:
            messages.append({"tool_calls": calls})
        for message in messages:
            await resp.chunk(chat.line(message))
            await resp.sleep(self.delay)
        final_message = {"tool_calls": calls} if calls and self.tool_calls_in_final else {}
        final = chat.final_fields(self.done_reason, self.prompt_eval_count, eval_count)
        await resp.chunk(chat.line(final_message, done=True, **final))
        await resp.finish()


@dataclass(kw_only=True)
class ErrorReply(Reply):
    kind: ClassVar[str] = "error"
    status: int
    message: str

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        await resp.send_error(self.status, self.message)


@dataclass(kw_only=True)
class PlainReply(Reply):
    kind: ClassVar[str] = "plain"
    status: int
    body: str
    content_type: str = "text/plain"

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        await resp.send(self.status, self.body.encode(), self.content_type)


@dataclass(kw_only=True)
class MidStreamErrorReply(Reply):
    """Ollama's streamResponse writes an `{"error"}` line and stops: no done chunk. With
    `terminate` the chunked body is ended properly (as Go's net/http does when the handler
    returns) before the fake closes the connection; without it the close is abrupt."""

    kind: ClassVar[str] = "mid_stream_error"
    tokens: list[str]
    message: str
    delay: float = 0.0
    terminate: bool = True

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        if not chat.stream:  # non-streamed requests get the error as a plain JSON error
            await resp.send_error(500, self.message)
            return
        for token in self.tokens:
            await resp.chunk(chat.line({"content": token}))
            await resp.sleep(self.delay)
        await resp.chunk_json({"error": self.message})
        await resp.finish(terminate=self.terminate)
        resp.close_after = True


@dataclass(kw_only=True)
class EndlessReply(Reply):
    kind: ClassVar[str] = "endless"
    token: str = "tok "
    delay: float = 0.005

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        if not chat.stream:  # the single object would only come at the end, which never comes
            await resp.wait_for_drop()
        while True:
            await resp.chunk(chat.line({"content": self.token}))
            await resp.sleep(self.delay)


@dataclass(kw_only=True)
class HangReply(Reply):
    kind: ClassVar[str] = "hang"

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        await resp.wait_for_drop()


@dataclass(kw_only=True)
class BulkReply(Reply):
    """Built as one byte string up front (every chunk alike) so the fake is never the
    bottleneck of a throughput benchmark; each object is still its own HTTP chunk."""

    kind: ClassVar[str] = "bulk"
    n_tokens: int
    token: str = "x"

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        final = chat.final_fields("stop", None, self.n_tokens)
        if not chat.stream:
            await resp.send_json(chat.obj({"content": self.token * self.n_tokens}, done=True, **final))
            return
        body = encode_chunk(chat.line({"content": self.token})) * self.n_tokens
        await resp.write_encoded(body + encode_chunk(chat.line(done=True, **final)) + LAST_CHUNK)


@dataclass(kw_only=True)
class RawReply(Reply):
    kind: ClassVar[str] = "raw"
    pieces: list[bytes | float]
    status: int = 200
    content_type: str = NDJSON
    terminate: bool = True

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        resp.begin_chunked(self.status, self.content_type)
        for piece in self.pieces:
            if isinstance(piece, (bytes, bytearray, memoryview)):
                await resp.chunk(bytes(piece))
            else:
                await resp.sleep(float(piece))
        await resp.finish(terminate=self.terminate)


@dataclass(kw_only=True)
class StallReply(Reply):
    """Tests a client's between-chunks timeout. If the client never gives up, the fake
    closes the connection (without ending the body) after `then_silence`, so a test fails
    instead of hanging."""

    kind: ClassVar[str] = "stall"
    tokens: list[str]
    then_silence: float

    async def _respond(self, resp: Response, chat: ChatContext) -> None:
        if chat.stream:
            for token in self.tokens:
                await resp.chunk(chat.line({"content": token}))
        await resp.sleep(self.then_silence)
        resp.close_after = True


# --------------------------------------------------------------------------- request validation


_THINK_LEVELS = ("high", "medium", "low", "max")


def check_chat_body(raw: bytes) -> tuple[dict | None, str | None]:
    """Decode a ChatRequest the way Ollama's Go decoder would reject it: (body, error)."""
    if not raw.strip():
        return None, "missing request body"
    try:
        body = json.loads(raw)
    except ValueError as exc:
        return None, f"invalid JSON in request body: {exc}"  # Go's wording differs
    if not isinstance(body, dict):
        return None, f"json: cannot unmarshal {go_type(body)} into Go value of type api.ChatRequest"

    def wrong(value: Any, field_path: str, go_kind: str) -> str:
        return f"json: cannot unmarshal {go_type(value)} into Go struct field ChatRequest.{field_path} of type {go_kind}"

    messages = body.get("messages")
    if messages is not None and not isinstance(messages, list):
        return None, wrong(messages, "messages", "[]api.Message")
    for message in messages or []:
        if not isinstance(message, dict):
            return None, wrong(message, "messages", "api.Message")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            return None, wrong(content, "messages.content", "string")
        for call in message.get("tool_calls") or []:
            arguments = (call.get("function") or {}).get("arguments") if isinstance(call, dict) else None
            if arguments is not None and not isinstance(arguments, dict):
                return None, wrong(arguments, "messages.tool_calls.function.arguments", "api.ToolCallFunctionArguments")
    think = body.get("think")
    if isinstance(think, str) and think not in _THINK_LEVELS:
        return None, f'invalid think value: "{think}" (must be "high", "medium", "low", "max", true, or false)'
    return body, None


# --------------------------------------------------------------------------- the server


class FakeOllama:
    """The fake server. Its asyncio loop runs in a daemon thread, so any test (sync, or
    async on its own loop) can drive it; the public methods are thread-safe."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.version = OLLAMA_VERSION
        self.models: dict[str, FakeModel] = default_models()
        self.connections_opened = 0
        self._cond = threading.Condition()
        self._all: list[RecordedRequest] = []
        self._chat_log: list[RecordedRequest] = []
        self._scripts: dict[str | None, collections.deque[Reply]] = {}
        self._call_ids = itertools.count(1)
        self._loaded: dict[str, float] = {}  # model name -> last used (for /api/ps)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[Connection] = set()

    # lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> FakeOllama:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._serve_connection, self.host, self.port))
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-ollama", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving; open connections are aborted (clients see a reset)."""
        if self._thread is None:
            return

        async def shutdown() -> None:
            self._server.close()
            for conn in list(self._conns):
                conn.close(abort=True)  # wakes every reply waiting on the connection
            # Let handlers finish by themselves: Python 3.11's start_server logs an error
            # for a cancelled handler task.
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            _, stuck = await asyncio.wait(others, timeout=1) if others else ((), ())
            for task in stuck:
                task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._thread = None

    def __enter__(self) -> FakeOllama:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # scripting and inspection (thread-safe)

    def script(self, *replies: Reply | dict, model: str | None = None) -> None:
        """Queue replies for /api/chat requests naming `model`, or for any known model if None."""
        key = None if model is None else normalize_model(model)
        with self._cond:
            self._scripts.setdefault(key, collections.deque()).extend(_coerce_reply(r) for r in replies)

    @property
    def pending_replies(self) -> int:
        """Scripted replies not consumed yet (handy to assert that a test used them all)."""
        with self._cond:
            return sum(len(q) for q in self._scripts.values())

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._chat_log)

    @property
    def all_requests(self) -> list[RecordedRequest]:
        with self._cond:
            return list(self._all)

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least n /api/chat requests have arrived; TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._chat_log) >= n, timeout):
                raise TimeoutError(f"expected {n} /api/chat requests within {timeout}s, got {len(self._chat_log)}")
            return list(self._chat_log)

    async def wait_for_requests_async(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """`wait_for_requests` for async tests, without blocking their event loop."""
        return await asyncio.to_thread(self.wait_for_requests, n, timeout)

    def reset(self) -> None:
        """Forget scripts, records and connection counts; restore the default models."""
        with self._cond:
            self._scripts.clear()
            self._all.clear()
            self._chat_log.clear()
            self._loaded.clear()
            self.connections_opened = 0
            self._call_ids = itertools.count(1)
            self.models = default_models()
            self.version = OLLAMA_VERSION

    # internals: bookkeeping

    def _find_model(self, name: str) -> FakeModel | None:
        wanted = normalize_model(name)
        for key, model in list(self.models.items()):
            if wanted in (normalize_model(key), model.name):
                return model
        return None

    def _pop_script(self, key: str | None) -> Reply | None:
        with self._cond:
            queue = self._scripts.get(key)
            return queue.popleft() if queue else None

    def _new_call_id(self) -> str:
        return f"call_{next(self._call_ids)}"

    def _record(self, rec: RecordedRequest) -> None:
        with self._cond:
            self._all.append(rec)
            if rec.path == "/api/chat":
                self._chat_log.append(rec)
            self._cond.notify_all()

    @staticmethod
    def _connection_gone(conn: Connection, at: float, by_peer: bool) -> None:
        rec = conn.current
        if rec is None:
            return
        rec.closed_at = at
        if by_peer and not rec.response_completed:
            rec.client_dropped = True
            rec._dropped.set()

    # internals: HTTP

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._cond:
            self.connections_opened += 1
        conn = Connection(reader, writer, self._connection_gone)
        self._conns.add(conn)
        try:
            while (request := await read_request(conn)) is not None:
                if not await self._serve_request(conn, request):
                    break
        except BadRequest as exc:
            log.warning("bad request: %s", exc)
            with contextlib.suppress(ClientGone):
                await conn.write(b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                 b"Connection: close\r\n\r\n400 Bad Request")
        except ClientGone:
            pass
        finally:
            conn.close()
            self._conns.discard(conn)

    async def _serve_request(self, conn: Connection, request: HttpRequest) -> bool:
        """Answer one request; True if the connection may carry another."""
        url = urlsplit(request.target)
        try:
            body = json.loads(request.body) if request.body else None
        except ValueError:
            body = None
        rec = RecordedRequest(request.method, url.path, request.headers, request.body, body, time.monotonic())
        self._record(rec)
        conn.current = rec
        resp = Response(conn, rec, head_only=request.method == "HEAD", close=not request.keep_alive)
        try:
            await self._route(rec, url.query, resp)
        except ClientGone:
            return False
        except Exception as exc:
            log.exception("fake_ollama failed on %s %s", rec.method, rec.path)
            if resp.status is not None:
                return False
            resp.close_after = True
            await resp.send_error(500, f"fake_ollama internal error: {exc!r}")
        rec.response_completed = True  # also for replies that end by closing (stall)
        if resp.close_after:
            return False
        conn.current = None
        return True

    async def _route(self, rec: RecordedRequest, query: str, resp: Response) -> None:
        path, readonly = rec.path, rec.method in ("GET", "HEAD")
        if path == "/" and readonly:
            await resp.send(200, b"Ollama is running", "text/plain; charset=utf-8")
        elif path == "/api/version" and readonly:
            await resp.send_json({"version": self.version})
        elif path == "/api/tags" and readonly:
            await resp.send_json(self._tags())
        elif path == "/api/ps" and readonly:
            await resp.send_json(self._ps())
        elif path == "/api/show" and rec.method == "POST":
            await self._show(rec, resp)
        elif path == "/api/chat" and rec.method == "POST":
            await self._chat(rec, resp)
        elif path.startswith("/_fake/"):
            await self._control(rec, query, resp)
        else:
            await resp.send(404, b"404 page not found", "text/plain")  # gin's default

    # internals: Ollama endpoints

    async def _chat(self, rec: RecordedRequest, resp: Response) -> None:
        body, error = check_chat_body(rec.raw_body)
        if error:
            return await resp.send_error(400, error)
        name = body.get("model") or ""
        if not name:
            return await resp.send_error(400, "model is required")
        reply = self._pop_script(normalize_model(name))
        if reply is None:
            model = self._find_model(name)
            if model is None:
                return await resp.send_error(404, f"model '{name}' not found")
            self._loaded[model.name] = time.time()
            reply = self._pop_script(None) or self._default_reply(model, name, body)
        chat = ChatContext(name, body, rec.received_at, self._new_call_id)
        if reply is None:  # messages:[] only loads (or unloads) the model
            unload = body.get("keep_alive") in (0, "0", "0s", "0m")
            return await resp.send_json(chat.obj(done=True, done_reason="unload" if unload else "load"))
        await reply.respond(resp, chat)

    @staticmethod
    def _default_reply(model: FakeModel, name: str, body: dict) -> Reply | None:
        """Ollama's capability checks, then an echo of the last user message. A thinking
        model thinks unless `think` is false (the default since Ollama v0.12.4)."""
        think = body.get("think")
        if body.get("tools") and "tools" not in model.capabilities:
            return Reply.error(400, f"registry.ollama.ai/library/{model.name} does not support tools")
        if think not in (None, False) and "thinking" not in model.capabilities:
            return Reply.error(400, f'"{name}" does not support thinking')
        messages = body.get("messages") or []
        if not messages:
            return None
        users = [m.get("content") or "" for m in messages if str(m.get("role", "")).lower() == "user"]
        said = users[-1] if users else ""
        thinking = f"The user said: {said}" if "thinking" in model.capabilities and think is not False else ""
        return Reply.text(split_words("echo: " + said), thinking=split_words(thinking))

    def _tags(self) -> dict[str, Any]:
        # /api/tags lists capabilities only since Ollama v0.30.0.
        major_minor = tuple(int(x) for x in re.findall(r"\d+", self.version)[:2])
        models = []
        for model in list(self.models.values()):
            entry = {"name": model.name, "model": model.name, "modified_at": MODIFIED_AT, "size": model.size,
                     "digest": model.digest, "details": model.details()}
            if major_minor >= (0, 30):
                entry["capabilities"] = list(model.capabilities)
            models.append(entry)
        return {"models": models}

    def _ps(self) -> dict[str, Any]:
        running = []
        for name, used in list(self._loaded.items()):
            if model := self._find_model(name):
                expires = datetime.fromtimestamp(used, UTC) + timedelta(minutes=5)
                running.append({"name": model.name, "model": model.name, "size": model.size, "digest": model.digest,
                                "details": model.details(), "expires_at": expires.isoformat().replace("+00:00", "Z"),
                                "size_vram": model.size, "context_length": model.context_length})
        return {"models": running}

    async def _show(self, rec: RecordedRequest, resp: Response) -> None:
        body = rec.body if isinstance(rec.body, dict) else {}
        name = body.get("model") or body.get("name") or ""
        if not name:
            return await resp.send_error(400, "model is required")
        model = self._find_model(name)
        if model is None:
            return await resp.send_error(404, f"model '{name}' not found")
        arch = model.architecture
        await resp.send_json({
            "modelfile": f'# Modelfile generated by "ollama show"\nFROM {model.name}\n',
            "parameters": 'stop "<|eot_id|>"',
            "template": "{{ .Prompt }}",
            "details": model.details(),
            "model_info": {
                "general.architecture": arch,
                "general.parameter_count": model.parameter_count(),
                f"{arch}.context_length": model.context_length,
                f"{arch}.embedding_length": 2048,
            },
            "capabilities": list(model.capabilities),
            "modified_at": MODIFIED_AT,
        })

    # internals: control endpoints for out-of-process tests

    async def _control(self, rec: RecordedRequest, query: str, resp: Response) -> None:
        action = rec.path.removeprefix("/_fake/")
        if action == "script" and rec.method == "POST":
            spec = rec.body if isinstance(rec.body, dict) else {}
            try:
                replies = [Reply.from_json(r) for r in spec.get("replies", [])]
            except (TypeError, ValueError, KeyError) as exc:
                return await resp.send_error(400, f"bad reply spec: {exc}")
            self.script(*replies, model=spec.get("model"))
            await resp.send_json({"queued": len(replies)})
        elif action == "requests" and rec.method == "GET":
            everything = parse_qs(query).get("all", ["0"])[0] not in ("0", "false", "")
            records = self.all_requests if everything else self.requests
            await resp.send_json([r.to_json() for r in records])
        elif action == "reset" and rec.method == "POST":
            self.reset()
            await resp.send_json({})
        else:
            await resp.send_error(404, f"unknown control endpoint {rec.method} {rec.path}")


# --------------------------------------------------------------------------- command line


def _stdin_is_a_pipe() -> bool:
    """Only a pipe (or terminal) from a parent signals shutdown by EOF; a background job's
    /dev/null stdin would otherwise stop the fake at once."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake Ollama server for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if _stdin_is_a_pipe():
        def watch_stdin() -> None:
            while os.read(0, 65536):
                pass
            stop.set()
        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    fake = FakeOllama(args.host, args.port).start()
    print(json.dumps({"url": fake.url}), flush=True)
    while not stop.wait(0.2):
        pass
    fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
