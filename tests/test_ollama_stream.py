"""/api/chat streamed through httpx (`OllamaClient.stream_chat`) over real sockets.

Most tests talk to the fake Ollama; the ones that need byte-level control over the
response framing (where a socket read ends, a redirect, Content-Length bodies, a
connection closed at a chosen moment) use `raw_server`, a few lines of asyncio that
send exactly the bytes a test gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from fake_ollama import FakeOllama, Reply, encode_chunk
from ollama_chatd.llm import (
    BackendError,
    BackendUnreachable,
    ChatChunk,
    ChatRequest,
    FeatureNotSupported,
    Message,
    ModelNotFound,
    UpstreamError,
)
from ollama_chatd.ollama.client import OllamaClient

# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy configured on the machine would stand between the client and the test's server."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def chat_request(model: str = "tiny", prompt: str = "hi") -> ChatRequest:
    return ChatRequest(model=model, messages=(Message("user", prompt),))


def line(content: str = "", *, done: bool = False, **extra: Any) -> bytes:
    obj = {"model": "tiny", "message": {"role": "assistant", "content": content}, "done": done, **extra}
    if done:
        obj.setdefault("done_reason", "stop")
        obj.setdefault("eval_count", 3)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


DONE = line(done=True)


@dataclass
class Outcome:
    chunks: list[ChatChunk] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def text(self) -> str:
        return "".join(chunk.content for chunk in self.chunks)

    @property
    def error_facts(self) -> tuple[type, str, int | None] | None:
        if self.error is None:
            return None
        return type(self.error), str(self.error), getattr(self.error, "status", None)


async def run(client: OllamaClient, request: ChatRequest | None = None) -> Outcome:
    outcome = Outcome()
    try:
        async for chunk in client.stream_chat(request or chat_request()):
            outcome.chunks.append(chunk)
    except BackendError as error:
        outcome.error = error
    return outcome


def drop_idle_connections(fake: FakeOllama) -> None:
    """Make the fake close its kept-alive connections, as a restarted Ollama would."""

    async def drop() -> None:
        for connection in list(fake._conns):
            if connection.current is None:
                connection.close()
        await asyncio.sleep(0.05)  # let the closes reach the sockets

    asyncio.run_coroutine_threadsafe(drop(), fake._loop).result(5)


# ---------------------------------------------------------------- a server of exact bytes

CLOSE = "close"  # in an answer: the server closes the connection here


@dataclass
class RawServer:
    url: str
    answers: list[list[bytes | float | str]]
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


@contextlib.asynccontextmanager
async def raw_server(*answers: list[bytes | float | str]) -> AsyncIterator[RawServer]:
    """Answers the n-th request (on any connection) with the n-th list of pieces: bytes are
    written as they are, a number sleeps, CLOSE closes. Keeps the connection open after."""
    state = RawServer("", list(answers))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                state.requests.append(head + await reader.readexactly(int(length.group(1)) if length else 0))
                for piece in state.answers.pop(0):
                    if piece == CLOSE:
                        return
                    if isinstance(piece, float):
                        await asyncio.sleep(piece)
                    else:
                        writer.write(piece)
                        await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            state.closed.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    state.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield state
    finally:
        server.close()


def chunked_answer(*payloads: bytes, status: str = "200 OK", headers: bytes = b"") -> bytes:
    head = b"HTTP/1.1 %s\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n%s\r\n" % (
        status.encode(),
        headers,
    )
    return head + b"".join(encode_chunk(p) for p in payloads) + b"0\r\n\r\n"


# ---------------------------------------------------------------- streaming


async def test_echo(fake: FakeOllama) -> None:
    async with OllamaClient(fake.url) as client:
        outcome = await run(client, chat_request(prompt="Bonjour 日本 🦙"))
    assert outcome.error is None
    assert outcome.text == "echo: Bonjour 日本 🦙"
    final = outcome.chunks[-1]
    assert final.done and final.done_reason == "stop" and final.usage is not None and final.usage.completion_tokens == 4


async def test_request_headers_and_body(fake: FakeOllama) -> None:
    headers = {"Authorization": "Bearer sk-secret", "X-Extra": "1"}
    async with OllamaClient(fake.url, headers=headers) as client:
        await run(client, chat_request(prompt="é"))
    [request] = fake.requests
    sent = request.headers
    assert sent["authorization"] == "Bearer sk-secret" and sent["x-extra"] == "1"
    assert sent["accept"] == "application/x-ndjson" and sent["accept-encoding"] == "identity"
    assert sent["content-type"] == "application/json" and sent["user-agent"].startswith("ollama-chatd/")
    assert sent["host"] == fake.url.removeprefix("http://")
    assert int(sent["content-length"]) == len(request.raw_body)
    assert request.body == {"model": "tiny", "messages": [{"role": "user", "content": "é"}], "stream": True}
    assert "sk-secret" not in repr(client)


CONTENT = ["Bonjour ", "é", "日本語", " 🎉👍🏽", " <b>&</b>\n", "fin."]
STREAM = b"".join(line(piece) for piece in CONTENT) + DONE
# cuts inside "é", inside "日", inside the emoji, right after a newline, inside a JSON key
CUTS = sorted(
    {STREAM.index("é".encode()) + 1, STREAM.index("日".encode()) + 2, STREAM.index("🎉".encode()) + 3}
    | {STREAM.index(b"\n") + 1, STREAM.index(b'"done"') + 3, 1, len(STREAM) - 1}
)


@pytest.mark.parametrize("cut", CUTS)
async def test_http_chunks_cut_anywhere(fake: FakeOllama, cut: int) -> None:
    # Each bytes piece is one HTTP chunk; the pause makes it a socket read of its own.
    fake.script(Reply.raw([STREAM[:cut], 0.01, STREAM[cut:]]))
    async with OllamaClient(fake.url) as client:
        outcome = await run(client)
    assert outcome.error is None
    assert outcome.text == "".join(CONTENT)
    assert [chunk.done for chunk in outcome.chunks] == [False] * len(CONTENT) + [True]


async def test_every_byte_its_own_chunk(fake: FakeOllama) -> None:
    fake.script(Reply.raw([STREAM[i : i + 1] for i in range(len(STREAM))]))
    async with OllamaClient(fake.url) as client:
        outcome = await run(client)
    assert outcome.text == "".join(CONTENT) and outcome.chunks[-1].done


async def test_several_lines_in_one_chunk(fake: FakeOllama) -> None:
    fake.script(Reply.raw([line("a") + line("b") + line("c"), line("d") + DONE]))
    async with OllamaClient(fake.url) as client:
        outcome = await run(client)
    assert [chunk.content for chunk in outcome.chunks] == ["a", "b", "c", "d", ""]


@pytest.mark.parametrize(
    "where", ["in the size line", "between CR and LF", "in the data", "in the data's CRLF", "in the last chunk"]
)
async def test_framing_cut_across_socket_reads(where: str) -> None:
    answer = chunked_answer(line("one"), line("two") + DONE)
    body_start = answer.index(b"\r\n\r\n") + 4
    second = answer.index(b"\r\n", answer.index(b"one")) + 2  # the second chunk's size line
    cut = {
        "in the size line": second + 1,
        "between CR and LF": answer.index(b"\r\n", second) + 1,
        "in the data": answer.index(b"two") + 1,
        "in the data's CRLF": answer.rindex(b"\r\n0\r\n") + 1,
        "in the last chunk": len(answer) - 3,
    }[where]
    assert cut > body_start
    async with raw_server([answer[:cut], 0.02, answer[cut:]]) as server, OllamaClient(server.url) as client:
        outcome = await run(client)
    assert outcome.error is None
    assert [chunk.content for chunk in outcome.chunks] == ["one", "two", ""]


async def test_a_content_length_body(fake: FakeOllama) -> None:
    body = line("whole") + DONE
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    async with raw_server([answer], [answer]) as server, OllamaClient(server.url) as client:
        assert (await run(client)).text == "whole"
        assert (await run(client)).text == "whole"
    assert server.connections == 1, "a complete Content-Length answer leaves the connection reusable"


async def test_a_body_that_ends_when_the_server_closes() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"
    async with raw_server([answer, line("until"), 0.02, line(" close") + DONE, CLOSE]) as server:
        async with OllamaClient(server.url) as client:
            outcome = await run(client)
    assert outcome.error is None and outcome.text == "until close"


async def test_a_gzip_body_is_decompressed() -> None:
    compressed = gzip.compress(STREAM)
    answer = chunked_answer(
        *[compressed[i : i + 50] for i in range(0, len(compressed), 50)], headers=b"Content-Encoding: gzip\r\n"
    )
    async with raw_server([answer]) as server, OllamaClient(server.url) as client:
        outcome = await run(client)
    assert outcome.error is None and outcome.text == "".join(CONTENT)


async def test_lines_after_done_are_not_parsed(fake: FakeOllama) -> None:
    fake.script(Reply.raw([line("x"), DONE, b"garbage\n"]))
    async with OllamaClient(fake.url) as client:
        outcome = await run(client)
        assert outcome.error is None and len(outcome.chunks) == 2
        assert (await run(client)).text == "echo: hi"
    assert fake.connections_opened == 1


async def test_a_big_answer_arrives_whole(fake: FakeOllama) -> None:
    fake.script(Reply.bulk(20_000, token="é"), Reply.text(["x" * 300_000, "y"]))
    async with OllamaClient(fake.url) as client:
        bulk = await run(client)
        long_line = await run(client)
    assert bulk.text == "é" * 20_000 and bulk.chunks[-1].done
    assert long_line.text == "x" * 300_000 + "y"


# ---------------------------------------------------------------- keep-alive


async def test_one_connection_serves_turn_after_turn(fake: FakeOllama) -> None:
    async with OllamaClient(fake.url) as client:
        for prompt in ("one", "two", "three"):
            assert (await run(client, chat_request(prompt=prompt))).text == f"echo: {prompt}"
    assert fake.connections_opened == 1


async def test_concurrent_streams_each_get_a_connection_then_share_them(fake: FakeOllama) -> None:
    fake.script(*[Reply.text(["slow"], first_byte_delay=0.1) for _ in range(3)])
    async with OllamaClient(fake.url) as client:
        outcomes = await asyncio.gather(*(run(client) for _ in range(3)))
        assert [outcome.text for outcome in outcomes] == ["slow"] * 3
        assert fake.connections_opened == 3
        await asyncio.gather(*(run(client) for _ in range(3)))
    assert fake.connections_opened == 3


async def test_an_error_answer_read_whole_keeps_the_connection(fake: FakeOllama) -> None:
    async with OllamaClient(fake.url) as client:
        assert isinstance((await run(client, chat_request(model="nope"))).error, ModelNotFound)
        assert (await run(client)).text == "echo: hi"
    assert fake.connections_opened == 1


async def test_a_pooled_connection_closed_by_ollama_is_not_an_error(fake: FakeOllama) -> None:
    async with OllamaClient(fake.url) as client:
        assert (await run(client, chat_request(prompt="one"))).text == "echo: one"
        drop_idle_connections(fake)
        outcome = await run(client, chat_request(prompt="two"))
    assert outcome.error is None and outcome.text == "echo: two"
    assert fake.connections_opened == 2
    assert [request.body["messages"][0]["content"] for request in fake.requests] == ["one", "two"]


async def test_a_new_connection_closed_unanswered_is_not_retried() -> None:
    async with raw_server([CLOSE]) as server, OllamaClient(server.url) as client:
        outcome = await run(client)
    assert isinstance(outcome.error, BackendUnreachable)
    assert outcome.error.address == server.url
    assert outcome.error.reason == "Server disconnected without sending a response."
    assert server.connections == 1 and len(server.requests) == 1


async def test_nothing_is_resent_once_an_answer_began() -> None:
    first = chunked_answer(line("ok") + DONE)
    async with raw_server([first], [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", CLOSE]) as server:
        async with OllamaClient(server.url) as client:
            assert (await run(client)).text == "ok"
            outcome = await run(client)
    assert isinstance(outcome.error, UpstreamError)
    assert "closed in the middle of the answer" in str(outcome.error)
    assert len(server.requests) == 2 and server.connections == 1


async def test_a_reused_connection_closed_mid_head_is_not_retried() -> None:
    first = chunked_answer(line("ok") + DONE)
    async with raw_server([first], [b"HTTP/1.1 200 O", CLOSE]) as server, OllamaClient(server.url) as client:
        assert (await run(client)).text == "ok"
        outcome = await run(client)
    assert isinstance(outcome.error, BackendUnreachable)
    assert len(server.requests) == 2 and server.connections == 1


# ---------------------------------------------------------------- closing and cancelling


async def test_closing_the_generator_closes_the_connection(fake: FakeOllama) -> None:
    fake.script(Reply.endless(delay=0.01))
    async with OllamaClient(fake.url) as client:
        chunks = client.stream_chat(chat_request())
        assert (await anext(chunks)).content == "tok "
        closed = time.monotonic()
        await chunks.aclose()
        [request] = fake.requests
        assert await request.wait_closed_async(2)
        assert request.closed_at - closed < 0.5
        assert (await run(client)).text == "echo: hi"
    assert fake.connections_opened == 2, "a stream closed early must not go back to the pool"


async def test_cancelling_the_consumer_closes_the_connection(fake: FakeOllama) -> None:
    fake.script(Reply.endless(delay=0.01))
    first = asyncio.Event()

    async def consume(client: OllamaClient) -> None:
        async for _ in client.stream_chat(chat_request()):
            first.set()

    async with OllamaClient(fake.url) as client:
        task = asyncio.create_task(consume(client))
        await asyncio.wait_for(first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await fake.requests[0].wait_closed_async(2)


async def test_cancelling_before_the_first_byte_closes_the_connection(fake: FakeOllama) -> None:
    fake.script(Reply.hang())
    async with OllamaClient(fake.url) as client:
        task = asyncio.create_task(run(client))
        [request] = await fake.wait_for_requests_async(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await request.wait_closed_async(2)


# ---------------------------------------------------------------- stalls


async def test_a_stall_after_the_first_chunk_is_reported(fake: FakeOllama) -> None:
    fake.script(Reply.stall(["a", "b"], then_silence=5))
    async with OllamaClient(fake.url, stall_timeout=0.3) as client:
        outcome = await run(client)
    assert outcome.text == "ab"
    assert isinstance(outcome.error, UpstreamError) and "nothing arrived for 0.3 s" in str(outcome.error)
    assert await fake.requests[0].wait_closed_async(2)


async def test_loading_the_model_is_not_a_stall(fake: FakeOllama) -> None:
    fake.script(Reply.text(["loaded"], first_byte_delay=0.5))
    async with OllamaClient(fake.url, stall_timeout=0.2) as client:
        assert (await run(client)).text == "loaded"


async def test_steady_tokens_and_a_slow_consumer_are_not_stalls(fake: FakeOllama) -> None:
    fake.script(Reply.text(["t"] * 8, delay=0.1))
    async with OllamaClient(fake.url, stall_timeout=0.3) as client:
        assert (await run(client)).text == "t" * 8  # 0.8 s in all, never 0.3 s of silence
        fake.script(Reply.text(["u"] * 3))
        received = []
        async for chunk in client.stream_chat(chat_request()):
            received.append(chunk.content)
            await asyncio.sleep(0.4)  # busy elsewhere: the bytes wait in the buffer
    assert "".join(received) == "uuu"


# ---------------------------------------------------------------- failures


HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
    "</center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n" + "<!-- padding -->" * 200
)

ERROR_REPLIES: dict[str, tuple[Callable[[], Reply], type[BackendError]]] = {
    "404 model": (lambda: Reply.error(404, "model 'tiny' not found"), ModelNotFound),
    "400 tools": (
        lambda: Reply.error(400, "registry.ollama.ai/library/tiny:latest does not support tools"),
        FeatureNotSupported,
    ),
    "400 think": (lambda: Reply.error(400, '"tiny" does not support thinking'), FeatureNotSupported),
    "500 json": (lambda: Reply.error(500, "model runner has unexpectedly stopped"), UpstreamError),
    "500 plain": (lambda: Reply.plain(500, "Internal Server Error " + "x" * 2000), UpstreamError),
    "502 html": (lambda: Reply.plain(502, HTML_502, "text/html"), UpstreamError),
    "401 empty": (lambda: Reply.plain(401, ""), UpstreamError),
    "401 json": (lambda: Reply.error(401, "unauthorized"), UpstreamError),
    "403 empty": (lambda: Reply.plain(403, ""), UpstreamError),
    "403 text": (lambda: Reply.plain(403, "forbidden by policy"), UpstreamError),
    "404 plain": (lambda: Reply.plain(404, "404 page not found"), UpstreamError),
    "mid-stream error line": (lambda: Reply.mid_stream_error(["a", "b"], "error parsing tool call"), UpstreamError),
    "no done": (lambda: Reply.raw([line("cut"), line(" short")]), UpstreamError),
    "closed mid-stream": (lambda: Reply.raw([line("half")], terminate=False), UpstreamError),
    "not JSON": (lambda: Reply.raw([b"<html>oops</html>\n"]), UpstreamError),
    "last line without newline": (lambda: Reply.raw([line("x"), DONE.rstrip(b"\n")]), type(None)),
}


@pytest.mark.parametrize("case", ERROR_REPLIES)
async def test_each_failure_is_its_backend_error(fake: FakeOllama, case: str) -> None:
    make_reply, expected = ERROR_REPLIES[case]
    fake.script(make_reply(), model="tiny")
    async with OllamaClient(fake.url) as client:
        outcome = await run(client)
    assert type(outcome.error) is expected
    if outcome.error is not None:
        assert str(outcome.error) and "Traceback" not in str(outcome.error)


async def test_http_error_messages(fake: FakeOllama) -> None:
    fake.script(Reply.plain(502, HTML_502, "text/html"), Reply.plain(401, ""), model="tiny")
    async with OllamaClient(fake.url) as client:
        html = (await run(client)).error
        unauthorized = (await run(client)).error
    assert isinstance(html, UpstreamError) and html.status == 502
    assert "HTTP 502 Bad Gateway" in html.message and "nginx/1.25.3" in html.message and "<" not in html.message
    assert isinstance(unauthorized, UpstreamError) and unauthorized.status == 401
    assert unauthorized.message.startswith(f"Ollama at {fake.url} refused the request (401: unauthorized)")


async def test_a_line_over_the_limit(fake: FakeOllama) -> None:
    fake.script(Reply.text(["x" * 5000]))
    async with OllamaClient(fake.url, max_line_bytes=4096) as client:
        outcome = await run(client)
    assert isinstance(outcome.error, UpstreamError) and "4 KiB" in str(outcome.error)


async def test_closed_mid_stream_names_the_cut(fake: FakeOllama) -> None:
    fake.script(Reply.raw([line("half")], terminate=False))
    async with OllamaClient(fake.url) as client:
        outcome = await run(client)
    assert outcome.text == "half"
    assert str(outcome.error) == (
        "the connection to Ollama closed in the middle of the answer "
        "(peer closed connection without sending complete message body (incomplete chunked read))"
    )


async def test_a_redirect_is_reported() -> None:
    answer = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://ollama.example/\r\nContent-Length: 0\r\n\r\n"
    async with raw_server([answer]) as server, OllamaClient(server.url) as client:
        outcome = await run(client)
    assert isinstance(outcome.error, UpstreamError)
    assert "a redirect to https://ollama.example/" in str(outcome.error)


async def test_an_error_body_is_read_at_most_64_kib() -> None:
    head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 10000000\r\n\r\n"
    async with raw_server([head, b"x" * 200_000, 5.0]) as server, OllamaClient(server.url) as client:
        outcome = await asyncio.wait_for(run(client), 3)
    assert isinstance(outcome.error, UpstreamError) and outcome.error.status == 500


async def test_a_refused_connection_names_the_address(closed_port_url: str) -> None:
    async with OllamaClient(closed_port_url) as client:
        outcome = await run(client)
    assert isinstance(outcome.error, BackendUnreachable)
    assert outcome.error.address == closed_port_url
    assert "Connection refused" in outcome.error.reason
    assert str(outcome.error).startswith(f"cannot reach Ollama at {closed_port_url}: ")


async def test_garbage_instead_of_http_is_unreachable() -> None:
    async with raw_server([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"]) as server, OllamaClient(server.url) as client:
        outcome = await run(client)
    assert isinstance(outcome.error, BackendUnreachable)
    assert "illegal status line" in outcome.error.reason
