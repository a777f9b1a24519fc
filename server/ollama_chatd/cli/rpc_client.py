"""A small JSON-RPC client that spawns `ollama-chatd serve` and talks to it over stdio."""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

Handler = Callable[[dict[str, Any]], Any]
RequestHandler = Callable[[dict[str, Any]], Awaitable[Any]]


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class StdioClient:
    def __init__(self, process: asyncio.subprocess.Process):
        self._process = process
        self._ids = itertools.count(1)
        self._pending: dict[int | str, asyncio.Future[Any]] = {}
        self._notification_handlers: dict[str, Handler] = {}
        self._request_handlers: dict[str, RequestHandler] = {}
        self.on_message: Handler | None = None
        self._reader = asyncio.create_task(self._read_forever())

    @classmethod
    async def spawn(cls, argv: list[str] | None = None, **popen: Any) -> StdioClient:
        argv = argv or [sys.executable, "-m", "ollama_chatd", "serve"]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, **popen
        )
        return cls(process)

    def on_notification(self, method: str, handler: Handler) -> None:
        self._notification_handlers[method] = handler

    def on_request(self, method: str, handler: RequestHandler) -> None:
        self._request_handlers[method] = handler

    def send_request(self, method: str, params: Any) -> tuple[int, asyncio.Future[Any]]:
        msg_id = next(self._ids)
        future = self._pending[msg_id] = asyncio.get_running_loop().create_future()
        self._write({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id, future

    async def request(self, method: str, params: Any) -> Any:
        return await self.send_request(method, params)[1]

    def notify(self, method: str, params: Any) -> None:
        self._write({"jsonrpc": "2.0", "method": method, "params": params})

    async def close(self, timeout: float = 5.0) -> int:
        """Shut the daemon down politely; return its exit code."""
        try:
            await asyncio.wait_for(self.request("shutdown", None), timeout)
            self.notify("exit", None)
        except (TimeoutError, RpcError, ConnectionError):
            self._process.terminate()
        try:
            return await asyncio.wait_for(self._process.wait(), timeout)
        finally:
            self._reader.cancel()

    def _write(self, message: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        if self._process.stdin.is_closing():
            raise ConnectionError("the daemon has exited")
        body = json.dumps(message).encode()
        self._process.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    async def _read_forever(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            while True:
                length = 0
                while (line := await stdout.readline()) not in (b"\r\n", b"\n"):
                    if not line:
                        raise EOFError
                    name, _, value = line.decode("ascii").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                self._dispatch(json.loads(await stdout.readexactly(length)))
        except (EOFError, asyncio.IncompleteReadError):
            error = ConnectionError("the daemon closed its output")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if self.on_message is not None:
            self.on_message(message)
        method = message.get("method")
        if method is None:
            future = self._pending.pop(message.get("id"), None)
            if future is None or future.done():
                return
            if "error" in message:
                error = message["error"]
                future.set_exception(RpcError(error["code"], error["message"], error.get("data")))
            else:
                future.set_result(message.get("result"))
        elif "id" in message:
            asyncio.create_task(self._answer(message))
        elif (handler := self._notification_handlers.get(method)) is not None:
            handler(message.get("params") or {})

    async def _answer(self, message: dict[str, Any]) -> None:
        handler = self._request_handlers.get(message["method"])
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": message["id"]}
        if handler is None:
            reply["error"] = {"code": -32601, "message": f"method not found: {message['method']}"}
        else:
            reply["result"] = await handler(message.get("params") or {})
        self._write(reply)
