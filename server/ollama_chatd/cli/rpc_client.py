"""Spawns `ollama-chatd serve` and talks to it over stdio through the shared JSON-RPC core."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from ollama_chatd.jsonrpc import FrameDecoder, NotificationHandler, Peer, RequestHandler, RpcError

__all__ = ["RpcError", "StdioClient", "initialize_params"]


def initialize_params(workspace: Path, client: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """`initialize` for a daemon whose one workspace folder is `workspace`, watching this process."""
    return {
        "processId": os.getpid(),
        "clientInfo": {"name": client},
        "rootUri": workspace.as_uri(),
        "workspaceFolders": [{"uri": workspace.as_uri(), "name": workspace.name or str(workspace)}],
        "capabilities": {},
        "initializationOptions": options or {},
    }


class StdioClient(Peer):
    def __init__(self, process: asyncio.subprocess.Process):
        super().__init__(self._write_bytes)
        self._process = process
        self._reader = asyncio.create_task(self._read_forever())

    @classmethod
    async def spawn(cls, argv: list[str] | None = None, **popen: Any) -> StdioClient:
        argv = argv or [sys.executable, "-m", "ollama_chatd", "serve"]
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, **popen
        )
        return cls(process)

    def on_notification(self, method: str, handler: NotificationHandler) -> None:
        self.notification_handlers[method] = handler

    def on_request(self, method: str, handler: RequestHandler) -> None:
        self.request_handlers[method] = handler

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

    def _write_bytes(self, data: bytes) -> None:
        assert self._process.stdin is not None
        if self._process.stdin.is_closing():
            raise ConnectionError("the daemon has exited")
        self._process.stdin.write(data)

    async def _read_forever(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        decoder = FrameDecoder()  # the daemon's own tests hold it to strict framing; here we go on
        while chunk := await stdout.read(1 << 16):
            for body in decoder.feed(chunk):
                self.receive(body)
        self.connection_lost("the daemon closed its output")
