"""The raw /api/chat path (`ollama.stream`, `ollama.http1`) over real sockets.

Most tests talk to the fake Ollama; the ones that need byte-level control over the
response framing (where a socket read ends, a redirect, Content-Length bodies, a
connection closed at a chosen moment) use `raw_server`, a few lines of asyncio that
send exactly the bytes a test gives. Error cases run through both HTTP paths (this
one and httpx) and must end in the same error, word for word.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import respx

from fake_ollama import FakeOllama, Reply, encode_chunk
from ollama_chatd import http_backend
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
from ollama_chatd.ollama import client as client_module
from ollama_chatd.ollama import stream as stream_module
from ollama_chatd.ollama.client import OllamaClient
from ollama_chatd.ollama.http1 import (
    ChunkedBody,
    LengthBody,
    ProtocolError,
    UntilCloseBody,
    body_of,
    decompressor_for,
    parse_head,
)

# ---------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy configured on the machine would (rightly) keep every request on httpx."""
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


@contextlib.asynccontextmanager
async def fast_client(url: str, **options: Any) -> AsyncIterator[OllamaClient]:
    async with OllamaClient(url, **options) as client:
        assert client._raw is not None, "the raw path should be used for a plain http:// address"
        yield client


@contextlib.asynccontextmanager
async def httpx_client(url: str, **options: Any) -> AsyncIterator[OllamaClient]:
    # A transport of one's own keeps /api/chat on httpx: the reference behaviour.
    async with OllamaClient(url, transport=httpx.AsyncHTTPTransport(), **options) as client:
        assert client._raw is None
        yield client


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


async def on_both_paths(
    url: str, prepare: Callable[[], None], request: ChatRequest | None = None, **options: Any
) -> tuple[Outcome, Outcome]:
    """The same reply through the raw path and through httpx."""
    prepare()
    async with fast_client(url, **options) as client:
        fast = await run(client, request)
    prepare()
    async with httpx_client(url, **options) as client:
        slow = await run(client, request)
    return fast, slow


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


# ---------------------------------------------------------------- which path


async def test_plain_http_uses_the_raw_path_and_the_rest_keeps_httpx(fake: FakeOllama) -> None:
    async with OllamaClient(fake.url) as plain, OllamaClient("https://127.0.0.1:1") as tls:
        assert plain._raw is not None
        assert tls._raw is None
    async with OllamaClient(fake.url, transport=httpx.AsyncHTTPTransport()) as own_transport:
        assert own_transport._raw is None
    async with OllamaClient("http://user:secret@127.0.0.1:1") as credentials:
        assert credentials._raw is None


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
async def test_a_proxy_from_the_environment_keeps_httpx(
    fake: FakeOllama, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "http://proxy.invalid:3128")
    async with OllamaClient(fake.url) as client:
        assert client._raw is None
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with OllamaClient(fake.url) as client:
        assert client._raw is not None


async def test_httpx_patched_by_respx_takes_the_request(fake: FakeOllama) -> None:
    async with OllamaClient(fake.url) as client:
        with respx.mock(base_url=fake.url) as router:
            router.post("/api/chat").respond(200, content=line("mocked") + DONE)
            outcome = await run(client)
        assert outcome.text == "mocked"
        assert not fake.requests, "respx should have answered"
        assert (await run(client)).text == "echo: hi"


# ---------------------------------------------------------------- streaming


async def test_echo_through_the_raw_path(fake: FakeOllama) -> None:
    async with fast_client(fake.url) as client:
        outcome = await run(client, chat_request(prompt="Bonjour 日本 🦙"))
    assert outcome.error is None
    assert outcome.text == "echo: Bonjour 日本 🦙"
    final = outcome.chunks[-1]
    assert final.done and final.done_reason == "stop" and final.usage is not None and final.usage.completion_tokens == 4


async def test_request_headers_and_body(fake: FakeOllama) -> None:
    headers = {"Authorization": "Bearer sk-secret", "X-Extra": "1"}
    async with fast_client(fake.url, headers=headers) as client:
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
    async with fast_client(fake.url) as client:
        outcome = await run(client)
    assert outcome.error is None
    assert outcome.text == "".join(CONTENT)
    assert [chunk.done for chunk in outcome.chunks] == [False] * len(CONTENT) + [True]


async def test_every_byte_its_own_chunk(fake: FakeOllama) -> None:
    fake.script(Reply.raw([STREAM[i : i + 1] for i in range(len(STREAM))]))
    async with fast_client(fake.url) as client:
        outcome = await run(client)
    assert outcome.text == "".join(CONTENT) and outcome.chunks[-1].done


async def test_several_lines_in_one_chunk(fake: FakeOllama) -> None:
    fake.script(Reply.raw([line("a") + line("b") + line("c"), line("d") + DONE]))
    async with fast_client(fake.url) as client:
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
    async with raw_server([answer[:cut], 0.02, answer[cut:]]) as server, fast_client(server.url) as client:
        outcome = await run(client)
    assert outcome.error is None
    assert [chunk.content for chunk in outcome.chunks] == ["one", "two", ""]


async def test_a_content_length_body(fake: FakeOllama) -> None:
    body = line("whole") + DONE
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )
    async with raw_server([answer], [answer]) as server, fast_client(server.url) as client:
        assert (await run(client)).text == "whole"
        assert (await run(client)).text == "whole"
    assert server.connections == 1, "a complete Content-Length answer leaves the connection reusable"


async def test_a_body_that_ends_when_the_server_closes() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nConnection: close\r\n\r\n"
    async with raw_server([answer, line("until"), 0.02, line(" close") + DONE, CLOSE]) as server:
        async with fast_client(server.url) as client:
            outcome = await run(client)
    assert outcome.error is None and outcome.text == "until close"


async def test_a_gzip_body_is_decompressed() -> None:
    compressed = gzip.compress(STREAM)
    answer = chunked_answer(
        *[compressed[i : i + 50] for i in range(0, len(compressed), 50)], headers=b"Content-Encoding: gzip\r\n"
    )
    async with raw_server([answer]) as server, fast_client(server.url) as client:
        outcome = await run(client)
    assert outcome.error is None and outcome.text == "".join(CONTENT)


async def test_lines_after_done_are_not_parsed(fake: FakeOllama) -> None:
    fake.script(Reply.raw([line("x"), DONE, b"garbage\n"]))
    async with fast_client(fake.url) as client:
        outcome = await run(client)
        assert outcome.error is None and len(outcome.chunks) == 2
        assert (await run(client)).text == "echo: hi"
    assert fake.connections_opened == 1


async def test_a_big_answer_arrives_whole(fake: FakeOllama) -> None:
    fake.script(Reply.bulk(20_000, token="é"), Reply.text(["x" * 300_000, "y"]))
    async with fast_client(fake.url) as client:
        bulk = await run(client)
        long_line = await run(client)
    assert bulk.text == "é" * 20_000 and bulk.chunks[-1].done
    assert long_line.text == "x" * 300_000 + "y"


# ---------------------------------------------------------------- keep-alive


async def test_one_connection_serves_turn_after_turn(fake: FakeOllama) -> None:
    async with fast_client(fake.url) as client:
        for prompt in ("one", "two", "three"):
            assert (await run(client, chat_request(prompt=prompt))).text == f"echo: {prompt}"
    assert fake.connections_opened == 1


async def test_concurrent_streams_each_get_a_connection_then_share_them(fake: FakeOllama) -> None:
    fake.script(*[Reply.text(["slow"], first_byte_delay=0.1) for _ in range(3)])
    async with fast_client(fake.url) as client:
        outcomes = await asyncio.gather(*(run(client) for _ in range(3)))
        assert [outcome.text for outcome in outcomes] == ["slow"] * 3
        assert fake.connections_opened == 3
        await asyncio.gather(*(run(client) for _ in range(3)))
    assert fake.connections_opened == 3


async def test_an_error_answer_read_whole_keeps_the_connection(fake: FakeOllama) -> None:
    async with fast_client(fake.url) as client:
        assert isinstance((await run(client, chat_request(model="nope"))).error, ModelNotFound)
        assert (await run(client)).text == "echo: hi"
    assert fake.connections_opened == 1


async def test_a_pooled_connection_closed_by_ollama_is_retried_once(
    fake: FakeOllama, caplog: pytest.LogCaptureFixture
) -> None:
    async with fast_client(fake.url) as client:
        assert (await run(client, chat_request(prompt="one"))).text == "echo: one"
        drop_idle_connections(fake)
        with caplog.at_level(logging.DEBUG, logger="ollama_chatd.ollama.stream"):
            outcome = await run(client, chat_request(prompt="two"))
    assert outcome.error is None and outcome.text == "echo: two"
    assert "kept-alive connection to Ollama was closed" in caplog.text
    assert fake.connections_opened == 2
    assert [request.body["messages"][0]["content"] for request in fake.requests] == ["one", "two"]


async def test_a_new_connection_closed_unanswered_is_not_retried() -> None:
    async with raw_server([CLOSE]) as server, fast_client(server.url) as client:
        outcome = await run(client)
    assert isinstance(outcome.error, BackendUnreachable)
    assert outcome.error.address == server.url
    assert outcome.error.reason == "Server disconnected without sending a response."
    assert server.connections == 1 and len(server.requests) == 1


async def test_nothing_is_resent_once_an_answer_began() -> None:
    first = chunked_answer(line("ok") + DONE)
    async with raw_server([first], [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", CLOSE]) as server:
        async with fast_client(server.url) as client:
            assert (await run(client)).text == "ok"
            outcome = await run(client)
    assert isinstance(outcome.error, UpstreamError)
    assert "closed in the middle of the answer" in str(outcome.error)
    assert len(server.requests) == 2 and server.connections == 1


async def test_a_reused_connection_closed_mid_head_is_not_retried() -> None:
    first = chunked_answer(line("ok") + DONE)
    async with raw_server([first], [b"HTTP/1.1 200 O", CLOSE]) as server, fast_client(server.url) as client:
        assert (await run(client)).text == "ok"
        outcome = await run(client)
    assert isinstance(outcome.error, BackendUnreachable)
    assert len(server.requests) == 2 and server.connections == 1


# ---------------------------------------------------------------- closing and cancelling


async def test_closing_the_generator_closes_the_connection(fake: FakeOllama) -> None:
    fake.script(Reply.endless(delay=0.01))
    async with fast_client(fake.url) as client:
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

    async with fast_client(fake.url) as client:
        task = asyncio.create_task(consume(client))
        await asyncio.wait_for(first.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await fake.requests[0].wait_closed_async(2)


async def test_cancelling_before_the_first_byte_closes_the_connection(fake: FakeOllama) -> None:
    fake.script(Reply.hang())
    async with fast_client(fake.url) as client:
        task = asyncio.create_task(run(client))
        [request] = await fake.wait_for_requests_async(1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await request.wait_closed_async(2)


# ---------------------------------------------------------------- stalls


async def test_a_stall_after_the_first_chunk_is_reported_like_httpx(fake: FakeOllama) -> None:
    fast, slow = await on_both_paths(
        fake.url, lambda: fake.script(Reply.stall(["a", "b"], then_silence=5)), stall_timeout=0.3
    )
    assert fast.text == "ab"
    assert fast.error_facts == slow.error_facts
    assert isinstance(fast.error, UpstreamError) and "nothing arrived for 0.3 s" in str(fast.error)
    assert await fake.requests[0].wait_closed_async(2)


async def test_loading_the_model_is_not_a_stall(fake: FakeOllama) -> None:
    fake.script(Reply.text(["loaded"], first_byte_delay=0.5))
    async with fast_client(fake.url, stall_timeout=0.2) as client:
        assert (await run(client)).text == "loaded"


async def test_steady_tokens_and_a_slow_consumer_are_not_stalls(fake: FakeOllama) -> None:
    fake.script(Reply.text(["t"] * 8, delay=0.1))
    async with fast_client(fake.url, stall_timeout=0.3) as client:
        assert (await run(client)).text == "t" * 8  # 0.8 s in all, never 0.3 s of silence
        fake.script(Reply.text(["u"] * 3))
        received = []
        async for chunk in client.stream_chat(chat_request()):
            received.append(chunk.content)
            await asyncio.sleep(0.4)  # busy elsewhere: the bytes wait in the buffer
    assert "".join(received) == "uuu"


# ---------------------------------------------------------------- failures, compared with httpx


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
async def test_same_outcome_as_httpx(fake: FakeOllama, case: str) -> None:
    make_reply, expected = ERROR_REPLIES[case]
    fast, slow = await on_both_paths(fake.url, lambda: fake.script(make_reply(), model="tiny"))
    assert type(fast.error) is expected
    assert fast.error_facts == slow.error_facts
    assert [c.content for c in fast.chunks] == [c.content for c in slow.chunks]


async def test_http_error_messages(fake: FakeOllama) -> None:
    fake.script(Reply.plain(502, HTML_502, "text/html"), Reply.plain(401, ""), model="tiny")
    async with fast_client(fake.url) as client:
        html = (await run(client)).error
        unauthorized = (await run(client)).error
    assert isinstance(html, UpstreamError) and html.status == 502
    assert "HTTP 502 Bad Gateway" in html.message and "nginx/1.25.3" in html.message and "<" not in html.message
    assert isinstance(unauthorized, UpstreamError) and unauthorized.status == 401
    assert unauthorized.message.startswith(f"Ollama at {fake.url} refused the request (401: unauthorized)")


async def test_a_line_over_the_limit_like_httpx(fake: FakeOllama) -> None:
    fast, slow = await on_both_paths(fake.url, lambda: fake.script(Reply.text(["x" * 5000])), max_line_bytes=4096)
    assert fast.error_facts == slow.error_facts
    assert "4 KiB" in str(fast.error)


async def test_closed_mid_stream_names_the_cut(fake: FakeOllama) -> None:
    fake.script(Reply.raw([line("half")], terminate=False))
    async with fast_client(fake.url) as client:
        outcome = await run(client)
    assert outcome.text == "half"
    assert str(outcome.error) == (
        "the connection to Ollama closed in the middle of the answer "
        "(peer closed connection without sending complete message body (incomplete chunked read))"
    )


async def test_a_redirect_is_reported_like_httpx() -> None:
    answer = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://ollama.example/\r\nContent-Length: 0\r\n\r\n"
    async with raw_server([answer], [answer]) as server:
        fast, slow = await on_both_paths(server.url, lambda: None)
    assert fast.error_facts == slow.error_facts
    assert "a redirect to https://ollama.example/" in str(fast.error)


async def test_an_error_body_is_read_at_most_64_kib() -> None:
    head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 10000000\r\n\r\n"
    async with raw_server([head, b"x" * 200_000, 5.0]) as server, fast_client(server.url) as client:
        outcome = await asyncio.wait_for(run(client), 3)
    assert isinstance(outcome.error, UpstreamError) and outcome.error.status == 500


async def test_a_refused_connection_names_the_address(closed_port_url: str) -> None:
    async with fast_client(closed_port_url) as client:
        outcome = await run(client)
    assert isinstance(outcome.error, BackendUnreachable)
    assert outcome.error.address == closed_port_url
    assert "Connection refused" in outcome.error.reason
    assert str(outcome.error).startswith(f"cannot reach Ollama at {closed_port_url}: ")


async def test_garbage_instead_of_http_is_unreachable() -> None:
    async with raw_server([b"SSH-2.0-OpenSSH_9.6\r\n\r\n"]) as server, fast_client(server.url) as client:
        outcome = await run(client)
    assert isinstance(outcome.error, BackendUnreachable)
    assert "illegal status line" in outcome.error.reason


def test_constants_shared_with_the_httpx_path() -> None:
    assert client_module.FAIR_SHARE_S == 0.0002 and stream_module.CONNECT_TIMEOUT_S == http_backend.CONNECT_TIMEOUT_S == 10.0


# ---------------------------------------------------------------- http1, without sockets


def chunked(*payloads: bytes) -> bytes:
    return b"".join(encode_chunk(p) for p in payloads) + b"0\r\n\r\n"


SMALL = chunked(b'{"a":"\xc3\xa9"}\n', b"b\n", b"\xf0\x9f", b"\xa6\x99\n")


def decode_in_pieces(encoded: bytes, cuts: tuple[int, ...]) -> tuple[bytes, ChunkedBody]:
    body = ChunkedBody()
    bounds = [0, *cuts, len(encoded)]
    payload = b"".join(body.feed(encoded[a:b]) for a, b in itertools.pairwise(bounds))
    return payload, body


def test_chunked_decoding_cut_at_every_pair_of_offsets() -> None:
    expected = b'{"a":"\xc3\xa9"}\nb\n\xf0\x9f\xa6\x99\n'
    for cuts in itertools.combinations(range(1, len(SMALL)), 2):
        payload, body = decode_in_pieces(SMALL, cuts)
        assert payload == expected, cuts
        assert body.complete and body.extra == 0, cuts


def test_chunked_extensions_trailers_and_extra_bytes() -> None:
    body = ChunkedBody()
    assert body.feed(b"3;name=value\r\nabc\r\n0\r\nExpires: never\r\n\r\nEXTRA") == b"abc"
    assert body.complete and body.extra == 5
    assert body.end_of_input() is None


@pytest.mark.parametrize("bad", [b"zz\r\nabc\r\n", b"-3\r\nabc\r\n", b"3\r\nabcXY", b"1" * 5000])
def test_chunked_framing_errors(bad: bytes) -> None:
    with pytest.raises(ProtocolError):
        ChunkedBody().feed(bad)


def test_incomplete_bodies_say_why() -> None:
    chunked_body = ChunkedBody()
    chunked_body.feed(b"5\r\nab")
    assert "incomplete chunked read" in (chunked_body.end_of_input() or "")
    length_body = LengthBody(10)
    assert length_body.feed(b"abc") == b"abc"
    assert "received 3 bytes, expected 10" in (length_body.end_of_input() or "")
    assert LengthBody(2).feed(b"abcd") == b"ab"
    until_close = UntilCloseBody()
    assert until_close.feed(b"x") == b"x" and until_close.end_of_input() is None and until_close.complete


def test_head_parsing_and_framing() -> None:
    head = parse_head(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nX-A: 1\r\nx-a: 2\r\nTransfer-Encoding: chunked"
    )
    assert (head.status, head.reason, head.headers["x-a"]) == (200, "OK", "1, 2")
    assert head.keep_alive and isinstance(body_of(head), ChunkedBody)
    closing = parse_head(b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 7")
    assert not closing.keep_alive and isinstance(body_of(closing), LengthBody)
    assert not parse_head(b"HTTP/1.0 200 OK").keep_alive
    assert isinstance(body_of(parse_head(b"HTTP/1.1 200 OK")), UntilCloseBody)
    assert body_of(parse_head(b"HTTP/1.1 204 No Content")).complete
    assert parse_head(b"HTTP/1.1 100 Continue").informational
    for bad in (b"SSH-2.0", b"HTTP/1.1 2000 OK", b"HTTP/1.1 200 OK\r\nno colon", b"HTTP/1.1 200 OK\r\n X: y"):
        with pytest.raises(ProtocolError):
            parse_head(bad)
    for bad in (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip"):
        with pytest.raises(ProtocolError):
            body_of(parse_head(bad))


def test_decompression() -> None:
    data = b"hello " * 1000
    decompressor = decompressor_for("gzip")
    assert decompressor is not None
    compressed = gzip.compress(data)
    assert b"".join(decompressor.decode(compressed[i : i + 7]) for i in range(0, len(compressed), 7)) == data
    assert decompressor_for("identity") is None and decompressor_for("") is None
