"""Misbehaving Ollama: the fake server scripted to break in the ways real servers and the
proxies in front of them do. Each failure must end the turn with a JSON-RPC error that says
what happened (-32003 upstream_error, or -32001 when no connection is made), keep the
partial answer (in `data.partial`, in chat/history and in the next request to Ollama), and
leave the daemon and the other chats working.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError

UPSTREAM_ERROR, OLLAMA_UNREACHABLE = -32003, -32001


def line(obj: Any) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def token_line(text: str) -> bytes:
    return line({"model": "tiny", "created_at": "2025-11-25T10:00:00.000000Z",
                 "message": {"role": "assistant", "content": text}, "done": False})


DONE_LINE = line({"model": "tiny", "created_at": "2025-11-25T10:00:01.000000Z",
                  "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                  "eval_count": 3, "prompt_eval_count": 5})
HTML_PAGE = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n"
    "<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
)


@dataclass(kw_only=True)
class CutChunkReply(Reply):
    """Some whole chunks, then an HTTP chunk header announcing more bytes than follow,
    then the connection closes: the server died in the middle of an HTTP chunk."""

    kind: ClassVar[str] = "cut_chunk"
    before: list[bytes]
    partial: bytes

    async def _respond(self, resp, chat) -> None:
        for piece in self.before:
            await resp.chunk(piece)
        await resp.conn.write(resp._pending_head() + b"%x\r\n" % (len(self.partial) + 100) + self.partial)
        resp.record.response_completed = True
        resp.close_after = True


@dataclass(frozen=True)
class Misbehaviour:
    name: str
    reply: Reply
    partial: str | None  # what the client saw before it broke, None if nothing
    status: int | None  # data.status
    says: tuple[str, ...]  # what the message must mention (case-insensitive)


MISBEHAVIOURS = [
    Misbehaviour(
        "connection closed in the middle of a line",
        Reply.raw([token_line("Hello"), token_line(" wor"), token_line("ld")[:25]], terminate=False),
        "Hello wor", None, ("connection", "closed", "middle"),
    ),
    Misbehaviour(
        "connection closed in the middle of an HTTP chunk",
        CutChunkReply(before=[token_line("Hello"), token_line(" there")], partial=token_line(" and")[:30]),
        "Hello there", None, ("connection", "closed", "middle"),
    ),
    Misbehaviour(
        "an invalid JSON line",
        Reply.raw([token_line("Hello"), b"{this is not json}\n", token_line(" more"), DONE_LINE]),
        "Hello", None, ("not JSON", "{this is not json}"),
    ),
    Misbehaviour(
        "a line that is not UTF-8",
        Reply.raw([token_line("Hello"), b'{"message":{"role":"assistant","content":"\xff\xfe"},"done":false}\n', DONE_LINE]),
        "Hello", None, ("not JSON",),
    ),
    Misbehaviour(
        "a 10 MB single line",
        Reply.raw([token_line("Hello"), token_line(" big"), b'{"message":{"role":"assistant","content":"'
                   + b"x" * (10 * 1024 * 1024) + b'"},"done":false}\n', DONE_LINE]),
        "Hello big", None, ("line longer than", "8 MiB"),
    ),
    Misbehaviour(
        "a stream that ends without done",
        Reply.raw([token_line("Hello"), token_line(" there")]),
        "Hello there", None, ("without its final chunk", "done"),
    ),
    Misbehaviour(
        "a stream that ends without done, before any token",
        Reply.raw([]),
        None, None, ("without its final chunk",),
    ),
    Misbehaviour(
        "HTML from a proxy with 200 text/html",
        Reply.plain(200, HTML_PAGE, "text/html"),
        None, 200, ("200", "not JSON", "proxy", "502 Bad Gateway"),
    ),
    Misbehaviour(
        "HTML in the middle of the stream",
        Reply.raw([token_line("Hi"), HTML_PAGE.encode()]),
        "Hi", None, ("not JSON", "<html>"),
    ),
    Misbehaviour(
        "HTML from a proxy with 502 text/html",
        Reply.plain(502, HTML_PAGE, "text/html"),
        None, 502, ("502", "not JSON", "proxy", "nginx"),
    ),
    Misbehaviour(
        "a 500 with a plain-text body",
        Reply.plain(500, "Internal Server Error: llama runner crashed\n", "text/plain"),
        None, 500, ("500", "llama runner crashed"),
    ),
    Misbehaviour(
        "an error line in the middle of the stream, then an abrupt close",
        Reply.mid_stream_error(["Half", " an answer"], "an error was encountered while running the model", terminate=False),
        "Half an answer", None, ("an error was encountered while running the model",),
    ),
]


async def start_other_chat(daemon: Daemon, fake: FakeOllama) -> asyncio.Future:
    """A chat on another model that streams until it is cancelled."""
    fake.script(Reply.endless(token="other ", delay=0.01), model="plain")
    _, answer = daemon.send_request("chat/start", {"chatId": "other", "prompt": "keep going", "model": "plain"})
    await daemon.wait_for(lambda: len(daemon.tokens("other")) >= 3)
    return answer


async def assert_other_chat_still_streams(daemon: Daemon, answer: asyncio.Future) -> None:
    seen = len(daemon.tokens("other"))
    await daemon.wait_for(lambda: len(daemon.tokens("other")) >= seen + 5)
    assert not answer.done()
    assert await daemon.request("chat/cancel", {"chatId": "other"}) == {"cancelled": True}
    result = await answer
    assert result["stopReason"] == "cancelled"
    assert result["message"]["content"] == daemon.text("other")


async def assert_partial_is_kept(daemon: Daemon, fake: FakeOllama, chat_id: str, partial: str | None) -> None:
    """chat/history shows it, and the next turn sends it to Ollama."""
    if partial is None:
        with pytest.raises(RpcError) as raised:  # a turn that produced nothing leaves no chat behind
            await daemon.request("chat/history", {"chatId": chat_id})
        assert raised.value.code == -32602
    else:
        history = await daemon.request("chat/history", {"chatId": chat_id})
        [user, assistant] = history["messages"]
        assert (user["role"], user["content"]) == ("user", "what now?")
        assert (assistant["role"], assistant["content"]) == ("assistant", partial)
        assert assistant.get("status") == "failed"
    before = len(fake.requests)
    result = await daemon.request("chat/start", {"chatId": chat_id, "prompt": "try again"})
    assert result["message"]["content"] == "echo: try again"
    sent = [(m["role"], m["content"]) for m in fake.requests[before].body["messages"]]
    expected = [("user", "what now?"), ("assistant", partial)] if partial is not None else []
    assert sent == [*expected, ("user", "try again")]


@pytest.mark.parametrize("case", MISBEHAVIOURS, ids=[m.name for m in MISBEHAVIOURS])
async def test_a_misbehaving_server_ends_the_turn_with_a_clear_error(daemon: Daemon, fake: FakeOllama, case: Misbehaviour):
    other = await start_other_chat(daemon, fake)
    fake.script(case.reply)
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "broken", "prompt": "what now?"}, timeout=30)

    error = raised.value
    assert error.code == UPSTREAM_ERROR, error
    assert error.data["kind"] == "upstream_error"
    assert error.data["status"] == case.status
    for words in case.says:
        assert words.lower() in error.message.lower(), (words, error.message)
    assert len(error.message) < 2000, "the message quotes a bounded excerpt"
    assert daemon.text("broken") == (case.partial or "")
    if case.partial is None:
        assert "partial" not in error.data
    else:
        assert error.data["partial"] == {"content": case.partial}

    await assert_other_chat_still_streams(daemon, other)
    await assert_partial_is_kept(daemon, fake, "broken", case.partial)
    assert daemon.process.returncode is None


async def test_a_10_mb_line_is_dropped_at_the_cap_not_read_to_the_end(daemon: Daemon, fake: FakeOllama):
    """The daemon stops reading at 8 MiB and closes the connection; it does not wait for,
    or hold, the whole line."""
    fake.script(Reply.raw([token_line("Hi"), b'{"message":{"content":"' + b"y" * (64 * 1024 * 1024) + b'"}}\n']))
    started = time.monotonic()
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "q"}, timeout=30)
    assert raised.value.code == UPSTREAM_ERROR
    assert time.monotonic() - started < 10
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 5.0)


async def test_a_stall_mid_stream_ends_the_turn_and_drops_the_connection(spawn_daemon, fake: FakeOllama):
    daemon = await spawn_daemon()
    await daemon.initialize({"model": "tiny", "stallTimeoutSeconds": 0.5})
    other = await start_other_chat(daemon, fake)
    fake.script(Reply.stall(["Once", " upon"], then_silence=60))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "broken", "prompt": "what now?"}, timeout=10)
    assert raised.value.code == UPSTREAM_ERROR
    assert "stalled" in raised.value.message
    assert raised.value.data == {"kind": "upstream_error", "status": None, "partial": {"content": "Once upon"}}
    assert await asyncio.to_thread(fake.requests[-1].wait_closed, 2.0)
    await assert_other_chat_still_streams(daemon, other)
    await assert_partial_is_kept(daemon, fake, "broken", "Once upon")


# -- a server that accepts and never answers ------------------------------------------------------


@pytest.mark.parametrize("how", ["chat/cancel", "$/cancelRequest"])
async def test_a_server_that_never_answers_blocks_nothing_but_its_own_turn(daemon: Daemon, fake: FakeOllama, how: str):
    """By design no timeout applies before the first byte (loading a model takes minutes):
    the turn waits, the client is told it waits, everything else goes on, and a cancel
    drops the connection at once."""
    fake.script(Reply.hang(), model="tiny")
    hung_id, hung = daemon.send_request("chat/start", {"chatId": "hung", "prompt": "hello?"})
    [request] = await fake.wait_for_requests_async(1)
    await daemon.wait_for(lambda: daemon.notifications("chat/status", "hung"))
    assert daemon.notifications("chat/status", "hung")[-1]["state"] == "waiting"

    for turn in range(3):  # other chats, on another model, one after another and side by side
        results = await asyncio.gather(*(
            daemon.request("chat/start", {"chatId": f"side-{turn}-{n}", "prompt": f"ping {n}", "model": "plain"})
            for n in range(3)
        ))
        assert [r["message"]["content"] for r in results] == [f"echo: ping {n}" for n in range(3)]
    assert (await daemon.request("chat/models", {}))["models"]
    assert (await daemon.request("chat/list", {}))["chats"]
    assert not hung.done()
    assert not request.client_dropped

    started = time.monotonic()
    if how == "chat/cancel":
        assert await daemon.request("chat/cancel", {"chatId": "hung"}) == {"cancelled": True}
        result = await hung
        assert result["stopReason"] == "cancelled" and result["message"]["content"] == ""
    else:
        daemon.cancel_request(hung_id)
        with pytest.raises(RpcError) as raised:
            await hung
        assert raised.value.code == -32800
    assert await asyncio.to_thread(request.wait_closed, 2.0)
    assert request.closed_at - started < 0.5, "the connection must be dropped at once"
    result = await daemon.request("chat/start", {"chatId": "hung", "prompt": "now?"})
    assert result["message"]["content"] == "echo: now?"


# -- TLS -------------------------------------------------------------------------------------------


async def test_https_to_a_plain_http_server_names_the_address(spawn_daemon, fake: FakeOllama):
    """The fake speaks plain HTTP. Observed: the TLS handshake gets no answer (the fake
    waits for an HTTP header block that never comes), so the daemon gives up after its
    10 s connect timeout with -32001 "no connection within 10 s"."""
    address = fake.url.replace("http://", "https://")
    daemon = await spawn_daemon(env={"OLLAMA_HOST": address})
    await daemon.initialize({"model": "tiny"})
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"}, timeout=30)
    assert raised.value.code == OLLAMA_UNREACHABLE
    assert raised.value.data == {"kind": "ollama_unreachable", "address": address, "backend": "ollama"}
    assert address in raised.value.message
    assert (await daemon.request("chat/cancel", {"chatId": "c1"})) == {"cancelled": False}


@pytest.fixture
async def self_signed_server(tmp_path: Path):
    """A TLS server whose certificate nobody trusts; it answers nothing."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True, capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
        except (OSError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def test_an_untrusted_certificate_is_reported_with_the_address(spawn_daemon, self_signed_server: str):
    daemon = await spawn_daemon(env={"OLLAMA_HOST": self_signed_server})
    await daemon.initialize({"model": "tiny"})
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"}, timeout=30)
    assert raised.value.code == OLLAMA_UNREACHABLE
    assert raised.value.data == {"kind": "ollama_unreachable", "address": self_signed_server, "backend": "ollama"}
    assert self_signed_server in raised.value.message
    assert "certificate" in raised.value.message.lower()


async def test_an_untrusted_certificate_points_to_the_ca_bundle_option(spawn_daemon, self_signed_server: str):
    """Regression: the message used to give only the generic -32001 advice (start `ollama
    serve`, set OLLAMA_HOST), which cannot fix a certificate; the way out is `caBundle`."""
    daemon = await spawn_daemon(env={"OLLAMA_HOST": self_signed_server})
    await daemon.initialize({"model": "tiny"})
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"}, timeout=30)
    assert "caBundle" in raised.value.message


async def test_a_deeply_nested_line_is_an_upstream_error(daemon: Daemon, fake: FakeOllama):
    """Regression: a line nested 5000 deep raised RecursionError in wire.parse_chat_line and
    the turn ended -32603 internal error, without data.partial."""
    other = await start_other_chat(daemon, fake)
    fake.script(Reply.raw([token_line("Hello"), b"[" * 5000 + b"]" * 5000 + b"\n", DONE_LINE]))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "broken", "prompt": "what now?"})
    assert raised.value.code == UPSTREAM_ERROR, raised.value.message
    assert raised.value.data["partial"] == {"content": "Hello"}
    await assert_other_chat_still_streams(daemon, other)
    await assert_partial_is_kept(daemon, fake, "broken", "Hello")


@pytest.mark.parametrize("line", [
    b'{"message":{"role":"assistant","content":5},"done":false}',
    b'{"message":{"role":"assistant","content":["a"]},"done":false}',
    b'{"message":{"role":"assistant","content":"x","thinking":{"a":1}},"done":false}',
    b'{"message":"hello","done":false}',
    b'{"message":{"role":"assistant","content":null},"done":false}',
])
async def test_a_line_of_the_wrong_shape_is_an_upstream_error(daemon: Daemon, fake: FakeOllama, line: bytes):
    """Regression: `"content": 5` passed wire.parse_chat_line and reached the outbox: it was
    written as chat/token {text: 5} (a schema violation) and the turn ended -32603, or, when
    token pieces were merged, the outbox failed on every later write and the daemon could
    never write anything again."""
    other = await start_other_chat(daemon, fake)
    fake.script(Reply.raw([token_line("Hello"), line + b"\n", token_line(" more"), DONE_LINE]))
    try:
        try:
            result = await daemon.request("chat/start", {"chatId": "broken", "prompt": "what now?"}, timeout=5)
        except RpcError as error:
            assert error.code == UPSTREAM_ERROR, error.message
            assert error.data["partial"] == {"content": "Hello"}
            partial = "Hello"
        else:  # a null content may be read as "no text in this chunk"
            assert line.endswith(b'"content":null},"done":false}'), result
            assert result["message"]["content"] == daemon.text("broken") == "Hello more"
            partial = None
        await assert_other_chat_still_streams(daemon, other)
        if partial is not None:
            await assert_partial_is_kept(daemon, fake, "broken", partial)
    finally:
        violations, daemon.stdout_violations[:] = list(daemon.stdout_violations), []  # asserted here, not at teardown
    assert not violations, violations
