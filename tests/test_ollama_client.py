"""The Ollama HTTP client: streaming, chunk boundaries, error mapping, request JSON, side endpoints.

HTTP is faked with respx; streamed bodies come from `ChunkStream`, which hands out
exactly the byte chunks a test chooses (as a network would) and records closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import httpx
import pytest
import respx

from http_fakes import ChunkStream
from ollama_chatd.llm import (
    BackendUnreachable,
    ChatBackend,
    ChatChunk,
    ChatRequest,
    Message,
    ModelNotFound,
    ToolCall,
    ToolSpec,
    UpstreamError,
    Usage,
)
from ollama_chatd.ollama import client as ollama_client_module
from ollama_chatd.ollama.client import OllamaClient
from ollama_chatd.ollama.ndjson import DEFAULT_MAX_LINE_BYTES, LineSplitter, LineTooLong
from ollama_chatd.ollama.wire import ModelDetails, ModelSummary, chat_payload, parse_chat_line

BASE = "http://ollama.test:11434"
MODEL = "llama3.2"


# ---------------------------------------------------------------- fakes and helpers


def ndjson_line(obj: dict[str, Any]) -> bytes:
    # Like Go's json.Marshal: UTF-8 as is, but <, > and & escaped.
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.encode() + b"\n"


def content_line(content: str, **message: Any) -> bytes:
    return ndjson_line(
        {
            "model": MODEL,
            "created_at": "2025-07-07T20:22:19.184789Z",
            "message": {"role": "assistant", "content": content, **message},
            "done": False,
        }
    )


def done_line(done_reason: str | None = "stop", **extra: Any) -> bytes:
    body: dict[str, Any] = {
        "model": MODEL,
        "created_at": "2025-07-07T20:22:21.184789Z",
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "total_duration": 4883583458,
        "load_duration": 1334875,
        "prompt_eval_count": 26,
        "prompt_eval_duration": 342546000,
        "eval_count": 282,
        "eval_duration": 4535599000,
    }
    if done_reason is not None:
        body["done_reason"] = done_reason
    body.update(extra)
    return ndjson_line(body)


THINKING = ["Let me", " think… é"]
CONTENTS = ["Bonjour ", "é", "", "日本語", " 🎉👍🏽", " <b>&</b>\n", "fin."]
STREAM = b"".join(
    [content_line("", thinking=piece) for piece in THINKING]
    + [content_line(piece) for piece in CONTENTS]
    + [done_line("stop")]
)
EXPECTED_CONTENT = "".join(CONTENTS)
EXPECTED_THINKING = "".join(THINKING)
EXPECTED_USAGE = Usage(prompt_tokens=26, completion_tokens=282, total_duration_ns=4883583458)
LINE_COUNT = STREAM.count(b"\n")


def chat_request(**overrides: Any) -> ChatRequest:
    fields: dict[str, Any] = {"model": MODEL, "messages": (Message("user", "Why is the sky blue?"),)}
    fields.update(overrides)
    return ChatRequest(**fields)


def split_at(data: bytes, offsets: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(offsets), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


def every(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.fixture
def mock() -> Iterable[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client(mock: respx.MockRouter) -> AsyncIterator[OllamaClient]:
    # Routed straight to respx: same behaviour, but no TLS context to build per test
    # (that costs ~20 ms, times the ~1500 chunk-boundary cases). Tests that build
    # their own OllamaClient go through httpx's real transport, patched by respx.
    async with OllamaClient(BASE, transport=httpx.MockTransport(mock.async_handler)) as ollama:
        yield ollama


def serve_chat(mock: respx.MockRouter, stream: ChunkStream, status: int = 200) -> respx.Route:
    response = httpx.Response(status, headers={"Content-Type": "application/x-ndjson"}, stream=stream)
    return mock.post("/api/chat").mock(return_value=response)


async def collect(client: OllamaClient, request: ChatRequest | None = None) -> list[ChatChunk]:
    return [chunk async for chunk in client.stream_chat(request or chat_request())]


def assert_full_answer(chunks: list[ChatChunk]) -> None:
    assert "".join(c.content for c in chunks) == EXPECTED_CONTENT
    assert "".join(c.thinking for c in chunks) == EXPECTED_THINKING
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].done_reason == "stop"
    assert chunks[-1].usage == EXPECTED_USAGE
    assert all(c.usage is None for c in chunks[:-1])


# ---------------------------------------------------------------- chunk boundaries


@pytest.mark.parametrize("offset", range(len(STREAM) + 1))
async def test_split_at_every_byte_offset(mock: respx.MockRouter, client: OllamaClient, offset: int) -> None:
    serve_chat(mock, ChunkStream(split_at(STREAM, [offset])))
    chunks = await collect(client)
    assert_full_answer(chunks)
    assert len(chunks) == LINE_COUNT


def _inside_multibyte_characters(data: bytes) -> list[int]:
    """Offsets that fall between the bytes of one UTF-8 character."""
    return [i for i in range(1, len(data)) if data[i] & 0b1100_0000 == 0b1000_0000]


MULTI_SPLITS = {
    "one-byte-chunks": every(STREAM, 1),
    "two-byte-chunks": every(STREAM, 2),
    "three-byte-chunks": every(STREAM, 3),
    "seven-byte-chunks": every(STREAM, 7),
    "inside-every-multibyte-char": split_at(STREAM, _inside_multibyte_characters(STREAM)),
    "around-every-newline": split_at(
        STREAM, sorted({j for i, b in enumerate(STREAM) if b == 0x0A for j in (i, i + 1) if 0 < j < len(STREAM)})
    ),
    "empty-chunks-mixed-in": [piece for part in every(STREAM, 50) for piece in (b"", part, b"")],
}


@pytest.mark.parametrize("chunks", MULTI_SPLITS.values(), ids=MULTI_SPLITS.keys())
async def test_multi_splits(mock: respx.MockRouter, client: OllamaClient, chunks: list[bytes]) -> None:
    assert b"".join(chunks) == STREAM
    serve_chat(mock, ChunkStream(chunks))
    result = await collect(client)
    assert_full_answer(result)
    # Byte-exact: re-encoding the concatenation gives the same bytes as the source.
    assert "".join(c.content for c in result).encode() == "".join(CONTENTS).encode()


async def test_whole_stream_in_one_chunk(mock: respx.MockRouter, client: OllamaClient) -> None:
    serve_chat(mock, ChunkStream([STREAM]))
    chunks = await collect(client)
    assert len(chunks) == LINE_COUNT
    assert_full_answer(chunks)


async def test_several_lines_per_chunk_with_a_split_line(mock: respx.MockRouter, client: OllamaClient) -> None:
    first, second, third = content_line("a"), content_line("b"), content_line("c")
    body = [first + second + third[:10], third[10:] + done_line()]
    serve_chat(mock, ChunkStream(body))
    chunks = await collect(client)
    assert [c.content for c in chunks] == ["a", "b", "c", ""]


async def test_empty_content_chunks_do_not_end_the_stream(mock: respx.MockRouter, client: OllamaClient) -> None:
    body = [content_line(""), content_line(""), content_line("after"), content_line(""), done_line()]
    serve_chat(mock, ChunkStream(body))
    chunks = await collect(client)
    assert [c.content for c in chunks] == ["", "", "after", "", ""]
    assert chunks[-1].done


async def test_thinking_chunks(mock: respx.MockRouter, client: OllamaClient) -> None:
    body = [content_line("", thinking="Let me"), content_line("", thinking=" see"), content_line("42"), done_line()]
    serve_chat(mock, ChunkStream(body))
    chunks = await collect(client)
    assert [(c.thinking, c.content) for c in chunks] == [("Let me", ""), (" see", ""), ("", "42"), ("", "")]


async def test_blank_lines_are_ignored(mock: respx.MockRouter, client: OllamaClient) -> None:
    serve_chat(mock, ChunkStream([b"\n", content_line("x"), b"\r\n  \n", done_line()]))
    chunks = await collect(client)
    assert [c.content for c in chunks] == ["x", ""]


async def test_last_line_without_newline_is_still_read(mock: respx.MockRouter, client: OllamaClient) -> None:
    serve_chat(mock, ChunkStream([content_line("x"), done_line().rstrip(b"\n")]))
    chunks = await collect(client)
    assert chunks[-1].done and chunks[-1].usage == EXPECTED_USAGE


# ---------------------------------------------------------------- tool calls


def tool_call_json(name: str, arguments: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"function": {"index": 0, "name": name, "arguments": arguments}}
    if call_id is not None:
        call["id"] = call_id
    return call


async def test_tool_call_in_a_middle_chunk(mock: respx.MockRouter, client: OllamaClient) -> None:
    call = tool_call_json("get_weather", {"city": "Tokyo"}, "call_k3l9x2ab")
    body = [content_line("Checking."), content_line("", tool_calls=[call]), content_line(" ok"), done_line()]
    serve_chat(mock, ChunkStream(body))
    chunks = await collect(client)
    assert chunks[1].tool_calls == (ToolCall("get_weather", {"city": "Tokyo"}, id="call_k3l9x2ab"),)
    assert [c.tool_calls for c in chunks if c is not chunks[1]] == [(), (), ()]


async def test_tool_calls_in_the_final_chunk(mock: respx.MockRouter, client: OllamaClient) -> None:
    calls = [
        tool_call_json("read_file", {"path": "src/é.py", "lines": [1, 2]}),
        tool_call_json("search", {"query": "日本", "options": {"regex": False}}, "call_2"),
    ]
    final = done_line(message={"role": "assistant", "content": "", "tool_calls": calls})
    serve_chat(mock, ChunkStream([content_line("Let me look."), final]))
    chunks = await collect(client)
    assert chunks[-1].done
    assert chunks[-1].tool_calls == (
        ToolCall("read_file", {"path": "src/é.py", "lines": [1, 2]}, id=None),
        ToolCall("search", {"query": "日本", "options": {"regex": False}}, id="call_2"),
    )


def test_tool_call_with_string_arguments_is_decoded() -> None:
    # Not native Ollama, but an OpenAI-minded proxy could send it.
    line = content_line("", tool_calls=[{"function": {"name": "f", "arguments": '{"a": 1}'}}])
    assert parse_chat_line(line).tool_calls == (ToolCall("f", {"a": 1}),)


def test_tool_call_with_non_object_arguments_is_an_error() -> None:
    line = content_line("", tool_calls=[{"function": {"name": "f", "arguments": [1, 2]}}])
    with pytest.raises(UpstreamError, match="not a JSON object"):
        parse_chat_line(line)


# ---------------------------------------------------------------- parse_chat_line


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("stop", "stop"), ("length", "length"), ("load", "other"), ("unload", "other"), (None, "other")],
)
def test_done_reason_mapping(reason: str | None, expected: str) -> None:
    assert parse_chat_line(done_line(reason)).done_reason == expected


def test_usage_counters_omitted_when_zero() -> None:
    line = ndjson_line({"model": MODEL, "message": {"role": "assistant", "content": ""}, "done": True})
    assert parse_chat_line(line).usage == Usage(0, 0, 0)


def test_invalid_json_line() -> None:
    with pytest.raises(UpstreamError, match="Ollama sent a line that is not JSON: '<html>oops") as caught:
        parse_chat_line(b"<html>oops</html>")
    assert caught.value.status is None


@pytest.mark.parametrize(
    "line",
    [b'  {"message":{"content":"x"}}', b'{"message":{"content":"x"}}\r', b'{"message": {"content": "x"}} \t'],
    ids=["leading-space", "trailing-cr", "trailing-space"],
)
def test_whitespace_around_a_line_is_fine(line: bytes) -> None:
    assert parse_chat_line(line).content == "x"


@pytest.mark.parametrize(
    "line",
    [b'{"done":false} {"done":true}', b'{"done":false}x', b"\xff\xfe{}", b'{"message":{"content":"\xc3"}}', b"{"],
    ids=["two-objects", "trailing-garbage", "not-utf8", "truncated-utf8", "truncated-json"],
)
def test_malformed_lines_are_not_json(line: bytes) -> None:
    with pytest.raises(UpstreamError, match="not JSON"):
        parse_chat_line(line)


def test_json_line_of_wrong_shape() -> None:
    with pytest.raises(UpstreamError, match="not a JSON object"):
        parse_chat_line(b"[1, 2]")
    with pytest.raises(UpstreamError, match="unexpected shape"):
        parse_chat_line(b'{"message": "hello", "done": false}')


def test_error_line() -> None:
    with pytest.raises(UpstreamError) as caught:
        parse_chat_line(b'{"error":"llama-server response: bufio.Scanner: token too long"}')
    assert caught.value.message == "llama-server response: bufio.Scanner: token too long"
    assert caught.value.status is None


# ---------------------------------------------------------------- errors inside a 200 stream


async def test_mid_stream_error_line_after_chunks(mock: respx.MockRouter, client: OllamaClient) -> None:
    error = ndjson_line({"error": "error parsing tool call: raw='{\"a\"'"})
    stream = ChunkStream([content_line("one"), content_line(" two"), error])
    serve_chat(mock, stream)
    received: list[ChatChunk] = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in client.stream_chat(chat_request()):
            received.append(chunk)
    assert [c.content for c in received] == ["one", " two"]
    assert caught.value.message == "error parsing tool call: raw='{\"a\"'"
    assert caught.value.status is None
    assert stream.closed


async def test_stream_without_done_chunk(mock: respx.MockRouter, client: OllamaClient) -> None:
    serve_chat(mock, ChunkStream([content_line("cut"), content_line(" short")]))
    received: list[ChatChunk] = []
    with pytest.raises(UpstreamError, match="without its final chunk") as caught:
        async for chunk in client.stream_chat(chat_request()):
            received.append(chunk)
    assert [c.content for c in received] == ["cut", " short"]
    assert caught.value.status is None


@pytest.mark.parametrize(
    "failure",
    [
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("Connection reset by peer"),
    ],
)
async def test_connection_dropped_mid_stream(
    mock: respx.MockRouter, client: OllamaClient, failure: httpx.TransportError
) -> None:
    serve_chat(mock, ChunkStream([content_line("half")], then_raise=failure))
    received: list[ChatChunk] = []
    with pytest.raises(UpstreamError, match="closed in the middle of the answer") as caught:
        async for chunk in client.stream_chat(chat_request()):
            received.append(chunk)
    assert [c.content for c in received] == ["half"]
    assert str(failure) in str(caught.value)


async def test_connection_dropped_after_done_is_not_an_error(mock: respx.MockRouter, client: OllamaClient) -> None:
    failure = httpx.RemoteProtocolError("peer closed connection")
    serve_chat(mock, ChunkStream([content_line("x"), done_line()], then_raise=failure))
    chunks = await collect(client)
    assert chunks[-1].done


async def test_line_longer_than_limit(mock: respx.MockRouter) -> None:
    serve_chat(mock, ChunkStream([content_line("x" * 5000), done_line()]))
    async with OllamaClient(BASE, max_line_bytes=4096) as small:
        with pytest.raises(UpstreamError, match="4 KiB"):
            await collect(small)


async def test_lines_after_done_are_drained_not_parsed(mock: respx.MockRouter, client: OllamaClient) -> None:
    stream = ChunkStream([content_line("x"), done_line(), b"garbage\n"])
    serve_chat(mock, stream)
    chunks = await collect(client)
    assert chunks[-1].done and len(chunks) == 2
    assert stream.sent == 3 and stream.closed


async def test_lingering_server_after_done_does_not_hold_the_caller(
    mock: respx.MockRouter, client: OllamaClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ollama_client_module, "DRAIN_TIMEOUT_S", 0.05)
    stream = ChunkStream([content_line("x"), done_line()], hang=True)
    serve_chat(mock, stream)
    chunks = await asyncio.wait_for(collect(client), 5)
    assert chunks[-1].done
    assert stream.closed


async def test_gzip_encoded_body_is_decoded(mock: respx.MockRouter, client: OllamaClient) -> None:
    # We ask for identity, but a proxy might compress anyway.
    body = gzip.compress(STREAM)
    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=ChunkStream(every(body, 13)))
    mock.post("/api/chat").mock(return_value=response)
    assert_full_answer(await collect(client))


# ---------------------------------------------------------------- HTTP status errors


async def test_404_is_model_not_found(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.post("/api/chat").respond(404, json={"error": "model 'nope' not found"})
    with pytest.raises(ModelNotFound) as caught:
        await collect(client, chat_request(model="nope"))
    assert caught.value.model == "nope"
    assert str(caught.value) == "model 'nope' not found"


async def test_plain_404_means_not_an_ollama_url(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.post("/api/chat").respond(404, text="404 page not found")
    with pytest.raises(UpstreamError) as caught:
        await collect(client)
    assert not isinstance(caught.value, ModelNotFound)
    assert caught.value.status == 404
    assert "not JSON" in caught.value.message and "404 page not found" in caught.value.message


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, "registry.ollama.ai/library/gemma:latest does not support tools"),
        (400, 'invalid think value: "x" (must be "high", "medium", "low", "max", true, or false)'),
        (500, "model runner has unexpectedly stopped, this may be due to resource limitations"),
        (503, "server busy, please try again.  maximum pending requests exceeded"),
        (429, "rate limit exceeded"),
    ],
)
async def test_json_http_errors(mock: respx.MockRouter, client: OllamaClient, status: int, error: str) -> None:
    mock.post("/api/chat").respond(status, json={"error": error})
    with pytest.raises(UpstreamError) as caught:
        await collect(client)
    assert caught.value.status == status
    assert caught.value.message == error


async def test_openai_style_error_object(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.post("/api/chat").respond(400, json={"error": {"message": "bad thing", "type": "invalid_request_error"}})
    with pytest.raises(UpstreamError, match=r"^bad thing$"):
        await collect(client)


async def test_html_proxy_error_page(mock: respx.MockRouter, client: OllamaClient) -> None:
    page = (
        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1>"
        "</center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n" + "<!-- padding -->" * 200
    )
    mock.post("/api/chat").respond(502, text=page, headers={"Content-Type": "text/html"})
    with pytest.raises(UpstreamError) as caught:
        await collect(client)
    message = caught.value.message
    assert caught.value.status == 502
    assert "HTTP 502" in message and "not JSON" in message
    assert "502 Bad Gateway" in message and "nginx/1.25.3" in message and "<" not in message
    assert len(message) < 800


async def test_plain_text_500(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.post("/api/chat").respond(500, text="Internal Server Error " + "x" * 2000)
    with pytest.raises(UpstreamError) as caught:
        await collect(client)
    assert caught.value.status == 500
    assert "not JSON" in caught.value.message and "Internal Server Error" in caught.value.message
    assert len(caught.value.message) < 800


async def test_empty_403(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.post("/api/chat").respond(403)
    with pytest.raises(UpstreamError, match="HTTP 403 Forbidden with an empty body") as caught:
        await collect(client)
    assert caught.value.status == 403


async def test_redirect_is_reported_not_followed(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.post("/api/chat").respond(301, headers={"Location": "https://ollama.test/"})
    with pytest.raises(UpstreamError, match=re.escape("redirect to https://ollama.test/")) as caught:
        await collect(client)
    assert caught.value.status == 301


# ---------------------------------------------------------------- unreachable


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), "Connection refused"),
        (httpx.ConnectTimeout(""), "no connection within 10 s"),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), "Server disconnected"),
    ],
)
async def test_unreachable(mock: respx.MockRouter, client: OllamaClient, failure: Exception, reason: str) -> None:
    mock.post("/api/chat").mock(side_effect=failure)
    with pytest.raises(BackendUnreachable) as caught:
        await collect(client)
    assert caught.value.address == BASE
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"cannot reach Ollama at {BASE}: ")


async def test_unreachable_for_side_endpoints(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.get("/api/version").mock(side_effect=httpx.ConnectError("All connection attempts failed"))
    with pytest.raises(BackendUnreachable, match="All connection attempts failed"):
        await client.version()


# ---------------------------------------------------------------- closing and cancelling


async def test_closing_the_generator_closes_the_response(mock: respx.MockRouter, client: OllamaClient) -> None:
    stream = ChunkStream([content_line("first"), content_line("second")], hang=True)
    serve_chat(mock, stream)
    chunks = client.stream_chat(chat_request())
    assert (await anext(chunks)).content == "first"
    assert not stream.closed
    await chunks.aclose()
    assert stream.closed


async def test_breaking_out_inside_aclosing_closes_the_response(mock: respx.MockRouter, client: OllamaClient) -> None:
    stream = ChunkStream([content_line("first")], hang=True)
    serve_chat(mock, stream)
    async with contextlib.aclosing(client.stream_chat(chat_request())) as chunks:
        async for _ in chunks:
            break
    assert stream.closed


async def test_cancelling_the_consumer_closes_the_response(mock: respx.MockRouter, client: OllamaClient) -> None:
    stream = ChunkStream([content_line("first")], hang=True)
    serve_chat(mock, stream)
    first_arrived = asyncio.Event()

    async def consume() -> None:
        async for _ in client.stream_chat(chat_request()):
            first_arrived.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_arrived.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert stream.closed


async def test_cancelling_while_waiting_for_headers_propagates() -> None:
    started = asyncio.Event()

    class SilentTransport(httpx.AsyncBaseTransport):
        """Ollama loading a model: the request is accepted, nothing comes back."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            started.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    async with OllamaClient(BASE, transport=SilentTransport()) as ollama:
        task = asyncio.create_task(collect(ollama))
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# ---------------------------------------------------------------- request


def full_request() -> ChatRequest:
    return ChatRequest(
        model=MODEL,
        messages=(
            Message("system", "You are terse."),
            Message("user", "Weather in Tokyo? See é 日本", images=("aGVsbG8=",)),
            Message(
                "assistant",
                "",
                thinking="Need the tool.",
                tool_calls=(ToolCall("get_weather", {"city": "Tokyo"}, id="call_1"), ToolCall("noop", {})),
            ),
            Message("tool", '{"temp": 21}', tool_name="get_weather", tool_call_id="call_1"),
        ),
        tools=(
            ToolSpec(
                "get_weather",
                "Current weather for a city",
                {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            ),
        ),
        think="high",
        options={"temperature": 0.2, "num_ctx": 8192},
    )


async def test_request_json_with_everything(mock: respx.MockRouter, client: OllamaClient) -> None:
    route = serve_chat(mock, ChunkStream([done_line()]))
    await collect(client, full_request())
    sent = json.loads(route.calls.last.request.content)
    assert sent == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Weather in Tokyo? See é 日本", "images": ["aGVsbG8="]},
            {
                "role": "assistant",
                "content": "",
                "thinking": "Need the tool.",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}, "id": "call_1"},
                    {"function": {"name": "noop", "arguments": {}}},
                ],
            },
            {"role": "tool", "content": '{"temp": 21}', "tool_name": "get_weather", "tool_call_id": "call_1"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ],
        "think": "high",
        "options": {"temperature": 0.2, "num_ctx": 8192},
        "stream": True,
    }


async def test_request_json_minimal(mock: respx.MockRouter, client: OllamaClient) -> None:
    route = serve_chat(mock, ChunkStream([done_line()]))
    await collect(client)
    request = route.calls.last.request
    assert json.loads(request.content) == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Why is the sky blue?"}],
        "stream": True,
    }
    assert request.url == f"{BASE}/api/chat"
    assert request.headers["accept"] == "application/x-ndjson"
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("ollama-chatd/")


@pytest.mark.parametrize("think", [False, True, "low"])
def test_think_sent_whenever_not_none(think: bool | str) -> None:
    assert chat_payload(chat_request(think=think))["think"] == think


def test_empty_options_and_tools_are_left_out() -> None:
    payload = chat_payload(chat_request(options={}, tools=()))
    assert "options" not in payload and "tools" not in payload and "think" not in payload


async def test_custom_headers_and_path_prefix(mock: respx.MockRouter) -> None:
    route = mock.post("/ollama/api/chat").mock(return_value=httpx.Response(200, stream=ChunkStream([done_line()])))
    headers = {"Authorization": "Bearer secret-token", "X-Extra": "1"}
    async with OllamaClient(f"{BASE}/ollama/", headers=headers) as ollama:
        await collect(ollama)
        assert "secret-token" not in repr(ollama)
    sent = route.calls.last.request.headers
    assert sent["authorization"] == "Bearer secret-token" and sent["x-extra"] == "1"


async def test_one_connection_pool_for_life(mock: respx.MockRouter, client: OllamaClient) -> None:
    serve_chat(mock, ChunkStream([done_line()]))
    http_client = client._http
    await collect(client)
    mock.get("/api/version").respond(json={"version": "0.12.10"})
    await client.version()
    assert client._http is http_client
    timeout = http_client.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (10.0, None, 30.0, None)


def test_client_satisfies_the_backend_protocol() -> None:
    backend: ChatBackend = OllamaClient(BASE)
    assert callable(backend.stream_chat)


# ---------------------------------------------------------------- side endpoints


TAGS_BODY = {
    "models": [
        {
            "name": "llama3.2:latest",
            "model": "llama3.2:latest",
            "modified_at": "2025-07-07T20:22:19.184789Z",
            "size": 2019393189,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": "llama",
                "families": ["llama"],
                "parameter_size": "3.2B",
                "quantization_level": "Q4_K_M",
            },
            "capabilities": ["completion", "tools"],
        },
        {"name": "bare:latest", "model": "bare:latest", "size": 1},
    ]
}

SHOW_BODY = {
    "modelfile": '# Modelfile generated by "ollama show"\nFROM llama3.2\n',
    "parameters": 'stop "<|eot_id|>"',
    "template": "{{ .Prompt }}",
    "details": {"parent_model": "", "format": "gguf", "family": "llama", "parameter_size": "3.2B"},
    "model_info": {
        "general.architecture": "llama",
        "general.parameter_count": 3212749888,
        "llama.context_length": 131072,
        "llama.embedding_length": 3072,
    },
    "capabilities": ["completion", "tools"],
    "modified_at": "2025-07-07T20:22:19.184789Z",
}


async def test_list_models(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.get("/api/tags").respond(json=TAGS_BODY)
    assert await client.list_models() == [
        ModelSummary("llama3.2:latest", 2019393189, "llama", "3.2B", "Q4_K_M"),
        ModelSummary("bare:latest", 1, None, None, None),
    ]


async def test_list_models_empty(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.get("/api/tags").respond(json={"models": []})
    assert await client.list_models() == []


async def test_show(mock: respx.MockRouter, client: OllamaClient) -> None:
    route = mock.post("/api/show").respond(json=SHOW_BODY)
    details = await client.show("llama3.2")
    assert (details.capabilities, details.context_length) == (("completion", "tools"), 131072)
    assert json.loads(route.calls.last.request.content) == {"model": "llama3.2"}


async def test_show_old_server_without_capabilities(mock: respx.MockRouter, client: OllamaClient) -> None:
    body = {"modelfile": "", "model_info": {"general.architecture": "qwen2"}}
    mock.post("/api/show").respond(json=body)
    assert await client.show("old") == ModelDetails((), None)


async def test_show_unknown_model(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.post("/api/show").respond(404, json={"error": "model 'ghost' not found"})
    with pytest.raises(ModelNotFound, match="model 'ghost' not found"):
        await client.show("ghost")


async def test_installed_models_combine_tags_and_show(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.get("/api/tags").respond(json={"models": [
        {"name": "llama3.2:latest", "size": 2019393189,
         "details": {"family": "llama", "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}},
        {"name": "old:latest", "size": 1, "details": {}},
    ]})
    mock.post("/api/show", json={"model": "llama3.2:latest"}).respond(json=SHOW_BODY)
    mock.post("/api/show", json={"model": "old:latest"}).respond(500, json={"error": "boom"})
    llama, old = await client.installed_models()
    assert llama.name == "llama3.2:latest" and llama.size_bytes == 2019393189 and llama.family == "llama"
    assert llama.capabilities == frozenset({"completion", "tools"}) and llama.context_length == 131072
    assert old.capabilities is None and old.can("tools")  # unknown, so assumed until Ollama says no


async def test_version(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.get("/api/version").respond(json={"version": "0.12.10"})
    assert await client.version() == "0.12.10"


async def test_version_not_json(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.get("/api/version").respond(200, text="Ollama is running")
    with pytest.raises(UpstreamError, match="/api/version with a body that is not JSON: 'Ollama is running'"):
        await client.version()


async def test_tags_of_unexpected_shape(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.get("/api/tags").respond(json={"models": [{"name": "x", "details": "oops"}]})
    with pytest.raises(UpstreamError, match="unexpected shape"):
        await client.list_models()


async def test_side_endpoint_http_error(mock: respx.MockRouter, client: OllamaClient) -> None:
    mock.get("/api/tags").respond(500, json={"error": "boom"})
    with pytest.raises(UpstreamError) as caught:
        await client.list_models()
    assert (caught.value.message, caught.value.status) == ("boom", 500)


# ---------------------------------------------------------------- LineSplitter directly


def test_splitter_never_returns_partial_lines() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b'{"a":"\xc3') == []
    assert splitter.feed(b'\xa9"}\n{"b"') == [b'{"a":"\xc3\xa9"}']
    assert splitter.feed(b":1}\n\n") == [b'{"b":1}']
    assert splitter.flush() is None


def test_splitter_limit_is_checked_before_the_newline_arrives() -> None:
    splitter = LineSplitter(max_line_bytes=10)
    splitter.feed(b"12345")
    with pytest.raises(LineTooLong, match=r"max_line_bytes=10"):
        splitter.feed(b"678901")


def test_splitter_limit_for_complete_lines() -> None:
    splitter = LineSplitter(max_line_bytes=4)
    assert splitter.feed(b"1234\n") == [b"1234"]
    with pytest.raises(LineTooLong):
        splitter.feed(b"12\n12345\n")


def test_splitter_default_limit_is_8_mib() -> None:
    assert DEFAULT_MAX_LINE_BYTES == 8 * 1024 * 1024
    assert "8 MiB" in str(LineTooLong(DEFAULT_MAX_LINE_BYTES))


def test_splitter_long_line_in_many_pieces() -> None:
    splitter = LineSplitter()
    line = b"x" * 1_000_000
    lines = [out for piece in every(line + b"\n", 1000) for out in splitter.feed(piece)]
    assert lines == [line]


async def test_stream_and_early_close_through_the_default_transport(mock: respx.MockRouter) -> None:
    # No `transport=`: httpx's own connection pool, with respx patched in underneath.
    complete = ChunkStream(every(STREAM, 7))
    serve_chat(mock, complete)
    async with OllamaClient(BASE) as ollama:
        assert_full_answer(await collect(ollama))
        assert complete.closed

        hanging = ChunkStream([content_line("first")], hang=True)
        serve_chat(mock, hanging)
        chunks = ollama.stream_chat(chat_request())
        assert (await anext(chunks)).content == "first"
        await chunks.aclose()
        assert hanging.closed
