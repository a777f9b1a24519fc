"""The error examples of protocol/README.md are what the daemon sends.

Each `<!-- schema: error -->` example is preceded by `<!-- situation: NAME -->`; the
situation of that name below provokes the error for real (the daemon over stdio, the
fake Ollama) and the daemon's `code`, `message` and `data` must equal the example's, after
the values that differ by nature (the fake's address, a request id) are put in the
example's terms. So the documented messages cannot drift from the daemon's again.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError

README = Path(__file__).resolve().parent.parent / "protocol" / "README.md"
EXAMPLE = re.compile(
    r"(?:<!--\s*situation:\s*([a-z0-9-]+)\s*-->\s*)?<!--\s*schema:\s*error\s*-->\s*```json\n(.*?)\n```", re.S
)


def documented_errors() -> list[tuple[str | None, dict[str, Any]]]:
    """(situation, error object) of every error example, in the README's order."""
    return [(name, json.loads(body)["error"]) for name, body in EXAMPLE.findall(README.read_text(encoding="utf-8"))]


DOCUMENTED = documented_errors()


class Situation:
    """What provoking one error needs: the fixtures, and the values to put in the example's terms."""

    def __init__(self, spawn_daemon, fake: FakeOllama, tmp_path: Path, closed_port_url: str):
        self._spawn_daemon = spawn_daemon
        self.fake = fake
        self.tmp_path = tmp_path
        self.closed_port_url = closed_port_url
        self.as_documented: dict[str, str] = {}  # actual text -> the example's

    async def daemon(self, options: dict[str, Any] | None = None, *, env: dict[str, str] | None = None) -> Daemon:
        daemon = await self._spawn_daemon(env=env)
        workspace = self.tmp_path / "project"
        workspace.mkdir(exist_ok=True)
        await daemon.initialize({"model": "tiny", **(options or {})}, workspaceFolders=[
            {"uri": workspace.as_uri(), "name": "project"},
        ])
        return daemon

    async def error_of(self, daemon: Daemon, method: str, params: Any) -> dict[str, Any]:
        with pytest.raises(RpcError) as raised:
            await daemon.request(method, params)
        return _error(raised.value)

    def call_it(self, actual: str, documented: str) -> None:
        self.as_documented[actual] = documented


def _error(error: RpcError) -> dict[str, Any]:
    out: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.data is not None:
        out["data"] = error.data
    return out


async def _error_without_id(daemon: Daemon, raw: bytes) -> dict[str, Any]:
    daemon.send_raw(raw)
    [message] = await daemon.wait_for(lambda: [m for m in daemon.messages if "error" in m and m.get("id") is None])
    return message["error"]


async def _running_turn(daemon: Daemon, fake: FakeOllama, chat_id: str) -> tuple[Any, asyncio.Future]:
    fake.script(Reply.endless())
    msg_id, answer = daemon.send_request("chat/start", {"chatId": chat_id, "prompt": "go on"})
    await daemon.wait_for(lambda: daemon.tokens(chat_id))
    return msg_id, answer


async def request_cancelled(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon()
    msg_id, answer = await _running_turn(daemon, s.fake, "c1")
    daemon.cancel_request(msg_id)
    with pytest.raises(RpcError) as raised:
        await answer
    s.call_it(f'"{msg_id}"', '"5"')
    return _error(raised.value)


async def stalled(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon({"stallTimeoutSeconds": 0.5})
    s.fake.script(Reply.stall(["The first step is to"], then_silence=30))
    s.call_it("0.5 s", "120 s")
    return await s.error_of(daemon, "chat/start", {"chatId": "c1", "prompt": "how?"})


async def unauthorized(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon()
    s.fake.script(Reply.error(401, "unauthorized"))
    s.call_it(s.fake.url, "https://ollama.example.com")
    return await s.error_of(daemon, "chat/start", {"chatId": "c1", "prompt": "hi"})


async def not_json(s: Situation) -> dict[str, Any]:
    return await _error_without_id(await s.daemon(), b"Content-Length: 8\r\n\r\nnot json")


async def batch(s: Situation) -> dict[str, Any]:
    body = json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "chat/list", "params": {}}]).encode()
    return await _error_without_id(await s.daemon(), b"Content-Length: %d\r\n\r\n%s" % (len(body), body))


async def unknown_method(s: Situation) -> dict[str, Any]:
    return await s.error_of(await s.daemon(), "chat/stop", {"chatId": "c1"})


async def invalid_chat_id(s: Situation) -> dict[str, Any]:
    return await s.error_of(await s.daemon(), "chat/start", {"chatId": "", "prompt": "hi"})


async def images_without_vision(s: Situation) -> dict[str, Any]:
    s.call_it("'thinker'", "'qwen3:8b'")
    return await s.error_of(await s.daemon(), "chat/start", {
        "chatId": "c1", "prompt": "what is this?", "model": "thinker", "images": ["aGVsbG8="],
    })


async def wrong_option_type(s: Situation) -> dict[str, Any]:
    daemon = await s._spawn_daemon()
    return await s.error_of(daemon, "initialize", {
        "processId": None, "capabilities": {}, "initializationOptions": {"maxContext": "large"},
    })


async def no_model(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon({"model": ""})
    return await s.error_of(daemon, "chat/start", {"chatId": "c2", "prompt": "hi"})


async def ollama_unreachable(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon(env={"OLLAMA_HOST": s.closed_port_url})
    s.call_it(s.closed_port_url, "http://127.0.0.1:11434")
    return await s.error_of(daemon, "chat/start", {"chatId": "c1", "prompt": "hi"})


async def model_not_found(s: Situation) -> dict[str, Any]:
    s.call_it(s.fake.url, "http://127.0.0.1:11434")
    return await s.error_of(await s.daemon(), "chat/start", {"chatId": "c1", "prompt": "hi", "model": "llama3.2"})


async def http_error(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon()
    s.fake.script(Reply.error(500, "llama runner process has terminated: exit status 2"))
    return await s.error_of(daemon, "chat/start", {"chatId": "c1", "prompt": "hi"})


async def error_mid_stream(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon()
    s.fake.script(Reply.mid_stream_error(
        ["The first three ", "primes are 2,"], "an error was encountered while running the model: unexpected EOF"
    ))
    return await s.error_of(daemon, "chat/start", {"chatId": "c1", "prompt": "primes?"})


async def chat_busy(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon()
    await _running_turn(daemon, s.fake, "c1")
    return await s.error_of(daemon, "chat/start", {"chatId": "c1", "prompt": "and?"})


async def delete_while_running(s: Situation) -> dict[str, Any]:
    daemon = await s.daemon()
    await _running_turn(daemon, s.fake, "c7")
    return await s.error_of(daemon, "chat/delete", {"chatId": "c7"})


async def unreadable_chat(s: Situation) -> dict[str, Any]:
    first = await s.daemon()
    await first.request("chat/start", {"chatId": "c1", "prompt": "remember"})
    await first.shutdown()
    with sqlite3.connect(s.tmp_path / "data" / "ollama-chatd" / "chats.sqlite3") as database:
        database.execute("UPDATE messages SET tool_calls = '{broken' WHERE role = 'assistant'")
    return await s.error_of(await s.daemon(), "chat/history", {"chatId": "c1"})


async def bad_cursor(s: Situation) -> dict[str, Any]:
    return await s.error_of(await s.daemon(), "chat/list", {"before": "yesterday"})


async def unknown_chat(s: Situation) -> dict[str, Any]:
    return await s.error_of(await s.daemon(), "chat/history", {"chatId": "c9"})


SITUATIONS: dict[str, Callable[[Situation], Awaitable[dict[str, Any]]]] = {
    function.__name__.replace("_", "-"): function
    for function in (
        request_cancelled, stalled, unauthorized, not_json, batch, unknown_method, invalid_chat_id,
        images_without_vision, wrong_option_type, no_model, ollama_unreachable, model_not_found, http_error,
        error_mid_stream, chat_busy, delete_while_running, unreadable_chat, bad_cursor, unknown_chat,
    )
}


def test_every_documented_error_names_a_situation_that_exists():
    names = [name for name, _ in DOCUMENTED]
    assert None not in names, "an error example in protocol/README.md has no <!-- situation: ... --> line"
    assert sorted(names) == sorted(SITUATIONS), "each situation is documented exactly once"


@pytest.mark.parametrize(("name", "example"), [d for d in DOCUMENTED if d[0] in SITUATIONS], ids=lambda v: v if isinstance(v, str) else "")
async def test_the_daemon_sends_the_documented_error(
    spawn_daemon, fake: FakeOllama, tmp_path: Path, closed_port_url: str, name: str, example: dict[str, Any]
):
    situation = Situation(spawn_daemon, fake, tmp_path, closed_port_url)
    actual = json.dumps(await SITUATIONS[name](situation))
    for text, documented in situation.as_documented.items():
        actual = actual.replace(json.dumps(text)[1:-1], json.dumps(documented)[1:-1])
    assert json.loads(actual) == example
