"""Driving the real `ollama-chatd serve` over its stdio, as an editor would.

The harness parses stdout strictly (any byte outside a well-formed frame fails
the test), validates every message against protocol/schemas, and can stop
reading stdout to play a busy editor.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import protocol_schemas
from ollama_chatd.jsonrpc import FrameDecoder, Peer, RpcError

__all__ = ["Daemon", "RpcError", "wait_until"]

READ_LIMIT = 16 * 1024


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
        self._peer = Peer(self._write_while_alive)
        self._peer.on_message = self._on_message
        self.request_handlers = self._peer.request_handlers
        self._decoder = FrameDecoder(self.stdout_violations)
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
        self._peer.send(message)

    def send_request(self, method: str, params: Any, msg_id: int | str | None = None) -> tuple[int | str, asyncio.Future[Any]]:
        msg_id, future = self._peer.send_request(method, params, msg_id)
        self.requests_sent[msg_id] = method
        return msg_id, future

    async def request(self, method: str, params: Any, timeout: float = 10.0) -> Any:
        return await asyncio.wait_for(self.send_request(method, params)[1], timeout)

    def notify(self, method: str, params: Any) -> None:
        self._peer.notify(method, params)

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
        while True:
            await self._reading.wait()
            chunk = await stdout.read(READ_LIMIT)
            if not chunk:
                break
            for body in self._decoder.feed(chunk):
                self._on_body(body)
        self._decoder.close()
        self._peer.connection_lost("daemon closed stdout")
        self._changed.set()

    def _on_body(self, body: bytes) -> None:
        try:
            self._peer.receive(body)
        except ValueError:
            self.stdout_violations.append(f"frame body is not JSON: {body[:200]!r}")

    def _on_message(self, message: dict[str, Any]) -> None:
        """Every message, before its request's future is settled: validate and record it."""
        try:
            protocol_schemas.validate_outgoing(message, self.requests_sent)
        except Exception as error:  # noqa: BLE001 - recorded, asserted at teardown
            self.stdout_violations.append(f"schema violation: {error}\n{message}")
        self.messages.append(message)
        self.received_at.append(time.monotonic())
        self._changed.set()

    def _write_while_alive(self, data: bytes) -> None:
        if self.process.returncode is None:  # answers to a daemon that has gone have no reader
            self.send_raw(data)
