"""The client side of JSON-RPC 2.0 over LSP framing, shared by the CLI, the tests and the benchmark.

`encode_frame` and `FrameDecoder` do the framing (sans I/O, so the threaded benchmark can use
them too); `Peer` does the asyncio part: request ids, pending answers, notification and request
handlers. Nothing here imports pygls: the CLI must start fast.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

HEADER_END = b"\r\n\r\n"
KNOWN_HEADERS = (b"content-length", b"content-type")
MAX_HEADER_BYTES = 1024  # a header this long without its blank line is not a header
HEADER_START = re.compile(rb"content-length:", re.IGNORECASE)
METHOD_NOT_FOUND = -32601
INTERNAL_ERROR = -32603

Message = dict[str, Any]


def encode_frame(message: Message) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


class RpcError(Exception):
    """An error answer: `code`, `message`, `data` as the peer sent them."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class FrameDecoder:
    """Cuts message bodies out of a byte stream fed in arbitrary pieces.

    Strict: bytes that are not a well-formed frame (an unknown header, a missing or bad
    Content-Length, text outside frames, bytes left at the end) are described in
    `violations` (pass a list to share one) and skipped up to the next `Content-Length:`.
    """

    def __init__(self, violations: list[str] | None = None):
        self.violations = [] if violations is None else violations
        self._buffer = b""
        self._consumed = 0  # stream offset of the buffer's start, for the reports

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer + data if self._buffer else data
        bodies: list[bytes] = []
        pos = 0
        while pos < len(buffer):
            head_end = buffer.find(HEADER_END, pos, pos + MAX_HEADER_BYTES)
            if head_end < 0:
                if self._could_become_header(buffer, pos):
                    break
                pos = self._skip(buffer, pos, "not a frame header")
                continue
            length = self._content_length(buffer[pos:head_end])
            if length is None:
                pos = self._skip(buffer, pos, "not a frame header")
                continue
            stop = head_end + 4 + length
            if stop > len(buffer):
                break
            bodies.append(buffer[head_end + 4:stop])
            pos = stop
        self._consumed += pos
        self._buffer = buffer[pos:]
        return bodies

    def close(self) -> None:
        """The stream ended: whatever is left is a violation."""
        if self._buffer:
            self.violations.append(f"trailing bytes on stdout: {self._buffer[:200]!r}")
            self._buffer = b""

    @staticmethod
    def _content_length(header: bytes) -> int | None:
        """The length a complete header announces; None if it is not a valid header."""
        length = None
        for line in header.split(b"\r\n"):
            name, value = FrameDecoder._field(line) or (None, b"")
            if name is None:
                return None
            if name == b"content-length":
                if not value.isdigit():
                    return None
                length = int(value)
        return length

    @staticmethod
    def _field(line: bytes) -> tuple[bytes, bytes] | None:
        """(lower-case name, value) of a known header line; None otherwise."""
        name, colon, value = line.partition(b":")
        name = name.strip().lower()
        return (name, value.strip()) if colon and name in KNOWN_HEADERS else None

    @staticmethod
    def _could_become_header(buffer: bytes, pos: int) -> bool:
        """True while the incomplete header at `pos` may still grow into a valid one."""
        partial = buffer[pos:]
        if len(partial) >= MAX_HEADER_BYTES:
            return False
        *lines, last = partial.split(b"\r\n")
        if any(FrameDecoder._field(line) is None for line in lines):
            return False
        if last == b"\r":  # the blank line that ends the header has begun
            return bool(lines)
        if b":" in last:
            return FrameDecoder._field(last) is not None
        return any(known.startswith(last.lower()) for known in KNOWN_HEADERS)

    def _skip(self, buffer: bytes, pos: int, what: str) -> int:
        """Report the bytes from `pos` to the next plausible header; return where that is."""
        found = HEADER_START.search(buffer, pos + 1)
        stop = found.start() if found else len(buffer)
        self.violations.append(f"{what} at byte {self._consumed + pos}: {buffer[pos:stop][:200]!r}")
        return stop


NotificationHandler = Callable[[Any], Any]
RequestHandler = Callable[[Any], Awaitable[Any]]


class Peer:
    """JSON-RPC over any byte pipe: `write` sends bytes, `receive` takes each decoded body.

    Requests from the other side go to `request_handlers` (unknown methods are answered
    -32601, a handler that raises -32603); notifications to `notification_handlers`;
    `on_message` sees every message first. `connection_lost` fails what is still pending.
    """

    def __init__(self, write: Callable[[bytes], None]):
        self._write = write
        self._ids = itertools.count(1)
        self._pending: dict[int | str, asyncio.Future[Any]] = {}
        self.notification_handlers: dict[str, NotificationHandler] = {}
        self.request_handlers: dict[str, RequestHandler] = {}
        self.on_message: Callable[[Message], Any] | None = None

    def send(self, message: Message) -> None:
        self._write(encode_frame(message))

    def send_request(self, method: str, params: Any, msg_id: int | str | None = None) -> tuple[int | str, asyncio.Future[Any]]:
        msg_id = next(self._ids) if msg_id is None else msg_id
        future = self._pending[msg_id] = asyncio.get_running_loop().create_future()
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id, future

    async def request(self, method: str, params: Any) -> Any:
        return await self.send_request(method, params)[1]

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def receive(self, body: bytes) -> Message:
        """Dispatch one frame body; return the message (ValueError if it is not JSON)."""
        message = json.loads(body)
        if self.on_message is not None:
            self.on_message(message)
        method = message.get("method")
        if method is None:
            self._settle(message)
        elif "id" in message:
            asyncio.get_running_loop().create_task(self._answer(message))
        elif (handler := self.notification_handlers.get(method)) is not None:
            handler(message.get("params"))
        return message

    def connection_lost(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError(reason))
        self._pending.clear()

    def _settle(self, message: Message) -> None:
        future = self._pending.pop(message.get("id"), None)
        if future is None or future.done():
            return
        if "error" in message:
            error = message["error"]
            future.set_exception(RpcError(error["code"], error["message"], error.get("data")))
        else:
            future.set_result(message.get("result"))

    async def _answer(self, message: Message) -> None:
        method = message["method"]
        handler = self.request_handlers.get(method)
        reply: Message = {"jsonrpc": "2.0", "id": message["id"]}
        if handler is None:
            reply["error"] = {"code": METHOD_NOT_FOUND, "message": f"method not found: {method}"}
        else:
            try:
                reply["result"] = await handler(message.get("params"))
            except Exception as error:  # noqa: BLE001 - a failing handler is answered, not fatal
                reply["error"] = {"code": INTERNAL_ERROR, "message": f"handling {method} failed: {error!r}"}
        try:
            self.send(reply)
        except ConnectionError:
            pass  # the other side is gone: nobody to answer
