"""Driving `ollama-chatd acp` through the official ACP TypeScript SDK, as Zed would.

`AcpClient` runs tests/acp_client/driver.mjs (the SDK's `client()`), which spawns
the agent; the test sends it requests and notifications and watches what the
agent sends. Every message the agent sends is checked against the JSON Schema of
ACP v1 that the SDK ships.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from harness import wait_until
from real_parts import real_part

READ_LIMIT = 16 * 1024 * 1024


def client_dir() -> Path:
    return real_part("acp-client/node_modules/@agentclientprotocol/sdk/package.json", "45-acp-client.sh").parents[3]


def agent_message_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((client_dir() / "node_modules/@agentclientprotocol/sdk/schema/v1/schema.json").read_text())
    agent_side = next(branch for branch in schema["anyOf"] if branch.get("title") == "Agent")
    return jsonschema.Draft202012Validator({**agent_side, "$defs": schema["$defs"]})


class AcpError(Exception):
    def __init__(self, error: dict[str, Any]):
        super().__init__(f"{error.get('code')}: {error.get('message')}")
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")


class AcpClient:
    def __init__(self, process: asyncio.subprocess.Process, stderr_path: Path):
        self.process = process
        self.stderr_path = stderr_path
        self.events: list[dict[str, Any]] = []
        self.invalid: list[str] = []  # agent messages the schema refuses
        self._validator = agent_message_validator()
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def spawn(cls, *agent_args: str, env: dict[str, str], cwd: str) -> AcpClient:
        stderr_path = Path(tempfile.mkstemp(prefix="acp-stderr-", suffix=".log")[1])
        process = await asyncio.create_subprocess_exec(
            "node", str(client_dir() / "driver.mjs"), "--",
            sys.executable, "-m", "ollama_chatd", "acp", *agent_args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr_path.open("wb"),
            env={**os.environ, **env},
            cwd=cwd,
            limit=READ_LIMIT,
        )
        return cls(process, stderr_path)

    # -- commands -----------------------------------------------------------------

    def _command(self, command: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")

    def send_request(self, method: str, params: dict[str, Any]) -> asyncio.Future[Any]:
        request_id = next(self._ids)
        future = self._pending[request_id] = asyncio.get_running_loop().create_future()
        self._command({"op": "request", "id": request_id, "method": method, "params": params})
        return future

    async def request(self, method: str, params: dict[str, Any], timeout: float = 15.0) -> Any:
        return await asyncio.wait_for(self.send_request(method, params), timeout)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self._command({"op": "notify", "method": method, "params": params})

    def set_buffers(self, files: dict[str, str]) -> None:
        self._command({"op": "buffers", "files": files})

    def answer_permissions(self, answer: str) -> None:
        """An optionId, "cancelled", or "hold" (then `answer_held`)."""
        self._command({"op": "permissions", "answer": answer})

    def answer_held(self, key: int, answer: str) -> None:
        self._command({"op": "answer_permission", "key": key, "answer": answer})

    async def initialize(self, fs: bool = True) -> dict[str, Any]:
        return await self.request("initialize", {
            "protocolVersion": 1,
            "clientCapabilities": {"fs": {"readTextFile": fs, "writeTextFile": fs}},
            "clientInfo": {"name": "tests", "version": "1"},
        })

    async def new_session(self, cwd: Path) -> str:
        result = await self.request("session/new", {"cwd": str(cwd), "mcpServers": []})
        return result["sessionId"]

    async def close(self) -> int | None:
        """Close the connection; return the agent's exit code."""
        self._command({"op": "close"})
        exit_event = await self.wait_for(lambda: self.first("agent_exit"))
        await asyncio.wait_for(self.process.wait(), 10)
        return exit_event["code"]

    # -- observing ------------------------------------------------------------------

    def first(self, kind: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["event"] == kind), None)

    def agent_messages(self) -> list[dict[str, Any]]:
        return [e["message"] for e in self.events if e["event"] == "agent"]

    def updates(self, session_id: str) -> list[dict[str, Any]]:
        return [
            m["params"]["update"] for m in self.agent_messages()
            if m.get("method") == "session/update" and m["params"]["sessionId"] == session_id
        ]

    def updates_of(self, session_id: str, kind: str) -> list[dict[str, Any]]:
        return [u for u in self.updates(session_id) if u["sessionUpdate"] == kind]

    def text(self, session_id: str, kind: str = "agent_message_chunk") -> str:
        return "".join(u["content"]["text"] for u in self.updates_of(session_id, kind))

    def tool_call_violations(self) -> list[str]:
        """Calls updated before their `tool_call`, announced twice, or updated after their end."""
        found: list[str] = []
        ended: dict[tuple[str, str], bool] = {}
        for message in self.agent_messages():
            if message.get("method") != "session/update":
                continue
            update = message["params"]["update"]
            kind = update["sessionUpdate"]
            if kind not in ("tool_call", "tool_call_update"):
                continue
            call = (message["params"]["sessionId"], update["toolCallId"])
            if (kind == "tool_call") == (call in ended):
                found.append(f"{kind} for {'a known' if call in ended else 'an unknown'} call {call[1]}")
            elif ended.get(call):
                found.append(f"{kind} after call {call[1]} ended")
            ended[call] = update.get("status") in ("completed", "failed")
        return found

    def held_permissions(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "permission_held"]

    async def wait_for(self, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
        return await wait_until(condition, self._changed, timeout, self.stderr)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == "agent":
                self._check(event["message"])
            elif event["event"] in ("response", "error") and (future := self._pending.pop(event["id"], None)):
                if not future.done():
                    if event["event"] == "response":
                        future.set_result(event["result"])
                    else:
                        future.set_exception(AcpError(event["error"]))
            self._changed.set()

    def _check(self, message: dict[str, Any]) -> None:
        errors = sorted(self._validator.iter_errors(message), key=lambda e: e.path)
        if errors:
            self.invalid.append(f"{json.dumps(message)[:300]}: {errors[0].message[:300]}")

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
