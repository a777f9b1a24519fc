"""The OpenAI-compatible backend: request JSON, server-sent events split anywhere, tool-call
fragments, models and context length, and every failure the issue lists.

HTTP is faked with respx; streamed bodies come from `ChunkStream` (the exact byte chunks a
test chooses, as a network would deliver them). The real llama-server runs in
test_openai_llama_server.py.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
import respx

from http_fakes import ChunkStream
from ollama_chatd.engine.engine import ChatEngine, TurnFailed, TurnRequest
from ollama_chatd.events import StatusChange
from ollama_chatd.llm import (
    BackendUnreachable,
    ChatChunk,
    ChatRequest,
    FeatureNotSupported,
    Message,
    ModelNotFound,
    ToolCall,
    ToolSpec,
    UpstreamError,
)
from ollama_chatd.openai.client import OpenAIClient
from ollama_chatd.openai.wire import chat_payload
from ollama_chatd.store import ChatStore
from ollama_chatd.tools.runner import WorkspaceTools
from ollama_chatd.tools.workspace import Folder, Workspace

BASE = "http://llm.test:8080/v1"
MODEL = "smol"
KEY = "sk-secret-1234567890"


def sse(*events: dict[str, Any] | str) -> bytes:
    """The bytes of a stream of `data:` events, as llama-server writes them."""
    return b"".join(
        f"data: {event if isinstance(event, str) else json.dumps(event, ensure_ascii=False)}\n\n".encode()
        for event in events
    )


def delta(**fields: Any) -> dict[str, Any]:
    return {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def finish(reason: str, **extra: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {}, "finish_reason": reason}], **extra}


USAGE = {"choices": [], "usage": {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38}}
ANSWER = "Grüße, wörld 👋!"
STREAM = sse(
    delta(role="assistant", content=""),
    delta(reasoning_content="Let me think"),
    delta(reasoning=" hard."),
    *(delta(content=piece) for piece in ("Grüße", ", wörld", " 👋", "!")),
    finish("stop"),
    USAGE,
    "[DONE]",
)


@pytest.fixture
def mock() -> Iterable[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def client(mock: respx.MockRouter) -> AsyncIterator[OpenAIClient]:
    backend = OpenAIClient(BASE, api_key=KEY, transport=httpx.MockTransport(mock.async_handler), stall_timeout=5)
    yield backend
    await backend.aclose()


def serve_chat(mock: respx.MockRouter, stream: ChunkStream, status: int = 200, **headers: str) -> respx.Route:
    headers = {"content-type": "text/event-stream", **headers}
    return mock.post("/chat/completions").mock(return_value=httpx.Response(status, headers=headers, stream=stream))


def serve_models(mock: respx.MockRouter, *names: str, **extra: Any) -> respx.Route:
    data = [{"id": name, "object": "model", "owned_by": "llamacpp", **extra} for name in names]
    return mock.get("/models").respond(200, json={"object": "list", "data": data})


def chat_request(**fields: Any) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=(Message("user", "hi"),), **fields)


async def collect(client: OpenAIClient, request: ChatRequest | None = None) -> list[ChatChunk]:
    return [chunk async for chunk in client.stream_chat(request or chat_request())]


def byte_splits(data: bytes) -> Iterable[list[bytes]]:
    for cut in range(1, len(data)):
        yield [data[:cut], data[cut:]]


# ---------------------------------------------------------------- the request


async def test_the_request_streams_asks_for_usage_and_carries_the_key(mock, client) -> None:
    route = serve_chat(mock, ChunkStream([STREAM]))
    await collect(client, chat_request(options={"temperature": 0, "num_predict": 12, "num_ctx": 4096, "seed": 7}))
    sent = route.calls.last.request
    body = json.loads(sent.content)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == MODEL
    assert (body["temperature"], body["max_tokens"], body["seed"]) == (0, 12, 7)
    assert "num_ctx" not in body and "num_predict" not in body  # the window is the server's, fixed at its start
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["accept"] == "text/event-stream"


def test_history_with_tool_calls_pairs_results_by_id_and_images_become_data_urls() -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    messages = (
        Message("system", "be brief"),
        Message("user", "look", images=(png,)),
        Message("assistant", "", tool_calls=(ToolCall("read_file", {"path": "a.txt"}, "call_9"),)),
        Message("tool", "hello", tool_name="read_file", tool_call_id="call_9"),
        # a chat begun with Ollama: calls without ids
        Message("assistant", "", tool_calls=(ToolCall("list_directory", {}), ToolCall("read_file", {"path": "b"}))),
        Message("tool", "a.txt", tool_name="list_directory"),
        Message("tool", "bee", tool_name="read_file"),
        Message("assistant", "done", thinking="hmm"),
    )
    tools = (ToolSpec("read_file", "Read a file", {"type": "object", "properties": {}}),)
    body = chat_payload(ChatRequest(MODEL, messages, tools=tools, think="high"))
    sent = body["messages"]
    assert sent[0] == {"role": "system", "content": "be brief"}
    assert sent[1]["content"][1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}
    assert sent[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "read_file", "arguments": '{"path": "a.txt"}'}}
        ],
    }
    assert sent[3] == {"role": "tool", "tool_call_id": "call_9", "content": "hello"}
    given = [call["id"] for call in sent[4]["tool_calls"]]
    assert [sent[5]["tool_call_id"], sent[6]["tool_call_id"]] == given and len(set(given)) == 2
    assert sent[7] == {"role": "assistant", "content": "done"}
    assert body["tools"][0] == {"type": "function", "function": {"name": "read_file", **_described(tools[0])}}
    assert body["reasoning_effort"] == "high"


def _described(tool: ToolSpec) -> dict[str, Any]:
    return {"description": tool.description, "parameters": tool.parameters}


# ---------------------------------------------------------------- streaming


def assert_full_answer(chunks: list[ChatChunk]) -> None:
    assert "".join(c.content for c in chunks) == ANSWER
    assert "".join(c.thinking for c in chunks) == "Let me think hard."
    assert [c.done for c in chunks] == [False] * (len(chunks) - 1) + [True]
    last = chunks[-1]
    assert last.done_reason == "stop"
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (31, 7)
    assert last.usage.total_duration_ns > 0


async def test_a_reply_streams_text_thinking_and_usage(mock, client) -> None:
    serve_chat(mock, ChunkStream([STREAM]))
    assert_full_answer(await collect(client))


async def test_events_split_at_every_byte_give_the_same_reply(mock, client) -> None:
    # Every cut, including inside "data:", inside the blank line between events and
    # inside the multi-byte characters of "ü", "ö" and "👋".
    for pieces in byte_splits(STREAM):
        serve_chat(mock, ChunkStream(pieces))
        assert_full_answer(await collect(client))


async def test_events_one_byte_at_a_time_with_crlf_line_ends(mock, client) -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    serve_chat(mock, ChunkStream([crlf[i : i + 1] for i in range(len(crlf))]))
    assert_full_answer(await collect(client))


@pytest.mark.parametrize(("reason", "done_reason"), [("stop", "stop"), ("length", "length"), ("content_filter", "other")])
async def test_finish_reasons(mock, client, reason: str, done_reason: str) -> None:
    serve_chat(mock, ChunkStream([sse(delta(content="x"), finish(reason), "[DONE]")]))
    assert (await collect(client))[-1].done_reason == done_reason


async def test_usage_in_the_finishing_chunk_with_llama_server_timings(mock, client, caplog) -> None:
    timings = {"prompt_n": 18, "cache_n": 722, "prompt_ms": 30.5, "predicted_ms": 69.5}
    last = finish("length", usage={"prompt_tokens": 740, "completion_tokens": 5}, timings=timings)
    serve_chat(mock, ChunkStream([sse(delta(content="x"), last, "[DONE]")]))
    with caplog.at_level("INFO", logger="ollama_chatd.openai.client"):
        usage = (await collect(client))[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_duration_ns) == (740, 5, 100_000_000)
    assert "prompt evaluated 18 tokens, 722 from the server's prompt cache" in caplog.text


TOOL_STREAM_EVENTS = [
    delta(tool_calls=[{"index": 0, "id": "call_a", "type": "function", "function": {"name": "read_", "arguments": ""}}]),
    delta(tool_calls=[{"index": 0, "function": {"name": "file", "arguments": '{"pa'}}]),
    delta(tool_calls=[{"index": 1, "id": "call_b", "type": "function", "function": {"name": "list_directory"}}]),
    delta(tool_calls=[{"index": 0, "function": {"arguments": 'th": "dir/ü.txt"'}}]),
    delta(tool_calls=[{"index": 1, "function": {"arguments": "{}"}}]),
    delta(tool_calls=[{"index": 0, "function": {"arguments": "}"}}]),
    finish("tool_calls"),
    "[DONE]",
]


async def test_tool_call_fragments_are_assembled_by_index(mock, client) -> None:
    serve_chat(mock, ChunkStream([sse(*TOOL_STREAM_EVENTS)]))
    chunks = await collect(client)
    assert chunks[-1].tool_calls == (
        ToolCall("read_file", {"path": "dir/ü.txt"}, "call_a"),
        ToolCall("list_directory", {}, "call_b"),
    )
    assert chunks[-1].done_reason == "stop"  # the engine runs the calls: it sees them, not the reason


async def test_tool_call_fragments_split_at_every_byte(mock, client) -> None:
    stream = sse(*TOOL_STREAM_EVENTS)
    for pieces in byte_splits(stream):
        serve_chat(mock, ChunkStream(pieces))
        assert [call.name for call in (await collect(client))[-1].tool_calls] == ["read_file", "list_directory"]


@pytest.mark.parametrize("arguments", ['{"path": "a.txt"', "[1, 2]", '"a.txt"'])
async def test_arguments_that_are_not_an_object_are_kept_for_the_tool_to_refuse(mock, client, arguments) -> None:
    call = {"index": 0, "id": "c", "function": {"name": "read_file", "arguments": arguments}}
    serve_chat(mock, ChunkStream([sse(delta(tool_calls=[call]), finish("tool_calls"), "[DONE]")]))
    (tool_call,) = (await collect(client))[-1].tool_calls
    assert tool_call == ToolCall("read_file", {}, "c", unreadable_arguments=arguments)


async def test_closing_the_stream_closes_the_connection_at_once(mock, client) -> None:
    stream = ChunkStream([sse(delta(content="a"), delta(content="b"))], hang=True)
    serve_chat(mock, stream)
    chunks = client.stream_chat(chat_request())
    assert (await anext(chunks)).content == "a"
    await chunks.aclose()
    assert stream.closed


# ---------------------------------------------------------------- models


async def test_models_with_llama_servers_window_and_abilities_from_props(mock, client) -> None:
    serve_models(mock, MODEL)
    props = {
        "default_generation_settings": {"n_ctx": 2048},
        "chat_template_caps": {"supports_tools": False, "supports_tool_calls": False},
        "modalities": {"vision": False},
    }
    mock.get("http://llm.test:8080/props").respond(200, json=props)
    (model,) = await client.installed_models()
    assert (model.name, model.context_length, model.capabilities) == (MODEL, 2048, frozenset({"completion"}))
    props["chat_template_caps"]["supports_tool_calls"] = True
    props["modalities"]["vision"] = True
    mock.get("http://llm.test:8080/props").respond(200, json=props)  # restarted with another model
    assert (await client.describe_model(MODEL)).capabilities == {"completion", "tools", "vision"}


async def test_models_with_vllms_max_model_len_and_unknown_abilities(mock, client) -> None:
    serve_models(mock, "Qwen/Qwen3-8B", max_model_len=32768)
    mock.get("http://llm.test:8080/props").respond(404, json={"detail": "Not Found"})
    (model,) = await client.installed_models()
    assert (model.context_length, model.capabilities) == (32768, None)
    assert model.can("tools")  # unknown: tried, and dropped for the session if the server refuses


async def test_a_model_the_server_does_not_list_is_not_found_naming_what_it_serves(mock, client) -> None:
    listing = serve_models(mock, MODEL, "other")
    mock.get("http://llm.test:8080/props").respond(404)
    assert (await client.describe_model(MODEL)).name == MODEL
    with pytest.raises(ModelNotFound) as caught:
        await client.describe_model("llama3.2")
    assert caught.value.model == "llama3.2"
    assert str(caught.value) == (
        f"Model 'llama3.2' is not served by the OpenAI-compatible server at {BASE} (it serves other, smol). "
        "Choose one of those."
    )
    assert listing.call_count == 2  # the list is kept, and asked again only for a name not on it
    await client.describe_model(MODEL)
    assert listing.call_count == 2


async def test_version_is_llama_servers_build(mock, client) -> None:
    serve_models(mock, MODEL)
    mock.get("http://llm.test:8080/props").respond(200, json={"build_info": "b6500-abc"})
    assert await client.version() == "llama.cpp b6500-abc"


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize(
    "failure", [httpx.ConnectError("[Errno 111] Connection refused"), httpx.ConnectTimeout("")]
)
async def test_unreachable_names_the_address(mock, client, failure) -> None:
    mock.post("/chat/completions").mock(side_effect=failure)
    mock.get("/models").mock(side_effect=failure)
    for attempt in (collect(client), client.installed_models()):
        with pytest.raises(BackendUnreachable) as caught:
            await attempt
        assert caught.value.address == BASE
        assert str(caught.value).startswith(f"cannot reach the OpenAI-compatible server at {BASE}: ")


async def test_a_404_saying_model_not_found_is_model_not_found(mock, client) -> None:
    body = {"object": "error", "message": "The model `smol` does not exist.", "type": "NotFoundError", "code": 404}
    mock.post("/chat/completions").respond(404, json=body)
    with pytest.raises(ModelNotFound, match="does not exist") as caught:
        await collect(client)
    assert caught.value.model == MODEL


async def test_a_400_model_not_found_body_is_model_not_found(mock, client) -> None:
    body = {"error": {"message": "model 'smol' not found", "type": "invalid_request_error", "code": "model_not_found"}}
    mock.post("/chat/completions").respond(400, json=body)
    with pytest.raises(ModelNotFound):
        await collect(client)


async def test_a_plain_404_says_the_base_url_may_be_wrong(mock, client) -> None:
    mock.post("/chat/completions").respond(404, text="Not Found")
    with pytest.raises(UpstreamError, match=r"is http://llm.test:8080/v1 the API's base URL\?") as caught:
        await collect(client)
    assert caught.value.status == 404


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_is_said_and_never_shown(mock, client, status) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error"}}
    mock.post("/chat/completions").respond(status, json=body)
    mock.get("/models").respond(status, json=body)
    for attempt in (collect(client), client.installed_models()):
        with pytest.raises(UpstreamError) as caught:
            await attempt
        message = str(caught.value)
        assert KEY not in message and "Incorrect API key provided: ***" in message
        assert "OPENAI_API_KEY" in message and caught.value.status == status


@pytest.mark.parametrize(
    ("status", "retry_after", "seconds"),
    [(429, "2", 2.0), (503, "Wed, 21 Oct 2015 07:28:00 GMT", 0.0), (503, None, None), (429, "soon", None)],
)
async def test_busy_answers_carry_retry_after(mock, client, status, retry_after, seconds) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    mock.post("/chat/completions").respond(status, json={"error": {"message": "busy"}}, headers=headers)
    with pytest.raises(UpstreamError) as caught:
        await collect(client)
    assert (caught.value.status, caught.value.retry_after, caught.value.server_busy) == (status, seconds, True)


async def test_an_error_body_gives_the_servers_text(mock, client) -> None:
    body = {"error": {"code": 400, "message": "the request exceeds the available context size", "type": "x"}}
    mock.post("/chat/completions").respond(400, json=body)
    with pytest.raises(UpstreamError) as caught:
        await collect(client)
    assert (str(caught.value), caught.value.status) == ("the request exceeds the available context size", 400)
    assert str(caught.value) != "" and not isinstance(caught.value, FeatureNotSupported)


@pytest.mark.parametrize(
    "message",
    [
        "tools param requires --jinja flag",
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
        "This model does not support tools",
    ],
)
async def test_a_400_refusing_tools_is_feature_not_supported(mock, client, message) -> None:
    mock.post("/chat/completions").respond(400, json={"error": {"message": message}})
    with pytest.raises(FeatureNotSupported) as caught:
        await collect(client)
    assert caught.value.feature == "tools"


async def test_an_error_event_mid_stream_fails_after_the_partial_text(mock, client) -> None:
    events = sse(delta(content="half"), delta(content=" way"), {"error": {"message": "slot unavailable", "code": 503}})
    serve_chat(mock, ChunkStream([events]))
    received: list[str] = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in client.stream_chat(chat_request()):
            received.append(chunk.content)
    assert (str(caught.value), caught.value.status) == ("slot unavailable", None)
    assert received == ["half", " way"]


async def test_a_stream_ending_without_finish_or_done_is_an_error(mock, client) -> None:
    serve_chat(mock, ChunkStream([sse(delta(content="half"))]))
    with pytest.raises(UpstreamError, match="without a finish reason"):
        await collect(client)


async def test_a_connection_cut_mid_answer(mock, client) -> None:
    serve_chat(mock, ChunkStream([sse(delta(content="half"))], then_raise=httpx.ReadError("reset by peer")))
    with pytest.raises(UpstreamError, match=r"closed in the middle of the answer \(reset by peer\)"):
        await collect(client)


async def test_a_stream_that_stalls(mock) -> None:
    transport = httpx.MockTransport(mock.async_handler)
    async with contextlib.AsyncExitStack() as stack:
        client = OpenAIClient(BASE, transport=transport, stall_timeout=0.05)
        stack.push_async_callback(client.aclose)
        serve_chat(mock, ChunkStream([sse(delta(content="half"))], hang=True))
        with pytest.raises(UpstreamError, match="stalled: nothing arrived for 0.05 s"):
            await collect(client)


async def test_an_event_that_is_not_json(mock, client) -> None:
    serve_chat(mock, ChunkStream([b"data: {not json\n\n"]))
    with pytest.raises(UpstreamError, match="sent an event that is not JSON"):
        await collect(client)


async def test_a_json_200_instead_of_events_is_described(mock, client) -> None:
    mock.post("/chat/completions").respond(200, json={"choices": [{"message": {"content": "hi"}}]})
    with pytest.raises(UpstreamError, match="not a stream of server-sent events"):
        await collect(client)


# ---------------------------------------------------------------- through the engine


class Events:
    """The engine's event sink, keeping what it hears."""

    congested = False

    def __init__(self) -> None:
        self.heard: list[Any] = []

    def __call__(self, event: Any) -> None:
        self.heard.append(event)

    async def until_drained(self) -> None:
        pass

    def statuses(self) -> list[str]:
        return [event.message for event in self.heard if isinstance(event, StatusChange)]


@pytest.fixture
async def engine(client: OpenAIClient, tmp_path) -> AsyncIterator[ChatEngine]:
    async with ChatStore.open(None, str(tmp_path)) as store:
        yield ChatEngine(client, store, default_model=MODEL, busy_retry_delays=(60.0, 60.0))


async def test_a_busy_server_is_asked_again_after_the_wait_it_names(mock, engine) -> None:
    serve_models(mock, MODEL)
    mock.get("http://llm.test:8080/props").respond(404)
    busy = httpx.Response(429, json={"error": {"message": "too many requests"}}, headers={"Retry-After": "0"})
    answer = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=ChunkStream([STREAM]))
    route = mock.post("/chat/completions").mock(side_effect=[busy, answer])
    events = Events()
    result = await engine.run_turn(TurnRequest("c1", "hi"), events)
    assert result.content == ANSWER and route.call_count == 2
    assert "The OpenAI-compatible server is busy (too many requests); trying again in 0 s" in events.statuses()


async def test_a_server_asking_for_a_long_wait_is_reported_at_once(mock, engine) -> None:
    serve_models(mock, MODEL)
    mock.get("http://llm.test:8080/props").respond(404)
    busy = httpx.Response(503, json={"error": {"message": "loading model"}}, headers={"Retry-After": "3600"})
    route = mock.post("/chat/completions").mock(return_value=busy)
    with pytest.raises(TurnFailed) as caught:
        await engine.run_turn(TurnRequest("c1", "hi"), Events())
    assert (caught.value.error.status, route.call_count) == (503, 1)


async def test_unreadable_arguments_go_back_to_the_model_as_a_tool_error(tmp_path) -> None:
    tools = WorkspaceTools(Workspace([Folder("project", tmp_path)]), approver=None, applier=None)  # type: ignore[arg-type]
    events = Events()
    call = ToolCall("read_file", {}, "c", unreadable_arguments='{"path": "a.txt"')
    result = await tools.run("c1", "call-1", call, events)
    assert result.startswith("Error: the arguments of read_file must be an object such as")
    assert [(event.status, event.arguments) for event in events.heard] == [("pending", {}), ("failed", {})]
