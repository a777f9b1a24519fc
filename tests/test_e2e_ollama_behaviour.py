"""Ollama as it really behaves: models and capabilities, the context window, slow
and silent moments, busy and remote servers (the daemon over stdio, fake Ollama)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import sys

import pytest

from fake_ollama import FakeModel, FakeOllama, Reply
from harness import Daemon, RpcError


def states(daemon: Daemon, chat_id: str = "c1") -> list[str]:
    return [n["state"] for n in daemon.notifications("chat/status", chat_id)]


# -- models --------------------------------------------------------------------------------


async def test_chat_models_lists_what_ollama_has(daemon: Daemon, fake: FakeOllama):
    result = await daemon.request("chat/models", {})
    models = {m["name"]: m for m in result["models"]}
    assert set(models) == {"tiny:latest", "thinker:latest", "vision:latest", "plain:latest"}
    assert models["thinker:latest"]["capabilities"] == ["completion", "thinking", "tools"]
    assert models["vision:latest"]["contextLength"] == 131072
    assert models["tiny:latest"]["family"] == "llama"
    assert models["tiny:latest"]["sizeBytes"] > 0


async def test_chat_models_is_cached_until_refreshed(daemon: Daemon, fake: FakeOllama):
    def tags_requests() -> int:
        return sum(1 for r in fake.all_requests if r.path == "/api/tags")

    await daemon.request("chat/models", None)
    await daemon.request("chat/models", {})
    assert tags_requests() == 1
    fake.models["new:latest"] = FakeModel("new", "llama", "1B", capabilities=["completion"], context_length=2048)
    result = await daemon.request("chat/models", {"refresh": True})
    assert tags_requests() == 2
    assert "new:latest" in {m["name"] for m in result["models"]}


async def test_chat_models_when_ollama_is_down(spawn_daemon, closed_port_url):
    daemon = await spawn_daemon(env={"OLLAMA_HOST": closed_port_url})
    await daemon.initialize()
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/models", {})
    assert raised.value.code == -32001


# -- capabilities decide the request --------------------------------------------------------------


async def test_tools_are_offered_only_to_models_that_can_use_them(daemon: Daemon, fake: FakeOllama):
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi", "model": "tiny"})
    await daemon.request("chat/start", {"chatId": "c2", "prompt": "hi", "model": "plain"})
    assert fake.requests[0].body["tools"]
    assert "tools" not in fake.requests[1].body
    assert "no_tools" in states(daemon, "c2")
    assert "no_tools" not in states(daemon, "c1")


async def test_think_goes_only_to_models_that_can_think(daemon: Daemon, fake: FakeOllama):
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi", "model": "thinker", "think": True})
    await daemon.request("chat/start", {"chatId": "c2", "prompt": "hi", "model": "tiny", "think": True})
    await daemon.request("chat/start", {"chatId": "c3", "prompt": "hi", "model": "thinker"})
    assert fake.requests[0].body["think"] is True
    assert "think" not in fake.requests[1].body
    assert "think" not in fake.requests[2].body


async def test_a_model_that_refuses_tools_is_retried_without_them(daemon: Daemon, fake: FakeOllama):
    fake.models["liar:latest"] = FakeModel("liar", "llama", "1B", capabilities=["completion", "tools"], context_length=4096)
    fake.script(
        Reply.error(400, "registry.ollama.ai/library/liar:latest does not support tools"),
        Reply.text(["fine without"]),
        Reply.text(["still fine"]),
        model="liar",
    )
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi", "model": "liar"})
    assert result["message"]["content"] == "fine without"
    assert fake.requests[0].body.get("tools") and "tools" not in fake.requests[1].body
    assert "no_tools" in states(daemon)
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "again"})
    assert "tools" not in fake.requests[2].body  # remembered for the session


async def test_images_go_to_vision_models_only(daemon: Daemon, fake: FakeOllama):
    image = base64.b64encode(b"\x89PNG fake").decode()
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "what is it?", "model": "vision", "images": [image]})
    assert fake.requests[0].body["messages"][-1]["images"] == [image]

    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c2", "prompt": "and this?", "model": "tiny", "images": [image]})
    assert raised.value.code == -32602
    assert raised.value.data == {"kind": "invalid_params", "field": "images"}
    assert "vision" in raised.value.message


# -- the context window ----------------------------------------------------------------------------


async def test_each_chat_keeps_one_num_ctx(spawn_daemon, fake: FakeOllama):
    daemon = await spawn_daemon()
    await daemon.initialize({"model": "tiny", "maxContext": 16384})
    await daemon.request("chat/start", {"chatId": "big", "prompt": "a", "model": "vision"})
    await daemon.request("chat/start", {"chatId": "small", "prompt": "a", "model": "plain"})
    await daemon.request("chat/start", {"chatId": "asked", "prompt": "a", "options": {"num_ctx": 2048}})
    result = await daemon.request("chat/start", {"chatId": "asked", "prompt": "b"})
    num_ctx = [r.body["options"]["num_ctx"] for r in fake.requests]
    assert num_ctx == [16384, 4096, 2048, 2048]
    assert result["usage"]["contextLimit"] == 2048


async def test_usage_reports_how_full_the_window_is(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.text(["ok"], prompt_eval_count=120, eval_count=30))
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert result["usage"]["contextTokens"] == 150
    assert result["usage"]["contextLimit"] == 8192


async def test_a_long_chat_drops_its_oldest_turns_from_the_request(daemon: Daemon, fake: FakeOllama):
    long_answer = "word " * 1500  # ~7,500 characters: about 2,500 estimated tokens
    tool_call = {"function": {"name": "list_directory", "arguments": {}}}
    fake.script(
        Reply.text([long_answer]),
        Reply.text([], tool_calls=[tool_call]),
        Reply.text([long_answer]),
        Reply.text(["short"]),
        model="plain",
    )
    for prompt in ("one", "two", "three"):
        await daemon.request("chat/start", {"chatId": "c1", "prompt": prompt, "model": "plain", "system": "be kind"})

    last = fake.requests[-1].body["messages"]
    assert last[0] == {"role": "system", "content": "be kind"}
    assert last[1]["role"] == "user"
    assert last[-1] == {"role": "user", "content": "three"}
    assert "one" not in [m["content"] for m in last]
    assert "truncated" in states(daemon)
    for i, message in enumerate(last):
        if message["role"] == "tool":  # its call is in the request too
            assert any(m.get("tool_calls") for m in last[:i])


async def test_a_full_window_keeps_the_prompt_prefix_from_request_to_request(daemon: Daemon, fake: FakeOllama):
    """Ollama reuses its cache of the prompt up to the first difference from the previous
    request: once the window is full, each request still starts with the whole previous one
    (tool definitions and system prompt included), except at the rare trims."""
    turns, num_ctx = 50, 4096
    fake.script(*[Reply.text([f"answer {i}:", *[" word"] * 25]) for i in range(turns)])
    for i in range(turns):
        prompt = f"question {i}: " + "detail " * 25
        await daemon.request("chat/start", {"chatId": "c1", "prompt": prompt, "system": "be kind",
                                            "options": {"num_ctx": num_ctx}})

    bodies = [r.body for r in fake.requests]
    assert len(bodies) == turns and bodies[0]["tools"], "the model was offered the workspace tools"
    trims = 0
    for previous, current in itertools.pairwise(bodies):
        assert current["tools"] == previous["tools"]
        assert current["messages"][0] == {"role": "system", "content": "be kind"}
        trims += current["messages"][: len(previous["messages"])] != previous["messages"]
        # the daemon's own (conservative) estimate: 3 characters a token
        prompt_chars = len(json.dumps(current["messages"])) + len(json.dumps(current["tools"]))
        assert prompt_chars / 3 < num_ctx
    assert bodies[-1]["messages"][1]["content"] != bodies[0]["messages"][1]["content"], "the window filled"
    # each turn is ~120 estimated tokens: dropping one turn at a time would change every request's
    # beginning from about turn 20 on; halving the room changes it once every few turns
    assert 1 <= trims <= turns // 5
    assert states(daemon).count("truncated") == trims


# -- slow and silent moments ------------------------------------------------------------------------


async def test_a_first_byte_after_a_long_silence_still_streams(spawn_daemon, fake: FakeOllama):
    daemon = await spawn_daemon()
    await daemon.initialize({"model": "tiny", "stallTimeoutSeconds": 0.3})
    fake.script(Reply.text(["loaded", " at last"], first_byte_delay=1.0))
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert result["message"]["content"] == "loaded at last"
    assert states(daemon)[:2] == ["waiting", "streaming"]


async def test_a_stream_that_stalls_mid_answer_ends_with_the_partial_kept(spawn_daemon, fake: FakeOllama):
    daemon = await spawn_daemon()
    await daemon.initialize({"model": "tiny", "stallTimeoutSeconds": 0.5})
    fake.script(Reply.stall(["half", " way"], then_silence=10))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert raised.value.code == -32003
    assert "stalled" in raised.value.message
    assert raised.value.data["partial"] == {"content": "half way"}
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 2.0)


async def test_a_busy_server_is_retried_with_backoff(daemon: Daemon, fake: FakeOllama):
    busy = "server busy, please try again.  maximum pending requests exceeded"
    fake.script(Reply.error(503, busy), Reply.error(503, busy), Reply.text(["finally"]))
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert result["message"]["content"] == "finally"
    assert len(fake.requests) == 3
    assert states(daemon) == ["waiting", "retrying", "waiting", "retrying", "waiting", "streaming"]


async def test_a_server_busy_for_too_long_is_reported(daemon: Daemon, fake: FakeOllama):
    fake.script(*[Reply.error(503, "server busy, please try again.") for _ in range(4)])
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert raised.value.code == -32003
    assert raised.value.data["status"] == 503
    assert len(fake.requests) == 4


# -- remote servers ------------------------------------------------------------------------------------


async def test_the_api_key_is_sent_as_a_bearer_token_and_never_logged(spawn_daemon, fake: FakeOllama):
    daemon = await spawn_daemon("--log-level", "DEBUG", env={"OLLAMA_API_KEY": "sk-very-secret"})
    await daemon.initialize({"model": "tiny"})
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert fake.requests[0].headers["authorization"] == "Bearer sk-very-secret"

    fake.script(Reply.error(401, "unauthorized"))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "again"})
    assert raised.value.code == -32003
    assert fake.url in raised.value.message and "OLLAMA_API_KEY" in raised.value.message
    await daemon.shutdown()
    assert "sk-very-secret" not in daemon.stderr()
    assert "sk-very-secret" not in repr(daemon.messages)


async def test_an_explicit_authorization_header_wins(spawn_daemon, fake: FakeOllama):
    daemon = await spawn_daemon(env={"OLLAMA_API_KEY": "from-env"})
    await daemon.initialize({"model": "tiny", "headers": {"Authorization": "Bearer from-options", "X-Team": "a"}})
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert fake.requests[0].headers["authorization"] == "Bearer from-options"
    assert fake.requests[0].headers["x-team"] == "a"


async def test_a_wrongly_typed_option_fails_initialize(spawn_daemon):
    daemon = await spawn_daemon()
    with pytest.raises(RpcError) as raised:
        await daemon.initialize({"maxContext": "big"})
    assert raised.value.code == -32602
    assert raised.value.data == {"kind": "invalid_params", "field": "initializationOptions.maxContext"}


# -- the command line ----------------------------------------------------------------------------------


async def run_command(fake_url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "OLLAMA_HOST": fake_url, "OLLAMA_CHATD_MODEL": ""},
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, out.decode()


async def test_models_prints_a_table(fake: FakeOllama):
    code, out = await run_command(fake.url, "models")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SIZE", "PARAMETERS", "QUANTIZATION", "CONTEXT", "CAPABILITIES"]
    assert lines[-1] == f"— models of ollama at {fake.url} (from OLLAMA_HOST)"  # on stderr
    assert any(line.startswith("thinker:latest") and "thinking, tools" in line for line in lines)


async def test_doctor_on_a_healthy_server(fake: FakeOllama):
    code, out = await run_command(fake.url, "doctor", "--model", "tiny")
    assert code == 0, out
    assert "0.12.10" in out
    assert f"backend: ollama at {fake.url} (from OLLAMA_HOST)" in out
    assert "default model tiny is installed and can use tools" in out
    assert "searches run on ripgrep: " in out  # the ripgrep dependency's rg
    assert out.rstrip().endswith("Ready: ollama-chatd can chat with Ollama.")


async def test_doctor_on_an_unreachable_server(closed_port_url):
    code, out = await run_command(closed_port_url, "doctor")
    assert code == 1
    assert "ollama serve" in out
    assert "Not ready" in out


async def test_doctor_names_a_missing_default_model(fake: FakeOllama):
    code, out = await run_command(fake.url, "doctor", "--model", "llama3.2")
    assert code == 1
    assert "ollama pull llama3.2" in out


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"caBundle": "/nonexistent/ca.pem"}, "initializationOptions.caBundle"),
        ({"headers": {"X-Token": "line\nbreak"}}, "initializationOptions.headers"),
        ({"autoApprove": "write_file"}, "initializationOptions.autoApprove"),
        ({"stallTimeoutSeconds": 0}, "initializationOptions.stallTimeoutSeconds"),
    ],
)
async def test_unusable_options_are_named(spawn_daemon, options, field):
    daemon = await spawn_daemon()
    with pytest.raises(RpcError) as raised:
        await daemon.initialize(options)
    assert raised.value.code == -32602
    assert raised.value.data == {"kind": "invalid_params", "field": field}


async def test_an_empty_401_still_says_how_to_authenticate(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.plain(401, ""))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert "OLLAMA_API_KEY" in raised.value.message
