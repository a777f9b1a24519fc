"""/api/chat streamed over plain asyncio connections: the fast path of `OllamaClient.stream_chat`.

Why not httpx here: Ollama flushes every NDJSON object as its own HTTP chunk, so
through httpx each token costs one h11 event and about five async-generator layers
(~8 µs). Here a whole socket read (up to READ_BYTES) is de-chunked in one go by
`http1.ChunkedBody`, then cut into lines and parsed exactly as on the httpx path.

Scope: POST /api/chat to a plain http:// address that no proxy stands in front of
(`direct_endpoint` decides; `OllamaClient` keeps httpx for everything else). Failures
become the same `BackendError`s with the same messages as on the httpx path (`errors`).

Connections: a small pool of idle keep-alive connections, one connection per running
stream. A connection goes back to the pool only after a complete response; any other
ending (error, cancellation, closing the generator) aborts it at once, which is how
Ollama learns to stop generating.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import urllib.request
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass
from typing import cast

import httpx

from ..http_backend import CONNECT_TIMEOUT_S, ERROR_BODY_READ_LIMIT
from ..llm import BackendError, BackendUnreachable, ChatChunk, ChatRequest, UpstreamError
from ..redaction import hide_secrets, redact_bytes
from .errors import (
    closed_mid_answer,
    ended_without_done,
    is_chat_stream,
    stalled,
    status_error,
)
from .http1 import (
    MAX_HEAD_BYTES,
    Body,
    Decompressor,
    ProtocolError,
    ResponseHead,
    body_of,
    decompressor_for,
    parse_head,
)
from .ndjson import LineSplitter, LineTooLong
from .wire import chat_payload, parse_chat_line

log = logging.getLogger(__name__)

FAIR_SHARE_S = 0.0002  # longest a stream keeps the event loop to itself
DRAIN_TIMEOUT_S = 1.0  # for the end of the body after the final chunk; see _drain
READ_BYTES = 64 * 1024  # upstream bytes handled in one step
# Flow control: above PAUSE_ABOVE unread bytes the socket is not read until the stream
# is down to RESUME_BELOW, so a consumer that stops reading makes TCP slow Ollama down.
PAUSE_ABOVE = 256 * 1024
RESUME_BELOW = 64 * 1024
MAX_IDLE_CONNECTIONS = 20  # httpx's keep-alive limits, so both paths behave alike
KEEPALIVE_EXPIRY_S = 5.0
_REASON_CHARS = 200
_DISCONNECTED = "Server disconnected without sending a response."  # httpcore's words


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where /api/chat is, as the raw connection needs it."""

    host: str  # to connect to: IDNA-encoded, an IPv6 address without brackets
    port: int
    host_header: str  # as httpx would send it: lower case, default port left out
    chat_path: str  # /api/chat below the base URL's path


def direct_endpoint(base_url: httpx.URL) -> Endpoint | None:
    """The /api/chat endpoint to reach directly, or None when httpx must carry the
    request: https, a proxy from the environment, credentials or a query in the URL."""
    if base_url.scheme != "http" or base_url.userinfo or base_url.query or base_url.fragment:
        return None
    host_header = base_url.netloc.decode("ascii")
    if _proxy_applies(host_header):
        return None
    return Endpoint(
        host=base_url.raw_host.decode("ascii"),
        port=base_url.port or 80,
        host_header=host_header,
        chat_path=base_url.raw_path.decode("ascii").rstrip("/") + "/api/chat",
    )


def _proxy_applies(netloc: str) -> bool:
    # The variables httpx honours (HTTP_PROXY, ALL_PROXY, NO_PROXY; the system settings
    # on macOS and Windows), read the same way urllib reads them.
    proxies = urllib.request.getproxies()
    if not (proxies.get("http") or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(netloc)


class RawChatStream:
    """POST /api/chat over pooled keep-alive connections; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        endpoint: Endpoint,
        request_head: bytes,
        *,
        max_line_bytes: int,
        stall_timeout: float,
        secrets: tuple[str, ...] = (),
    ):
        self._base_url = base_url
        self._secrets = secrets  # configured header values, blanked out of error answers
        self._endpoint = endpoint
        self._request_head = request_head  # everything before the Content-Length value
        self._max_line_bytes = max_line_bytes
        self._stall_timeout = stall_timeout
        self._pool = _Pool()

    @classmethod
    def create(
        cls,
        base_url: str,
        endpoint: Endpoint,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        max_line_bytes: int,
        stall_timeout: float,
        secrets: tuple[str, ...] = (),
    ) -> RawChatStream | None:
        """None when a header cannot be written as is (httpx then reports it)."""
        request_head = _request_head(endpoint, headers)
        if request_head is None:
            return None
        return cls(
            base_url, endpoint, request_head, max_line_bytes=max_line_bytes, stall_timeout=stall_timeout, secrets=secrets
        )

    def close(self) -> None:
        """Close the idle connections; running streams close theirs when they end."""
        self._pool.close()

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """`OllamaClient.stream_chat`'s contract: chunks until `done`, `BackendError`s.

        One generator from socket to caller: every layer more would cost each token.
        """
        connection, head = await self._exchange(self._request_bytes(request))
        reusable = False  # only a response read to its very end leaves the connection usable
        try:
            if not is_chat_stream(head.status, head.headers):
                error, reusable = await self._error_answer(connection, head, request.model)
                raise error
            body = body_of(head)
            decompressor = decompressor_for(head.headers.get("content-encoding", ""))
            splitter = LineSplitter(self._max_line_bytes)
            # Headers come with the first chunk, so the model is loaded: from here on a
            # long silence means Ollama is stuck, not busy loading.
            connection.watch_stalls(self._stall_timeout)
            clock = asyncio.get_running_loop().time
            yielded_at = clock()
            done = False
            with _failures_in_words(self._stall_timeout):
                while not (done or body.complete):
                    data = await connection.read(READ_BYTES)
                    if not data:
                        _check_body_whole(body, connection)
                        break
                    payload = body.feed(data) if decompressor is None else decompressor.decode(body.feed(data))
                    for line in splitter.feed(payload):
                        chunk = parse_chat_line(line)
                        yield chunk
                        if chunk.done:
                            done = True
                            break
                        if clock() - yielded_at > FAIR_SHARE_S:
                            # A socket that always has data never suspends: give the
                            # other chats and the client's messages their turn.
                            await asyncio.sleep(0)
                            yielded_at = clock()
                    if clock() - yielded_at > FAIR_SHARE_S:  # also for reads that complete no line
                        await asyncio.sleep(0)
                        yielded_at = clock()
                if done:
                    reusable = await _drain(connection, body)
                    return
                for line in _last_lines(splitter, decompressor):
                    chunk = parse_chat_line(line)
                    yield chunk
                    if done := chunk.done:
                        break
                if not done:
                    raise ended_without_done()
                reusable = body.extra == 0
        finally:
            self._release(connection, reusable and head.keep_alive)

    # ------------------------------------------------------------ request and head

    def _request_bytes(self, request: ChatRequest) -> bytes:
        # Encoded as httpx encodes `json=`, so both paths send the same bytes.
        body = json.dumps(chat_payload(request), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        encoded = body.encode("utf-8")
        return b"%s%d\r\n\r\n%s" % (self._request_head, len(encoded), encoded)

    async def _exchange(self, request: bytes) -> tuple[_Connection, ResponseHead]:
        """Send the request; wait for the status line (as long as loading the model takes).

        A kept-alive connection may turn out closed by Ollama while it was idle: then,
        and only then (no byte of an answer arrived), the request goes once more on a
        new connection.
        """
        connection = self._pool.take()
        if connection is not None:
            try:
                return connection, await self._send(connection, request)
            except _ClosedUnanswered:
                log.debug("a kept-alive connection to Ollama was closed; sending on a new one")
        connection = await self._connect()
        try:
            return connection, await self._send(connection, request)
        except _ClosedUnanswered as unanswered:
            raise BackendUnreachable(self._base_url, unanswered.reason) from None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop), self._endpoint.host, self._endpoint.port
                )
        except OSError as exc:  # TimeoutError included
            raise BackendUnreachable(self._base_url, _describe_connect_failure(exc)) from exc
        return connection

    async def _send(self, connection: _Connection, request: bytes) -> ResponseHead:
        try:
            connection.write(request)
            return await self._read_head(connection)
        except BaseException:
            connection.abort()
            raise

    async def _read_head(self, connection: _Connection) -> ResponseHead:
        block = b""
        while True:
            end = block.find(b"\r\n\r\n")
            if end < 0:
                if len(block) > MAX_HEAD_BYTES:
                    raise BackendUnreachable(self._base_url, "the response headers are too long")
                data = await connection.read(READ_BYTES)
                if not data:
                    if not block:
                        raise _ClosedUnanswered(connection.failure or _DISCONNECTED)
                    raise BackendUnreachable(self._base_url, connection.failure or _DISCONNECTED)
                block += data
                continue
            try:
                head = parse_head(block[:end])
            except ProtocolError as exc:
                raise BackendUnreachable(self._base_url, str(exc)) from None
            block = block[end + 4 :]
            if not head.informational:  # skip "100 Continue" and the like
                connection.unread(block)
                return head

    # ------------------------------------------------------------ error answers and the end

    async def _error_answer(self, connection: _Connection, head: ResponseHead, model: str) -> tuple[BackendError, bool]:
        """The error a non-2xx answer means, and whether its body was read to the end."""
        connection.watch_stalls(self._stall_timeout)
        body, complete = await _read_at_most(connection, head, ERROR_BODY_READ_LIMIT)
        body = redact_bytes(body, self._secrets)
        error = status_error(head.status, head.reason, head.headers, body, base_url=self._base_url, model=model)
        return hide_secrets(error, self._secrets), complete

    def _release(self, connection: _Connection, reusable: bool) -> None:
        connection.stop_watching()
        if reusable and connection.idle:
            self._pool.put(connection)
        else:
            connection.abort()


async def _read_at_most(connection: _Connection, head: ResponseHead, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of a body, and whether it was read to its end. A failure
    midway keeps what came: for an error answer the status says what went wrong."""
    parts: list[bytes] = []
    size = 0
    body: Body | None = None
    try:
        body = body_of(head)
        decompressor = decompressor_for(head.headers.get("content-encoding", ""))
        while not body.complete and size < limit:
            data = await connection.read(READ_BYTES)
            if not data:
                body.end_of_input()
                break
            part = body.feed(data) if decompressor is None else decompressor.decode(body.feed(data))
            parts.append(part)
            size += len(part)
    except (_Stalled, ProtocolError):
        pass
    complete = body is not None and body.complete and body.extra == 0
    return b"".join(parts)[:limit], complete


@contextlib.contextmanager
def _failures_in_words(stall_timeout: float) -> Iterator[None]:
    """Failures while reading a 200 answer, as the httpx path words them."""
    try:
        yield
    except _Stalled:
        raise stalled(stall_timeout) from None
    except LineTooLong as exc:
        raise UpstreamError(str(exc)) from exc
    except ProtocolError as exc:
        raise closed_mid_answer(str(exc)) from exc


def _check_body_whole(body: Body, connection: _Connection) -> None:
    """The connection ended: fine if that ends the body, else the answer was cut."""
    cut = body.end_of_input()
    if cut is not None or connection.failure is not None:
        raise closed_mid_answer(connection.failure or cut or "")


def _last_lines(splitter: LineSplitter, decompressor: Decompressor | None) -> list[bytes]:
    """What is left when the body ended: the decompressor's rest, a line without its newline."""
    lines = splitter.feed(decompressor.flush()) if decompressor is not None else []
    if (last := splitter.flush()) is not None:
        lines.append(last)
    return lines


async def _drain(connection: _Connection, body: Body) -> bool:
    """Read what follows the final chunk (normally just the end of the chunked body);
    True when the response ended cleanly, so the connection can serve another request.

    Bounded in time: the caller already has its answer and must not wait on a
    server that lingers.
    """
    if body.complete or body.ends_at_close:
        return body.complete and body.extra == 0
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            while not body.complete:
                data = await connection.read(READ_BYTES)
                if not data:
                    return False
                body.feed(data)
    except (TimeoutError, _Stalled, ProtocolError):
        return False
    return body.extra == 0


def _request_head(endpoint: Endpoint, headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The request up to the Content-Length value; None if a header would break the framing."""
    host = endpoint.host_header.encode("ascii")
    fields: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"host":
            host = value  # the caller's Host wins, as in httpx
        elif lowered not in (b"content-length", b"content-type", b"transfer-encoding"):
            fields.append(name + b": " + value)
        if any(char in name + value for char in (b"\r", b"\n", b"\0")):
            return None
    lines = [
        b"POST " + endpoint.chat_path.encode("ascii") + b" HTTP/1.1",
        b"Host: " + host,
        *fields,
        b"Content-Type: application/json",
        b"Content-Length: ",
    ]
    return b"\r\n".join(lines)


def _describe_connect_failure(exc: OSError) -> str:
    """A short reason for a failed connect, never empty."""
    if isinstance(exc, TimeoutError) and exc.errno is None:  # our own timeout
        return f"no connection within {CONNECT_TIMEOUT_S:g} s"
    if isinstance(exc, socket.gaierror) and exc.strerror:
        text = exc.strerror  # e.g. "Name or service not known"
    elif exc.errno:
        text = f"[Errno {exc.errno}] {os.strerror(exc.errno)}"  # asyncio's own text repeats the address
    else:
        text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS] + "…"


class _ClosedUnanswered(Exception):
    """The connection ended before any byte of an answer arrived."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _Stalled(Exception):
    """Nothing arrived for the stall timeout while the stream waited for Ollama."""


# ---------------------------------------------------------------- connections


class _Connection(asyncio.Protocol):
    """One TCP connection to Ollama, read in whole pieces rather than per event.

    The stall watch is lazy: one timer per stall period at most, not one per read.
    Only time spent waiting for the socket counts as silence (a consumer that is slow
    to take the tokens is not Ollama stalling).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._pieces: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._ended = False  # EOF or connection lost
        self._error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._stall_timeout: float | None = None
        self._stall_timer: asyncio.TimerHandle | None = None
        self._stalled = False
        self._waiting_since = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # what create_connection gives

    def data_received(self, data: bytes) -> None:
        self._pieces.append(data)
        self._buffered += len(data)
        if self._buffered > PAUSE_ABOVE and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._ended = True
        self._wake()
        return False  # let the transport close: HTTP/1.1 has no use for a half-open connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended = True
        self._error = self._error or exc
        self._wake()

    # the stream's side

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def idle(self) -> bool:
        """Open, with nothing unread: fit to carry a new request."""
        transport = self._transport
        return not self._ended and not self._pieces and transport is not None and not transport.is_closing()

    @property
    def failure(self) -> str | None:
        """Why the connection ended, if the system said (e.g. a reset)."""
        if self._error is None:
            return None
        return str(self._error).strip() or type(self._error).__name__

    def write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    async def read(self, limit: int) -> bytes:
        """Up to `limit` bytes of what has arrived, waiting if nothing has; b"" at the end."""
        while not self._pieces:
            if self._ended:
                return b""
            await self._wait()
        pieces = self._pieces
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if len(data) > limit:
            self._pieces = [data[limit:]]
            data = data[:limit]
        else:
            self._pieces = []
        self._buffered -= len(data)
        if self._paused and self._buffered < RESUME_BELOW and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return data

    def unread(self, data: bytes) -> None:
        """Put back bytes read too far (the first body bytes that came with the head)."""
        if data:
            self._pieces.insert(0, data)
            self._buffered += len(data)

    def watch_stalls(self, timeout: float) -> None:
        """From now on, `read` raises _Stalled after `timeout` s of waiting in vain."""
        self._stall_timeout = timeout

    def stop_watching(self) -> None:
        self._stall_timeout = None
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def abort(self) -> None:
        """Drop the connection now, without waiting for anything to be sent or read."""
        self.stop_watching()
        if self._transport is not None:
            # RuntimeError: the connection belongs to an event loop that is closed by now
            with contextlib.suppress(RuntimeError):
                self._transport.abort()

    # internals

    async def _wait(self) -> None:
        waiter = self._waiter = self._loop.create_future()
        if self._stall_timeout is not None:
            self._waiting_since = self._loop.time()
            if self._stall_timer is None:
                self._stall_timer = self._loop.call_at(self._waiting_since + self._stall_timeout, self._check_stall)
        try:
            await waiter
        finally:
            self._waiter = None
        if self._stalled:
            self._stalled = False
            raise _Stalled

    def _check_stall(self) -> None:
        self._stall_timer = None
        waiter, timeout = self._waiter, self._stall_timeout
        if waiter is None or waiter.done() or timeout is None:
            return  # not waiting now: the next wait arms the timer again
        due = self._waiting_since + timeout
        if self._loop.time() < due:  # armed during an earlier wait
            self._stall_timer = self._loop.call_at(due, self._check_stall)
        else:
            # A flag rather than set_exception: a task cancelled at this very moment
            # would leave the exception unretrieved (and logged).
            self._stalled = True
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Pool:
    """Idle keep-alive connections; the most recently used one is taken first."""

    def __init__(self) -> None:
        self._idle: list[tuple[float, _Connection]] = []  # (idle since, connection), oldest first
        self._closed = False

    def take(self) -> _Connection | None:
        now = time.monotonic()
        loop = asyncio.get_running_loop()  # a connection of another (finished) loop is of no use
        while self._idle:
            since, connection = self._idle.pop()
            if now - since < KEEPALIVE_EXPIRY_S and connection.idle and connection.loop is loop:
                return connection
            connection.abort()
        return None

    def put(self, connection: _Connection) -> None:
        if self._closed:
            connection.abort()
            return
        now = time.monotonic()
        while self._idle and (len(self._idle) >= MAX_IDLE_CONNECTIONS or now - self._idle[0][0] >= KEEPALIVE_EXPIRY_S):
            self._idle.pop(0)[1].abort()
        self._idle.append((now, connection))

    def close(self) -> None:
        self._closed = True
        for _, connection in self._idle:
            connection.abort()
        self._idle.clear()
