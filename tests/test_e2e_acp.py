"""`ollama-chatd acp` end to end: the official ACP TypeScript SDK as the client (as in
Zed), the real agent as a subprocess, the fake Ollama behind it. Every message the
agent sends is checked against ACP v1's JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acp_client import AcpClient, AcpError
from fake_ollama import FakeOllama, Reply
from real_parts import real_part


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"function": {"name": name, "arguments": arguments}}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 1\n")
    (root / "notes.txt").write_text("saved notes\n")
    return root


@pytest.fixture
async def spawn_client(fake: FakeOllama, tmp_path: Path):
    clients: list[AcpClient] = []

    async def spawn(*args: str, host: str | None = None) -> AcpClient:
        env = {"OLLAMA_HOST": host or fake.url, "OLLAMA_CHATD_MODEL": ""}
        client = await AcpClient.spawn("--model", "tiny", "--state-dir", str(tmp_path / "state"), *args,
                                       env=env, cwd=str(tmp_path))
        clients.append(client)
        return client

    yield spawn
    for client in clients:
        client.kill()
        await client.process.wait()
        assert not client.invalid, client.invalid  # every message valid ACP (and stdout clean)
        assert not client.tool_call_violations(), client.tool_call_violations()
        assert not any(e["event"] == "driver_error" for e in client.events), client.events


@pytest.fixture
async def client(spawn_client) -> AcpClient:
    client = await spawn_client()
    await client.initialize()
    return client


def prompt(client: AcpClient, session_id: str, *blocks: dict[str, Any] | str):
    content = [{"type": "text", "text": b} if isinstance(b, str) else b for b in blocks]
    return client.send_request("session/prompt", {"sessionId": session_id, "prompt": content})


def index_of_answer(client: AcpClient, future_result: dict[str, Any]) -> int:
    messages = client.agent_messages()
    return next(i for i, m in enumerate(messages) if "result" in m and m["result"] == future_result)


def tool_updates(client: AcpClient, session_id: str) -> list[dict[str, Any]]:
    return [u for u in client.updates(session_id) if u["sessionUpdate"] in ("tool_call", "tool_call_update")]


# -- set-up -----------------------------------------------------------------------------


async def test_initialize_agrees_on_version_1_and_says_what_the_agent_can_do(spawn_client):
    client = await spawn_client()
    result = await client.initialize()
    assert result["protocolVersion"] == 1
    assert result["agentCapabilities"]["loadSession"] is True
    assert result["agentCapabilities"]["promptCapabilities"]["embeddedContext"] is True
    assert result["agentCapabilities"]["promptCapabilities"]["image"] is False  # tiny cannot see
    assert result["agentInfo"]["name"] == "ollama-chatd"
    assert await client.close() == 0


async def test_a_vision_default_model_takes_images(spawn_client):
    client = await spawn_client("--model", "vision")
    result = await client.initialize()
    assert result["agentCapabilities"]["promptCapabilities"]["image"] is True


async def test_new_session_offers_the_installed_models_with_the_default_chosen(client, workspace):
    result = await client.request("session/new", {"cwd": str(workspace), "mcpServers": []})
    [option] = result["configOptions"]
    assert option["category"] == "model" and option["type"] == "select"
    assert option["currentValue"] == "tiny:latest"
    assert {o["value"] for o in option["options"]} >= {"tiny:latest", "thinker:latest", "vision:latest"}


async def test_a_relative_cwd_is_refused_with_the_way_out(client):
    with pytest.raises(AcpError) as error:
        await client.request("session/new", {"cwd": "project", "mcpServers": []})
    assert error.value.code == -32602
    assert "absolute path" in error.value.message


async def test_a_prompt_to_an_unknown_session_says_how_to_get_one(client):
    with pytest.raises(AcpError) as error:
        await client.request("session/prompt", {"sessionId": "nope", "prompt": [{"type": "text", "text": "Hi"}]})
    assert error.value.code == -32602 and error.value.data == {"kind": "invalid_params", "field": "sessionId"}
    assert "start one with session/new or session/load" in error.value.message


# -- prompting ---------------------------------------------------------------------------


async def test_a_prompt_streams_thinking_and_answer_then_ends_the_turn(client, fake, workspace):
    fake.script(Reply.text(["Hel", "lo", "!"], thinking=["Let me ", "think"]), model="tiny")
    session = await client.new_session(workspace)
    answer = await prompt(client, session, "Say hello")
    assert answer == {"stopReason": "end_turn"}
    assert client.text(session, "agent_thought_chunk") == "Let me think"
    assert client.text(session) == "Hello!"
    [usage] = client.updates_of(session, "usage_update")
    assert usage["size"] == 8192 and usage["used"] > 0
    assert fake.requests[0].body["messages"][-1] == {"role": "user", "content": "Say hello"}


async def test_the_projects_agents_md_reaches_the_model(client, fake, workspace):
    (workspace / "AGENTS.md").write_text("Answer in French.\n")
    fake.script(Reply.text(["Bonjour"]), model="tiny")
    session = await client.new_session(workspace)
    await prompt(client, session, "Say hello")
    system = fake.requests[0].body["messages"][0]
    assert system["role"] == "system" and system["content"].endswith("Answer in French.")


async def test_a_reply_cut_by_the_length_limit_stops_with_max_tokens(client, fake, workspace):
    fake.script(Reply.text("a long answer", done_reason="length"), model="tiny")
    session = await client.new_session(workspace)
    assert await prompt(client, session, "Go on") == {"stopReason": "max_tokens"}


async def test_the_tool_round_limit_stops_with_max_turn_requests(client, fake, workspace):
    fake.script(*[Reply.text("", tool_calls=[call("find_files", glob="*.py")])] * 11, model="tiny")
    session = await client.new_session(workspace)
    assert await prompt(client, session, "Look around forever") == {"stopReason": "max_turn_requests"}
    last = tool_updates(client, session)[-1]
    assert last["status"] == "failed" and "limit of 10 tool rounds" in last["content"][0]["content"]["text"]


async def test_attached_files_reach_the_model_with_the_editors_unsaved_text(client, fake, workspace):
    fake.script(Reply.text("ok"), model="tiny")
    session = await client.new_session(workspace)
    notes = workspace / "notes.txt"
    client.set_buffers({str(notes): "UNSAVED notes\n"})
    await prompt(
        client, session, "Compare these",
        {"type": "resource_link", "uri": notes.as_uri(), "name": "notes.txt"},
        {"type": "resource", "resource": {"uri": "file:///elsewhere/spec.md", "text": "EMBEDDED spec"}},
    )
    sent = fake.requests[0].body["messages"][-1]["content"]
    assert sent.startswith("Compare these")
    assert "UNSAVED notes" in sent and "saved notes" not in sent
    assert "EMBEDDED spec" in sent


async def test_an_image_reaches_a_vision_model(client, fake, workspace):
    fake.script(Reply.text("A cat."), model="vision")
    session = await client.new_session(workspace)
    await client.request("session/set_config_option", {"sessionId": session, "configId": "model", "value": "vision:latest"})
    await prompt(client, session, "What is this?", {"type": "image", "data": "aW1hZ2U=", "mimeType": "image/png"})
    assert fake.requests[0].body["messages"][-1]["images"] == ["aW1hZ2U="]


async def test_a_link_outside_the_workspace_is_not_read(client, fake, workspace, tmp_path):
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    fake.script(Reply.text("ok"), model="tiny")
    session = await client.new_session(workspace)
    await prompt(client, session, "Read", {"type": "resource_link", "uri": (tmp_path / "secret.txt").as_uri(), "name": "s"})
    sent = fake.requests[0].body["messages"][-1]["content"]
    assert "TOP-SECRET" not in sent and "outside the workspace" in sent


async def test_choosing_another_model_sends_the_next_prompt_to_it(client, fake, workspace):
    fake.script(Reply.text("thought through"), model="thinker")
    session = await client.new_session(workspace)
    result = await client.request(
        "session/set_config_option", {"sessionId": session, "configId": "model", "value": "thinker:latest"}
    )
    assert result["configOptions"][0]["currentValue"] == "thinker:latest"
    await prompt(client, session, "Hi")
    assert fake.requests[0].body["model"] == "thinker:latest"


# -- tools -------------------------------------------------------------------------------


async def test_a_read_shows_as_a_tool_call_and_sees_the_unsaved_buffer(client, fake, workspace):
    fake.script(Reply.text("", tool_calls=[call("read_file", path="src/app.py")]), Reply.text("Read it."), model="tiny")
    session = await client.new_session(workspace)
    client.set_buffers({str(workspace / "src" / "app.py"): "def main():\n    return 'UNSAVED'\n"})
    assert await prompt(client, session, "What does main return?") == {"stopReason": "end_turn"}
    start, *progress = tool_updates(client, session)
    assert start["sessionUpdate"] == "tool_call"
    assert start["kind"] == "read" and start["title"] == "Read src/app.py" and start["status"] == "pending"
    assert start["locations"] == [{"path": str(workspace / "src" / "app.py")}]
    assert start["rawInput"] == {"path": "src/app.py"}
    assert [u["status"] for u in progress] == ["in_progress", "completed"]
    assert all(u["toolCallId"] == start["toolCallId"] for u in progress)
    [tool_result] = [m for m in fake.requests[1].body["messages"] if m["role"] == "tool"]
    assert "UNSAVED" in tool_result["content"]


async def test_an_allowed_edit_asks_then_writes_through_the_client(client, fake, workspace):
    fake.script(
        Reply.text("", tool_calls=[call("edit_file", path="src/app.py", old_text="return 1", new_text="return 2")]),
        Reply.text("Done."), model="tiny",
    )
    client.answer_permissions("allow")
    session = await client.new_session(workspace)
    assert await prompt(client, session, "Return 2") == {"stopReason": "end_turn"}
    [asked] = [m for m in client.agent_messages() if m.get("method") == "session/request_permission"]
    assert [o["kind"] for o in asked["params"]["options"]] == ["allow_once", "allow_always", "reject_once"]
    [diff] = asked["params"]["toolCall"]["content"]
    assert diff == {"type": "diff", "path": str(workspace / "src" / "app.py"),
                    "oldText": "def main():\n    return 1\n", "newText": "def main():\n    return 2\n"}
    [write] = [e for e in client.events if e["event"] == "write"]
    assert write["path"] == str(workspace / "src" / "app.py")
    assert (workspace / "src" / "app.py").read_text() == "def main():\n    return 2\n"
    done = tool_updates(client, session)[-1]
    assert done["status"] == "completed" and done["content"][0]["type"] == "diff"


async def test_a_rejected_edit_changes_nothing_and_fails_the_call(client, fake, workspace):
    fake.script(Reply.text("", tool_calls=[call("write_file", path="new.txt", content="x")]), Reply.text("OK."),
                model="tiny")
    client.answer_permissions("reject")
    session = await client.new_session(workspace)
    await prompt(client, session, "Write")
    assert not (workspace / "new.txt").exists()
    done = tool_updates(client, session)[-1]
    assert done["status"] == "failed" and "did not allow" in done["content"][0]["content"]["text"]


async def test_always_allow_asks_once_for_that_tool(client, fake, workspace):
    edit = call("write_file", path="a.txt", content="1")
    fake.script(Reply.text("", tool_calls=[edit]), Reply.text("", tool_calls=[call("write_file", path="b.txt", content="2")]),
                Reply.text("Both."), model="tiny")
    client.answer_permissions("allow_always")
    session = await client.new_session(workspace)
    await prompt(client, session, "Write two")
    assert len([m for m in client.agent_messages() if m.get("method") == "session/request_permission"]) == 1
    assert (workspace / "a.txt").read_text() == "1" and (workspace / "b.txt").read_text() == "2"


async def test_without_fs_capabilities_edits_go_to_disk(spawn_client, fake, workspace):
    client = await spawn_client()
    await client.initialize(fs=False)
    fake.script(Reply.text("", tool_calls=[call("write_file", path="a.txt", content="disk")]), Reply.text("ok"),
                model="tiny")
    session = await client.new_session(workspace)
    await prompt(client, session, "Write")
    assert (workspace / "a.txt").read_text() == "disk"
    assert not [e for e in client.events if e["event"] == "write"]


async def test_mcp_servers_of_the_session_give_the_model_their_tools(client, fake, workspace):
    time_server = str(real_part("mcp-server-time", "40-mcp-servers.sh"))
    fake.script(Reply.text("", tool_calls=[call("time__get_current_time", timezone="Asia/Tokyo")]),
                Reply.text("It is late."), model="tiny")
    result = await client.request("session/new", {"cwd": str(workspace), "mcpServers": [
        {"name": "time", "command": time_server, "args": ["--local-timezone", "UTC"], "env": []}]})
    session = result["sessionId"]
    assert await prompt(client, session, "What time is it in Tokyo?") == {"stopReason": "end_turn"}
    assert "time__get_current_time" in {t["function"]["name"] for t in fake.requests[0].body["tools"]}
    done = tool_updates(client, session)[-1]
    assert done["status"] == "completed" and "Asia/Tokyo" in done["content"][0]["content"]["text"]
    [result] = [m for m in fake.requests[1].body["messages"] if m["role"] == "tool"]
    assert json.loads(result["content"])["timezone"] == "Asia/Tokyo"


async def test_an_mcp_server_the_agent_cannot_use_is_refused_by_name(client, workspace):
    with pytest.raises(AcpError) as error:
        await client.request("session/new", {"cwd": str(workspace), "mcpServers": [
            {"type": "sse", "name": "old", "url": "http://127.0.0.1:1/sse", "headers": []}]})
    assert error.value.code == -32602 and error.value.data["field"] == "mcpServers.old.type"
    assert "use the server's streamable HTTP endpoint" in error.value.message


# -- cancel ------------------------------------------------------------------------------


async def assert_cancelled_cleanly(client: AcpClient, session: str, answer) -> None:
    assert await answer == {"stopReason": "cancelled"}
    messages = client.agent_messages()
    answered_at = index_of_answer(client, {"stopReason": "cancelled"})
    assert not [m for m in messages[answered_at:] if m.get("method") == "session/update"]


async def test_cancel_before_the_first_token(client, fake, workspace):
    fake.script(Reply.hang(), model="tiny")
    session = await client.new_session(workspace)
    answer = prompt(client, session, "Hi")
    [request] = await fake.wait_for_requests_async(1)
    client.notify("session/cancel", {"sessionId": session})
    await assert_cancelled_cleanly(client, session, answer)
    assert await request.wait_closed_async()
    assert client.text(session) == ""


async def test_cancel_mid_stream_drops_the_model_stream(client, fake, workspace):
    fake.script(Reply.endless("tok "), model="tiny")
    session = await client.new_session(workspace)
    answer = prompt(client, session, "Go")
    await client.wait_for(lambda: client.text(session).count("tok") >= 3)
    client.notify("session/cancel", {"sessionId": session})
    await assert_cancelled_cleanly(client, session, answer)
    assert await fake.requests[0].wait_closed_async()


async def test_cancel_during_a_permission_prompt(client, fake, workspace):
    fake.script(Reply.text("", tool_calls=[call("write_file", path="a.txt", content="x")]), model="tiny")
    client.answer_permissions("hold")
    session = await client.new_session(workspace)
    answer = prompt(client, session, "Write")
    [held] = await client.wait_for(client.held_permissions)
    client.notify("session/cancel", {"sessionId": session})
    client.answer_held(held["key"], "cancelled")  # as ACP asks of a client that cancels
    await assert_cancelled_cleanly(client, session, answer)
    done = tool_updates(client, session)[-1]
    assert done["status"] == "failed" and "ancelled" in done["content"][0]["content"]["text"]
    assert not (workspace / "a.txt").exists()


async def test_the_editor_closing_mid_stream_ends_the_agent_and_the_model_stream(client, fake, workspace):
    fake.script(Reply.endless("tok "), model="tiny")
    session = await client.new_session(workspace)
    answer = prompt(client, session, "Go")
    await client.wait_for(lambda: client.text(session).count("tok") >= 3)
    assert await client.close() == 0
    with pytest.raises(AcpError, match="connection closed"):
        await answer
    assert await fake.requests[0].wait_closed_async()
    assert "Traceback" not in client.stderr()


# -- load --------------------------------------------------------------------------------


async def test_load_in_a_new_process_replays_the_chat_and_continues_it(spawn_client, fake, workspace):
    fake.script(Reply.text("", tool_calls=[call("read_file", path="notes.txt")]), Reply.text("It says saved notes."),
                model="tiny")
    first = await spawn_client()
    await first.initialize()
    session = await first.new_session(workspace)
    await prompt(first, session, "What do the notes say?")
    assert await first.close() == 0

    fake.script(Reply.text("Yes."), model="tiny")
    second = await spawn_client()
    await second.initialize()
    await second.request("session/load", {"sessionId": session, "cwd": str(workspace), "mcpServers": []})
    kinds = [u["sessionUpdate"] for u in second.updates(session)]
    assert kinds == ["user_message_chunk", "tool_call", "agent_message_chunk"]
    assert second.updates(session)[0]["content"]["text"] == "What do the notes say?"
    replayed_call = second.updates_of(session, "tool_call")[0]
    assert replayed_call["status"] == "completed" and "saved notes" in replayed_call["content"][0]["content"]["text"]
    assert second.text(session) == "It says saved notes."

    assert await prompt(second, session, "Sure?") == {"stopReason": "end_turn"}
    history = [m["content"] for m in fake.requests[-1].body["messages"] if m["role"] in ("user", "assistant")]
    assert history[0] == "What do the notes say?" and history[-1] == "Sure?"


async def test_loading_an_unknown_session_says_so(client, workspace):
    with pytest.raises(AcpError) as error:
        await client.request("session/load", {"sessionId": "nope", "cwd": str(workspace), "mcpServers": []})
    assert error.value.code == -32602 and "no chat 'nope'" in error.value.message


# -- errors like serve's -----------------------------------------------------------------


async def test_ollama_unreachable_is_the_same_error_as_serve(spawn_client, workspace, closed_port_url):
    client = await spawn_client(host=closed_port_url)
    await client.initialize()
    session = await client.new_session(workspace)
    with pytest.raises(AcpError) as error:
        await prompt(client, session, "Hi")
    assert error.value.code == -32001
    assert error.value.data["kind"] == "ollama_unreachable"
    assert error.value.message.startswith(f"Cannot reach Ollama at {closed_port_url} ")


async def test_an_unknown_model_is_the_same_error_as_serve(client, workspace):
    session = await client.new_session(workspace)
    with pytest.raises(AcpError) as error:
        await client.request("session/set_config_option", {"sessionId": session, "configId": "model", "value": "nope"})
    assert error.value.code == -32002 and error.value.data["kind"] == "model_not_found"
    assert "ollama pull nope" in error.value.message


async def test_an_ollama_error_is_the_same_error_as_serve(client, fake, workspace):
    fake.script(Reply.error(500, "model runner crashed"), model="tiny")
    session = await client.new_session(workspace)
    with pytest.raises(AcpError) as error:
        await prompt(client, session, "Hi")
    assert error.value.code == -32003 and error.value.data["kind"] == "upstream_error"
    assert error.value.message == "Ollama reported an error: model runner crashed"


# -- run_command --------------------------------------------------------------------------


async def test_a_command_asks_with_its_exact_text_and_streams_its_output(client, fake, workspace):
    command = "for i in 1 2 3 4; do echo step $i; sleep 0.3; done; exit 2"
    fake.script(Reply.text("", tool_calls=[call("run_command", command=command)]), Reply.text("It failed."), model="tiny")
    client.answer_permissions("allow_always")
    session = await client.new_session(workspace)

    assert await prompt(client, session, "Run the steps") == {"stopReason": "end_turn"}

    [asked] = [m["params"] for m in client.agent_messages() if m.get("method") == "session/request_permission"]
    assert (asked["toolCall"]["title"], asked["toolCall"]["kind"]) == (command, "execute")
    assert asked["toolCall"]["rawInput"] == {"command": command}
    assert "Always allow this exact command" in [o["name"] for o in asked["options"]]
    updates = tool_updates(client, session)
    assert (updates[0]["title"], updates[0]["kind"]) == (command, "execute")
    streamed = [u["content"][0]["content"]["text"] for u in updates if u.get("status") == "in_progress" and u.get("content")]
    assert streamed and streamed[0].startswith("step 1\n") and "step 4" not in streamed[0]
    assert updates[-1]["status"] == "completed"
    assert "[exit code 2 after" in updates[-1]["content"][0]["content"]["text"]
    [tool_result] = [m for m in fake.requests[1].body["messages"] if m["role"] == "tool"]
    assert "step 4" in tool_result["content"]


async def test_allow_command_runs_matching_commands_without_asking(spawn_client, fake, workspace):
    client = await spawn_client("--allow-command", "echo")
    await client.initialize()
    fake.script(Reply.text("", tool_calls=[call("run_command", command="echo hi"), call("run_command", command="echo hi; id")]),
                Reply.text("ok"), model="tiny")
    client.answer_permissions("reject")
    session = await client.new_session(workspace)

    await prompt(client, session, "Say hi")

    asked = [m["params"]["toolCall"]["title"] for m in client.agent_messages() if m.get("method") == "session/request_permission"]
    assert asked == ["echo hi; id"]
    results = [m["content"] for m in fake.requests[1].body["messages"] if m["role"] == "tool"]
    assert results[0].startswith("$ echo hi\nhi\n[exit code 0") and "did not allow" in results[1]
