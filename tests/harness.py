"""Driving the real `ollama-chatd serve` over its stdio, as an editor would.

The harness parses stdout strictly (any byte outside a well-formed frame fails
the test), validates every message against protocol/schemas, and can stop
reading stdout to play a busy editor.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import protocol_schemas

HEADER = re.compile(rb"(?:Content-Length: (\d+)\r\n)(?:Content-Type: [^\r\n]*\r\n)?\r\n")
READ_LIMIT = 16 * 1024


def _could_become_header(buffer: bytes) -> bool:
    """True while `buffer` may still grow into a valid header."""
    prefix = b"Content-Length: "
    if len(buffer) < len(prefix):
        return prefix.startswith(buffer)
    return buffer.startswith(prefix) and b"\r\n\r\n" not in buffer and len(buffer) < 300


class RpcError(Exception):
    def __init__(self, error: dict[str, Any]):
        super().__init__(f"{error['code']}: {error['message']}")
        self.code: int = error["code"]
        self.message: str = error["message"]
        self.data: Any = error.get("data")


async def wait_until(
    condition: Callable[[], Any], changed: asyncio.Event, timeout: float, stderr: Callable[[], str]
) -> Any:
    """The first true value of `condition`, checked each time `changed` is set
    (by whatever reads the process's output); TimeoutError with its stderr otherwise."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"condition not met in {timeout} s; stderr:\n{stderr()}")
        changed.clear()
        try:
            await asyncio.wait_for(changed.wait(), remaining)
        except TimeoutError:
            pass
    return value


class Daemon:
    def __init__(self, process: asyncio.subprocess.Process, stderr_path: Path):
        self.process = process
        self.stderr_path = stderr_path
        self.messages: list[dict[str, Any]] = []
        self.received_at: list[float] = []
        self.stdout_violations: list[str] = []
        self.requests_sent: dict[int | str, str] = {}
        self.request_handlers: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {}
        self._ids = itertools.count(1)
        self._pending: dict[int | str, asyncio.Future[Any]] = {}
        self._reading = asyncio.Event()
        self._reading.set()
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read_stdout())

    @classmethod
    async def spawn(cls, *args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> Daemon:
        stderr_path = Path(tempfile.mkstemp(prefix="chatd-stderr-", suffix=".log")[1])
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ollama_chatd", "serve", *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr_path.open("wb"),
            env={**os.environ, **(env or {})},
            cwd=cwd,
            limit=READ_LIMIT,
        )
        return cls(process, stderr_path)

    async def initialize(self, options: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        result = await self.request("initialize", {
            "processId": os.getpid(),
            "capabilities": {},
            "initializationOptions": options or {},
            **params,
        })
        self.notify("initialized", {})
        return result

    # -- sending -----------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps(message).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def send_request(self, method: str, params: Any, msg_id: int | str | None = None) -> tuple[int | str, asyncio.Future[Any]]:
        msg_id = next(self._ids) if msg_id is None else msg_id
        future = self._pending[msg_id] = asyncio.get_running_loop().create_future()
        self.requests_sent[msg_id] = method
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id, future

    async def request(self, method: str, params: Any, timeout: float = 10.0) -> Any:
        return await asyncio.wait_for(self.send_request(method, params)[1], timeout)

    def notify(self, method: str, params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def cancel_request(self, msg_id: int | str) -> None:
        self.notify("$/cancelRequest", {"id": msg_id})

    # -- observing ------------------------------------------------------------------

    def notifications(self, method: str, chat_id: str | None = None) -> list[dict[str, Any]]:
        return [
            m["params"] for m in self.messages
            if m.get("method") == method and "id" not in m
            and (chat_id is None or m["params"].get("chatId") == chat_id)
        ]

    def tokens(self, chat_id: str) -> list[dict[str, Any]]:
        return self.notifications("chat/token", chat_id)

    def text(self, chat_id: str, kind: str = "content") -> str:
        return "".join(t["text"] for t in self.tokens(chat_id) if t["kind"] == kind)

    def index_of_response(self, msg_id: int | str) -> int:
        return next(i for i, m in enumerate(self.messages) if m.get("id") == msg_id and "method" not in m)

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 10.0) -> Any:
        return await wait_until(condition, self._changed, timeout, self.stderr)

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    # -- ending -----------------------------------------------------------------------

    async def shutdown(self, timeout: float = 10.0) -> int:
        """shutdown + exit; return the exit code."""
        await self.request("shutdown", None, timeout)
        self.notify("exit", None)
        return await self.wait_exit(timeout)

    async def wait_exit(self, timeout: float = 10.0) -> int:
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.wait_for(self._reader, timeout)
        return code

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    # -- reading stdout -------------------------------------------------------------------

    async def _read_stdout(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        buffer = b""
        while True:
            await self._reading.wait()
            chunk = await stdout.read(READ_LIMIT)
            if not chunk:
                break
            buffer += chunk
            buffer = self._take_frames(buffer)
        if buffer:
            self.stdout_violations.append(f"trailing bytes on stdout: {buffer[:200]!r}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("daemon closed stdout"))
        self._changed.set()

    def _take_frames(self, buffer: bytes) -> bytes:
        while True:
            if not buffer:
                return buffer
            match = HEADER.match(buffer)
            if match is None:
                if _could_become_header(buffer):
                    return buffer
                self.stdout_violations.append(f"not a frame header: {buffer[:200]!r}")
                return b""
            end = match.end() + int(match.group(1))
            if len(buffer) < end:
                return buffer
            self._on_body(buffer[match.end():end])
            buffer = buffer[end:]

    def _on_body(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            self.stdout_violations.append(f"frame body is not JSON: {body[:200]!r}")
            return
        try:
            protocol_schemas.validate_outgoing(message, self.requests_sent)
        except Exception as error:  # noqa: BLE001 - recorded, asserted at teardown
            self.stdout_violations.append(f"schema violation: {error}\n{message}")
        self.messages.append(message)
        self.received_at.append(time.monotonic())
        self._changed.set()
        if "method" not in message:
            future = self._pending.pop(message.get("id"), None)
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(RpcError(message["error"]))
                else:
                    future.set_result(message.get("result"))
        elif "id" in message:
            asyncio.get_running_loop().create_task(self._answer(message))

    async def _answer(self, message: dict[str, Any]) -> None:
        handler = self.request_handlers.get(message["method"])
        if handler is None:
            reply = {"error": {"code": -32601, "message": f"not handled: {message['method']}"}}
        else:
            try:
                reply = {"result": await handler(message.get("params"))}
            except Exception as error:  # noqa: BLE001 - a broken test editor answers like one
                reply = {"error": {"code": -32603, "message": f"test editor failed: {error!r}"}}
        if self.process.returncode is None:
            self.send({"jsonrpc": "2.0", "id": message["id"], **reply})
