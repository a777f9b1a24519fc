"""`model/chat`, the stateless model call, end to end: the real daemon over stdio, the
fake Ollama behind it. The client's messages and tools go to Ollama as given; the reply
streams back as `model/token`s; tool calls come back to the client, never run."""

from __future__ import annotations

import asyncio

import pytest

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _call(request_id: str = "r1", model: str = "tiny", **extra) -> dict:
    return {"requestId": request_id, "model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def model_tokens(daemon: Daemon, request_id: str) -> list[dict]:
    return [t for t in daemon.notifications("model/token") if t["requestId"] == request_id]


async def test_the_reply_streams_as_model_tokens_then_the_result(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.text(["Hel", "lo", " there"], thinking=["hmm"], prompt_eval_count=9, eval_count=3), model="thinker")

    result = await daemon.request("model/chat", _call(model="thinker", think=True))

    tokens = model_tokens(daemon, "r1")
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    assert "".join(t["text"] for t in tokens if t["kind"] == "content") == "Hello there"
    assert "".join(t["text"] for t in tokens if t["kind"] == "thinking") == "hmm"
    assert result == {
        "requestId": "r1",
        "stopReason": "end_turn",
        "message": {"role": "assistant", "content": "Hello there", "thinking": "hmm"},
        "usage": {"promptTokens": 9, "completionTokens": 3, "totalDurationMs": result["usage"]["totalDurationMs"]},
    }
    assert not daemon.notifications("chat/token") and not daemon.notifications("chat/status")


async def test_the_conversation_and_tools_reach_ollama_as_given(daemon: Daemon, fake: FakeOllama):
    conversation = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather in Paris?", "images": ["aW1n"]},
        {"role": "assistant", "content": "", "toolCalls": [{"id": "c7", "name": "get_weather", "arguments": {"city": "Paris"}}]},
        {"role": "tool", "content": "sunny", "toolName": "get_weather", "toolCallId": "c7"},
    ]
    await daemon.request("model/chat", {**_call(), "messages": conversation, "tools": [WEATHER_TOOL], "options": {"temperature": 0}})

    body = fake.requests[0].body
    assert [(m["role"], m["content"]) for m in body["messages"]] == [(m["role"], m["content"]) for m in conversation]
    assert body["messages"][1]["images"] == ["aW1n"]
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert body["messages"][2]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert body["messages"][3]["tool_name"] == "get_weather"
    assert [t["function"]["name"] for t in body["tools"]] == ["get_weather"]
    # The model's context length (8192 for tiny), as for a chat; the client's options kept.
    assert body["options"] == {"temperature": 0, "num_ctx": 8192}


async def test_tool_calls_are_returned_and_never_run(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.text([], tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))

    result = await daemon.request("model/chat", _call(tools=[WEATHER_TOOL]))

    assert result["stopReason"] == "tool_calls"
    [call] = result["message"]["toolCalls"]
    assert (call["name"], call["arguments"]) == ("get_weather", {"city": "Oslo"}) and call["id"]
    assert len(fake.requests) == 1  # no second round: the client runs the tool
    assert not daemon.notifications("chat/toolCall")


async def test_workspace_tools_are_never_offered(daemon: Daemon, fake: FakeOllama):
    await daemon.request("model/chat", _call())
    assert "tools" not in fake.requests[0].body


async def test_tools_and_think_are_left_out_for_models_that_lack_them(daemon: Daemon, fake: FakeOllama):
    await daemon.request("model/chat", _call(model="plain", tools=[WEATHER_TOOL], think=True))
    body = fake.requests[0].body
    assert "tools" not in body and "think" not in body


async def test_nothing_is_stored(daemon: Daemon, fake: FakeOllama):
    await daemon.request("model/chat", _call(request_id="c1"))
    assert (await daemon.request("chat/list", {}))["chats"] == []


async def _start_endless(daemon: Daemon, fake: FakeOllama) -> tuple[int | str, asyncio.Future]:
    fake.script(Reply.endless())
    msg_id, answer = daemon.send_request("model/chat", _call())
    await daemon.wait_for(lambda: len(model_tokens(daemon, "r1")) >= 3)
    return msg_id, answer


async def test_model_cancel_drops_the_stream_and_returns_what_was_streamed(daemon: Daemon, fake: FakeOllama):
    msg_id, answer = await _start_endless(daemon, fake)

    assert await daemon.request("model/cancel", {"requestId": "r1"}) == {"cancelled": True}
    result = await answer

    assert result["stopReason"] == "cancelled"
    assert await fake.requests[0].wait_closed_async(2.0)
    streamed = "".join(t["text"] for t in model_tokens(daemon, "r1"))
    assert result["message"]["content"] == streamed and streamed.startswith("tok tok")
    assert await daemon.request("model/cancel", {"requestId": "r1"}) == {"cancelled": False}


async def test_cancel_request_answers_request_cancelled_and_drops_the_stream(daemon: Daemon, fake: FakeOllama):
    msg_id, answer = await _start_endless(daemon, fake)

    daemon.cancel_request(msg_id)
    with pytest.raises(RpcError) as raised:
        await answer

    assert raised.value.code == -32800
    assert await fake.requests[0].wait_closed_async(2.0)


async def test_a_running_request_id_is_refused(daemon: Daemon, fake: FakeOllama):
    _, first = await _start_endless(daemon, fake)
    with pytest.raises(RpcError) as raised:
        await daemon.request("model/chat", _call())
    assert raised.value.code == -32602 and raised.value.data["field"] == "requestId"
    await daemon.request("model/cancel", {"requestId": "r1"})
    await first


async def test_an_unknown_model_is_model_not_found(daemon: Daemon, fake: FakeOllama):
    with pytest.raises(RpcError) as raised:
        await daemon.request("model/chat", _call(model="nope"))
    assert raised.value.code == -32002 and raised.value.data["model"] == "nope"


async def test_an_unreachable_ollama_says_so(spawn_daemon, closed_port_url: str):
    daemon = await spawn_daemon(env={"OLLAMA_HOST": closed_port_url})
    await daemon.initialize()
    with pytest.raises(RpcError) as raised:
        await daemon.request("model/chat", _call())
    assert raised.value.code == -32001 and "ollama serve" in raised.value.message


async def test_an_error_mid_stream_carries_the_partial_reply(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.mid_stream_error(["par", "tial"], "model runner crashed"))
    with pytest.raises(RpcError) as raised:
        await daemon.request("model/chat", _call())
    assert raised.value.code == -32003
    assert raised.value.data["partial"] == {"content": "partial"}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": "tiny", "messages": [{"role": "user", "content": "x"}]}, "requestId"),
        (_call(messages=[]), "messages"),
        (_call(messages=[{"role": "robot", "content": "x"}]), "messages"),
        (_call(model=""), "model"),
        (_call(tools=[{"description": "no name"}]), "tools"),
    ],
)
async def test_bad_params_name_the_field(daemon: Daemon, params: dict, field: str):
    with pytest.raises(RpcError) as raised:
        await daemon.request("model/chat", params)
    assert raised.value.code == -32602
    assert raised.value.data["field"].startswith(field)
