"""The daemon end to end: real `ollama-chatd serve` over stdio, fake Ollama on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError

TOKENS = ["Héllo", ",", " wörld", " 日本", " 🦙", "!"]


async def test_answer_streams_as_tokens_then_the_result(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.text(TOKENS, prompt_eval_count=12, eval_count=6))

    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})

    tokens = daemon.tokens("c1")
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    assert daemon.text("c1") == "".join(TOKENS)
    assert result["chatId"] == "c1"
    assert result["stopReason"] == "end_turn"
    assert result["message"] == {"role": "assistant", "content": "".join(TOKENS)}
    assert result["usage"]["promptTokens"] == 12
    assert result["usage"]["completionTokens"] == 6
    assert result["usage"]["totalDurationMs"] > 0


async def test_every_token_is_written_before_the_response(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.text([f"t{i} " for i in range(200)]))
    msg_id, reply = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "hi"})
    await reply
    last_token = max(i for i, m in enumerate(daemon.messages) if m.get("method") == "chat/token")
    assert last_token < daemon.index_of_response(msg_id)


async def test_upstream_request_streams_the_whole_history(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.text(["first answer"]), Reply.text(["second answer"]))
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "one", "system": "be brief"})
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "two", "options": {"temperature": 0}})

    second = fake.requests[1].body
    assert second["stream"] is True
    assert second["model"] in ("tiny", "tiny:latest")
    assert second["options"] == {"temperature": 0, "num_ctx": 8192}
    assert [(m["role"], m["content"]) for m in second["messages"]] == [
        ("system", "be brief"),
        ("user", "one"),
        ("assistant", "first answer"),
        ("user", "two"),
    ]


async def test_chats_keep_separate_histories(daemon: Daemon, fake: FakeOllama):
    await daemon.request("chat/start", {"chatId": "a", "prompt": "for a"})
    await daemon.request("chat/start", {"chatId": "b", "prompt": "for b"})
    assert [m["content"] for m in fake.requests[1].body["messages"]] == ["for b"]


async def test_thinking_streams_separately(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.text(["42"], thinking=["Let me", " think."]))
    result = await daemon.request(
        "chat/start", {"chatId": "c1", "prompt": "q", "model": "thinker", "think": "high"}
    )
    assert daemon.text("c1", "thinking") == "Let me think."
    assert daemon.text("c1", "content") == "42"
    assert result["message"]["thinking"] == "Let me think."
    assert fake.requests[0].body["think"] == "high"


async def test_length_limit_is_reported_as_max_tokens(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.text(["cut"], done_reason="length"))
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "q"})
    assert result["stopReason"] == "max_tokens"


async def test_one_http_connection_serves_every_turn(daemon: Daemon, fake: FakeOllama):
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "one"})
    opened = fake.connections_opened  # the model's description, then the chat stream
    for prompt in ("two", "three", "four"):
        await daemon.request("chat/start", {"chatId": "c1", "prompt": prompt})
    assert fake.connections_opened == opened <= 2


# -- cancellation -----------------------------------------------------------------------------


async def _start_endless(daemon: Daemon, fake: FakeOllama, **reply) -> tuple[int | str, asyncio.Future]:
    fake.script(Reply.endless(**reply))
    msg_id, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "go on"})
    (await asyncio.to_thread(fake.wait_for_requests, 1))
    return msg_id, answer


async def _assert_nothing_after(daemon: Daemon, msg_id: int | str) -> None:
    # The daemon answers in order: once a later request is answered, whatever the turn
    # could still have sent is here.
    await daemon.request("chat/list", {})
    answer_at = daemon.index_of_response(msg_id)
    assert not [m for m in daemon.messages[answer_at:] if m.get("method") == "chat/token"]


async def test_chat_cancel_mid_stream_returns_the_partial_answer(daemon: Daemon, fake: FakeOllama):
    msg_id, answer = await _start_endless(daemon, fake)
    await daemon.wait_for(lambda: len(daemon.tokens("c1")) >= 5)

    assert await daemon.request("chat/cancel", {"chatId": "c1"}) == {"cancelled": True}
    result = await answer

    assert result["stopReason"] == "cancelled"
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 2.0)
    await _assert_nothing_after(daemon, msg_id)
    assert result["message"]["content"] == daemon.text("c1")
    assert result["message"]["content"].startswith("tok tok tok")


async def test_cancel_request_mid_stream_answers_request_cancelled(daemon: Daemon, fake: FakeOllama):
    msg_id, answer = await _start_endless(daemon, fake)
    await daemon.wait_for(lambda: len(daemon.tokens("c1")) >= 5)

    daemon.cancel_request(msg_id)
    with pytest.raises(RpcError) as raised:
        await answer

    assert raised.value.code == -32800
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 2.0)
    await _assert_nothing_after(daemon, msg_id)


@pytest.mark.parametrize("how", ["chat/cancel", "$/cancelRequest"])
async def test_cancel_while_the_model_loads_drops_the_connection(daemon: Daemon, fake: FakeOllama, how):
    msg_id, answer = await _start_endless(daemon, fake, first_byte_delay=60)
    if how == "chat/cancel":
        assert await daemon.request("chat/cancel", {"chatId": "c1"}) == {"cancelled": True}
        assert (await answer)["message"]["content"] == ""
    else:
        daemon.cancel_request(msg_id)
        with pytest.raises(RpcError, match="-32800"):
            await answer
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 2.0)
    assert daemon.tokens("c1") == []


async def test_cancel_between_turns_changes_nothing(daemon: Daemon, fake: FakeOllama):
    msg_id, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "hi"})
    await answer
    assert await daemon.request("chat/cancel", {"chatId": "c1"}) == {"cancelled": False}
    assert await daemon.request("chat/cancel", {"chatId": "never-used"}) == {"cancelled": False}
    daemon.cancel_request(msg_id)  # already answered: ignored
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "again"})
    assert result["stopReason"] == "end_turn"


async def test_a_cancelled_reply_stays_in_the_history(daemon: Daemon, fake: FakeOllama):
    msg_id, answer = await _start_endless(daemon, fake)
    await daemon.wait_for(lambda: len(daemon.tokens("c1")) >= 3)
    await daemon.request("chat/cancel", {"chatId": "c1"})
    partial = (await answer)["message"]["content"]

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "and then?"})

    history = fake.requests[1].body["messages"]
    assert history[1] == {"role": "assistant", "content": partial}
    assert history[2]["content"] == "and then?"


async def test_other_chats_go_on_while_one_is_cancelled(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.endless(), model="plain")
    _, endless = daemon.send_request("chat/start", {"chatId": "slow", "prompt": "x", "model": "plain"})
    await daemon.wait_for(lambda: daemon.tokens("slow"))
    result = await daemon.request("chat/start", {"chatId": "quick", "prompt": "hello"})
    assert result["message"]["content"] == "echo: hello"
    await daemon.request("chat/cancel", {"chatId": "slow"})
    assert (await endless)["stopReason"] == "cancelled"


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"prompt": "hi"}, "chatId"),
        ({"chatId": "c", "prompt": 5}, "prompt"),
        ({"chatId": "", "prompt": "hi"}, "chatId"),
        ({"chatId": "x" * 129, "prompt": "hi"}, "chatId"),
        ({"chatId": "c", "prompt": "hi", "think": "extreme"}, "think"),
        ({"chatId": "c", "prompt": "hi", "options": [1, 2]}, "options"),
        ({"chatId": "c", "prompt": "hi", "model": ""}, "model"),
    ],
)
async def test_invalid_params_name_the_field(daemon: Daemon, params, field):
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", params)
    assert raised.value.code == -32602
    assert raised.value.data == {"kind": "invalid_params", "field": field}
    assert f"`{field}`" in raised.value.message


async def test_params_that_are_not_an_object_are_invalid(daemon: Daemon):
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", ["c1", "hi"])
    assert raised.value.code == -32602


async def test_without_any_model_the_daemon_says_how_to_choose_one(spawn_daemon):
    daemon = await spawn_daemon()
    await daemon.initialize()
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert raised.value.code == -32602
    assert raised.value.data == {"kind": "no_model"}
    assert "OLLAMA_CHATD_MODEL" in raised.value.message


async def test_default_model_from_the_environment(spawn_daemon, fake: FakeOllama):
    daemon = await spawn_daemon(env={"OLLAMA_CHATD_MODEL": "plain"})
    await daemon.initialize()
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert fake.requests[0].body["model"] == "plain"


async def test_unreachable_ollama_names_the_address(spawn_daemon, closed_port_url):
    daemon = await spawn_daemon(env={"OLLAMA_HOST": closed_port_url})
    await daemon.initialize({"model": "tiny"})
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert raised.value.code == -32001
    assert raised.value.data == {"kind": "ollama_unreachable", "address": closed_port_url, "backend": "ollama"}
    assert closed_port_url in raised.value.message
    assert "OLLAMA_HOST" in raised.value.message


async def test_ollama_host_option_wins_over_the_environment(spawn_daemon, fake: FakeOllama, closed_port_url):
    daemon = await spawn_daemon(env={"OLLAMA_HOST": closed_port_url})
    await daemon.initialize({"model": "tiny", "ollamaHost": fake.url})
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert result["message"]["content"] == "echo: hi"


async def test_unknown_model_suggests_pulling_it(daemon: Daemon):
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi", "model": "nonesuch"})
    assert raised.value.code == -32002
    assert raised.value.data == {"kind": "model_not_found", "model": "nonesuch", "backend": "ollama"}
    assert "ollama pull nonesuch" in raised.value.message


async def test_http_error_from_ollama_is_an_upstream_error(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.error(500, "model runner has unexpectedly stopped"))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert raised.value.code == -32003
    assert "model runner has unexpectedly stopped" in raised.value.message
    assert raised.value.data["kind"] == "upstream_error"
    assert raised.value.data["status"] == 500


async def test_error_line_mid_stream_keeps_the_partial_reply(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.mid_stream_error(["half", " an answer"], "error parsing tool call"))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    assert raised.value.code == -32003
    assert "error parsing tool call" in raised.value.message
    assert raised.value.data == {"kind": "upstream_error", "status": None, "partial": {"content": "half an answer"}}

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "retry"})
    assert fake.requests[1].body["messages"][1] == {"role": "assistant", "content": "half an answer"}


async def test_a_second_turn_on_a_busy_chat_is_refused(daemon: Daemon, fake: FakeOllama):
    msg_id, answer = await _start_endless(daemon, fake)
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "me too"})
    assert raised.value.code == -32004
    assert raised.value.data == {"kind": "chat_busy", "chatId": "c1"}
    daemon.cancel_request(msg_id)
    with pytest.raises(RpcError):
        await answer


# -- the wire ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"Content-Length: 9\r\n\r\n{not json", -32700),
        (b"Content-Length: 4\r\n\r\n\xff\xfe\xfd\xfc", -32700),
        (b'Content-Length: 2\r\n\r\n[]', -32600),
        (b'Content-Length: 39\r\n\r\n{"jsonrpc":"1.0","id":7,"method":"x"}  ', -32600),
    ],
)
async def test_a_malformed_message_is_answered_and_serving_goes_on(daemon: Daemon, frame, code):
    daemon.send_raw(frame)
    error = await daemon.wait_for(lambda: [m for m in daemon.messages if "error" in m])
    assert error[0]["error"]["code"] == code
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "still there?"})
    assert result["message"]["content"] == "echo: still there?"


async def test_a_frame_without_length_is_skipped(daemon: Daemon):
    daemon.send_raw(b"Content-Type: x\r\n\r\n")
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "after"})
    assert result["stopReason"] == "end_turn"


async def test_unknown_method_is_method_not_found(daemon: Daemon):
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/teleport", {})
    assert raised.value.code == -32601
    assert (await daemon.request("chat/cancel", {"chatId": "c1"})) == {"cancelled": False}


# -- lifecycle ----------------------------------------------------------------------------------


async def test_shutdown_then_exit_ends_with_code_0(daemon: Daemon):
    assert await daemon.shutdown() == 0


async def test_exit_without_shutdown_during_a_turn_ends_with_code_1(daemon: Daemon, fake: FakeOllama):
    await _start_endless(daemon, fake)
    await daemon.wait_for(lambda: daemon.tokens("c1"))
    daemon.notify("exit", None)
    assert await daemon.wait_exit() == 1
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 2.0)
    assert len(daemon.stderr()) < 20_000


async def test_end_of_input_ends_the_daemon(daemon: Daemon, fake: FakeOllama):
    await _start_endless(daemon, fake)
    daemon.process.stdin.close()
    assert await daemon.wait_exit() == 0
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 2.0)


async def test_the_daemon_exits_when_the_editor_process_dies(spawn_daemon):
    editor = await asyncio.create_subprocess_exec("sleep", "60")
    daemon = await spawn_daemon()
    await daemon.initialize(processId=editor.pid)
    editor.kill()
    await editor.wait()
    # Generous: the watch starts once pygls has loaded, seconds on a busy machine.
    assert await daemon.wait_exit(timeout=15.0) == 0


async def test_a_shutdown_before_initialize_opens_nothing(spawn_daemon, tmp_path):
    """A script that says goodbye at once leaves no database behind: the store and the
    Ollama client are opened by `initialize`, or by the first request that needs them."""
    quiet, used = tmp_path / "quiet", tmp_path / "used"
    daemon = await spawn_daemon("--state-dir", str(quiet))
    assert await daemon.shutdown() == 0
    assert not (quiet / "chats.sqlite3").exists()

    daemon = await spawn_daemon("--state-dir", str(used))
    assert await daemon.request("chat/list", {}) == {"chats": []}  # a script that skips initialize
    assert await daemon.shutdown() == 0
    assert (used / "chats.sqlite3").exists()
