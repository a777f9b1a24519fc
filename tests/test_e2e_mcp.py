"""MCP servers as tools, end to end: the real daemon over stdio, real MCP servers that
nobody here wrote (npm's server-everything over stdio and streamable HTTP, PyPI's
mcp-server-time), installed by scripts/setup/40-mcp-servers.sh; the fake Ollama
plays the model that calls their tools."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from fake_ollama import FakeModel, FakeOllama, Reply
from harness import Daemon
from real_parts import real_part
from test_cli import finish, run_cli
from test_e2e_tools import answer_permission

SETUP = "40-mcp-servers.sh"


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"function": {"name": name, "arguments": arguments}}


@pytest.fixture
def everything() -> dict[str, Any]:
    return {"command": str(real_part("mcp-server-everything", SETUP))}


@pytest.fixture
def time_server() -> dict[str, Any]:
    return {"command": str(real_part("mcp-server-time", SETUP)), "args": ["--local-timezone", "UTC"]}


@pytest.fixture
def http_everything(everything: dict[str, Any]):
    """server-everything in its streamable HTTP mode on a free port of 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [everything["command"], "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # it says when it listens
            if "listening on port" in line:
                break
        else:
            pytest.fail(f"server-everything did not start (exit {process.wait()})")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.kill()
        process.wait()


async def open_daemon(spawn_daemon, tmp_path: Path, servers: dict[str, Any], editor_pid: int | None = None, **options: Any) -> Daemon:
    workspace = tmp_path / "project"
    workspace.mkdir(exist_ok=True)
    daemon = await spawn_daemon()
    await daemon.initialize(
        {"model": "tiny", "mcpServers": servers, **options},
        processId=editor_pid or os.getpid(),
        rootUri=workspace.as_uri(),
        workspaceFolders=[{"uri": workspace.as_uri(), "name": "project"}],
    )
    return daemon


async def servers_settled(daemon: Daemon, timeout: float = 30.0) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        # The SDK's import (pydantic building its models) holds the GIL for ~0.8 s on a
        # worker thread; on a busy machine that is seconds, hence the long answer time.
        servers = (await daemon.request("chat/mcp", {}, timeout=timeout))["servers"]
        if all(server["state"] != "starting" for server in servers):
            return {server["name"]: server for server in servers}
        if time.monotonic() > deadline:
            raise TimeoutError(f"servers still starting: {servers}\n{daemon.stderr()}")
        await asyncio.sleep(0.2)  # polling: the daemon announces no state change


def tool_results(fake: FakeOllama, request_index: int) -> list[dict[str, Any]]:
    return [m for m in fake.requests[request_index].body["messages"] if m["role"] == "tool"]


def statuses(daemon: Daemon) -> list[str]:
    return [n["status"] for n in daemon.notifications("chat/toolCall", "c1")]


def server_processes(daemon: Daemon) -> list[psutil.Process]:
    return psutil.Process(daemon.process.pid).children(recursive=True)


async def test_tools_are_offered_by_server_and_name_in_a_stable_order(spawn_daemon, fake, tmp_path, everything, time_server):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything, "time server": time_server})
    assert [s["state"] for s in (await daemon.request("chat/mcp", {}))["servers"]] == ["starting", "starting"]
    fake.script(Reply.text(["one"]), Reply.text(["two"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"}, timeout=40)
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "again"})

    servers = await servers_settled(daemon)
    assert servers["everything"]["state"] == "ready" and servers["everything"]["transport"] == "stdio"
    assert servers["time server"]["tools"] == 2
    first, second = ([t["function"]["name"] for t in r.body["tools"]] for r in fake.requests)
    assert first == second  # the same list, in the same order: the prompt cache holds
    mcp_names = [name for name in first if "__" in name]
    assert mcp_names == sorted(mcp_names)
    assert {"everything__get-sum", "everything__echo", "time_server__get_current_time", "time_server__convert_time"} <= set(mcp_names)
    assert first[:6] == ["read_file", "list_directory", "search_text", "find_files", "write_file", "edit_file"]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", name) for name in first)
    [sum_tool] = [t["function"] for t in fake.requests[0].body["tools"] if t["function"]["name"] == "everything__get-sum"]
    assert set(sum_tool["parameters"]["properties"]) == {"a", "b"}
    assert sum_tool["description"]


async def test_a_read_only_tool_runs_without_asking_and_its_result_reaches_the_model(spawn_daemon, fake, tmp_path, everything, time_server):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything, "time": time_server})
    asked = answer_permission(daemon, "deny")
    fake.script(
        Reply.text([], tool_calls=[call("everything__get-sum", a=2, b=40), call("time__get_current_time", timezone="Europe/Paris")]),
        Reply.text(["42, and the time."]),
    )

    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "add"}, timeout=40)

    assert result["message"]["content"] == "42, and the time."
    sum_result, time_result = tool_results(fake, 1)
    assert sum_result["tool_name"] == "everything__get-sum" and "42" in sum_result["content"]
    assert json.loads(time_result["content"])["timezone"] == "Europe/Paris"
    assert asked == []
    assert statuses(daemon) == ["pending", "running", "completed"] * 2


async def test_a_tool_not_marked_read_only_asks_with_its_arguments_and_allow_always_holds(spawn_daemon, fake, tmp_path, everything):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything})
    asked = answer_permission(daemon, "allow_always")
    toggle = call("everything__toggle-simulated-logging")
    fake.script(Reply.text([], tool_calls=[toggle]), Reply.text([], tool_calls=[toggle]), Reply.text(["done"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "toggle twice"}, timeout=40)

    [question] = asked  # the second call ran without asking
    assert question["name"] == "everything__toggle-simulated-logging"
    assert question["arguments"] == {} and question["diff"] == ""
    assert "toggle-simulated-logging" in question["title"] and "everything" in question["title"]
    assert statuses(daemon) == ["pending", "awaiting_permission", "running", "completed", "pending", "running", "completed"]
    first, second = (m["content"] for m in tool_results(fake, 2))
    assert "started" in first.lower() and "stopped" in second.lower()


async def test_a_denied_call_does_not_run_and_the_model_is_told(spawn_daemon, fake, tmp_path, everything):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything})
    answer_permission(daemon, "deny")
    fake.script(Reply.text([], tool_calls=[call("everything__toggle-simulated-logging")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "toggle"}, timeout=40)

    [result] = tool_results(fake, 1)
    assert "did not allow" in result["content"]
    assert statuses(daemon) == ["pending", "awaiting_permission", "denied"]


async def test_structured_content_images_and_errors_become_text_for_the_model(spawn_daemon, fake, tmp_path, everything):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything})
    fake.script(
        Reply.text([], tool_calls=[
            call("everything__get-structured-content", location="Chicago"),
            call("everything__get-tiny-image"),
            call("everything__get-sum", a="not a number", b=1),
        ]),
        Reply.text(["ok"]),
    )

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "go"}, timeout=40)

    structured, image, error = tool_results(fake, 1)
    assert set(json.loads(structured["content"])) >= {"temperature", "conditions", "humidity"}
    assert "[image 1: image/png" in image["content"] and "tiny cannot see images" in image["content"]
    assert "images" not in image
    assert error["content"].startswith("Error:")
    assert statuses(daemon)[-1] == "failed"


async def test_a_model_that_can_see_gets_the_images(spawn_daemon, fake, tmp_path, everything):
    fake.models["seer"] = FakeModel("seer", "gemma3", "4.3B", capabilities=["completion", "tools", "vision"], context_length=8192)
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything}, model="seer")
    fake.script(Reply.text([], tool_calls=[call("everything__get-tiny-image")]), Reply.text(["a tiny image"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "show"}, timeout=40)

    [image] = tool_results(fake, 1)
    [png] = image["images"]
    assert base64.b64decode(png).startswith(b"\x89PNG")
    assert "cannot see" not in image["content"]


async def test_cancel_during_a_slow_tool_ends_the_turn_at_once_and_tells_the_server(spawn_daemon, fake, tmp_path, everything):
    sent_to_server = tmp_path / "to-server.jsonl"
    recording = {  # the same server, with what the daemon writes to it copied to a file
        "command": "sh",
        "args": ["-c", 'tee "$0" | exec "$1"', str(sent_to_server), everything["command"]],
    }
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": recording})
    fake.script(Reply.text([], tool_calls=[call("everything__trigger-long-running-operation", duration=60, steps=60)]))
    _, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "slow"})
    await daemon.wait_for(lambda: "running" in statuses(daemon), timeout=40)

    started = time.monotonic()
    assert await daemon.request("chat/cancel", {"chatId": "c1"}) == {"cancelled": True}
    result = await answer

    assert time.monotonic() - started < 1.0
    assert result["stopReason"] == "cancelled"
    assert statuses(daemon)[-1] == "cancelled"
    sent = await daemon.wait_for(lambda: _cancellations(sent_to_server))
    [tools_call] = [m for m in _lines(sent_to_server) if m.get("method") == "tools/call"]
    assert sent[0]["params"]["requestId"] == tools_call["id"]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _cancellations(path: Path) -> list[dict[str, Any]]:
    return [m for m in _lines(path) if m.get("method") == "notifications/cancelled"]


async def test_a_call_past_the_timeout_is_cancelled_and_reported(spawn_daemon, fake, tmp_path, everything):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything}, mcpCallTimeoutSeconds=0.5)
    fake.script(
        Reply.text([], tool_calls=[call("everything__trigger-long-running-operation", duration=30, steps=30)]),
        Reply.text(["ok"]),
    )

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "slow"}, timeout=40)

    [result] = tool_results(fake, 1)
    assert "did not answer within 0.5 s" in result["content"]
    assert statuses(daemon)[-1] == "failed"


async def test_a_server_command_that_does_not_exist_fails_alone(spawn_daemon, fake, tmp_path, time_server, closed_port_url):
    daemon = await open_daemon(spawn_daemon, tmp_path, {
        "ghost": {"command": "no-such-mcp-server-anywhere"},
        "nowhere": {"url": f"{closed_port_url}/mcp"},
        "time": time_server,
    })
    fake.script(Reply.text(["still here"]))

    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"}, timeout=40)

    assert result["message"]["content"] == "still here"
    servers = await servers_settled(daemon)
    assert servers["ghost"]["state"] == "failed"
    assert "command not found: no-such-mcp-server-anywhere" in servers["ghost"]["reason"]
    assert servers["nowhere"]["state"] == "failed"
    assert servers["nowhere"]["reason"].startswith(f"cannot use {closed_port_url}/mcp: ")
    assert servers["time"]["state"] == "ready"
    shown = await daemon.wait_for(lambda: len(daemon.notifications("window/showMessage")) == 2 and daemon.notifications("window/showMessage"))
    assert sorted(m["message"].split(":")[1] for m in shown) == [" MCP server 'ghost' failed", " MCP server 'nowhere' failed"]


async def test_a_killed_server_is_restarted_on_its_next_use(spawn_daemon, fake, tmp_path, everything):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything})
    fake.script(Reply.text([], tool_calls=[call("everything__echo", message="one")]), Reply.text(["ok"]))
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "echo"}, timeout=40)
    [first] = server_processes(daemon)
    first.kill()
    first.wait(5)
    fake.script(
        Reply.text([], tool_calls=[call("everything__echo", message="two"), call("everything__echo", message="three")]),
        Reply.text(["ok"]),
    )

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "echo again"}, timeout=40)

    crashed, restarted = (m["content"] for m in tool_results(fake, 3)[-2:])
    assert "stopped during the call" in crashed
    assert restarted == "Echo: three"
    [second] = server_processes(daemon)
    assert second.pid != first.pid
    assert (await servers_settled(daemon))["everything"]["state"] == "ready"


async def test_a_server_gets_its_configured_environment_and_not_the_daemons(spawn_daemon, fake, tmp_path, everything):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": {**everything, "env": {"GREETING": "hello"}}})
    fake.script(Reply.text([], tool_calls=[call("everything__get-env")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "env"}, timeout=40)

    [result] = tool_results(fake, 1)
    environment = json.loads(result["content"])
    assert environment["GREETING"] == "hello"
    assert "OLLAMA_HOST" not in environment  # the daemon has it (the fake's address)
    assert set(environment) <= {"GREETING", "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM"}


async def test_a_streamable_http_server_serves_tools(spawn_daemon, fake, tmp_path, http_everything):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"remote": {"url": http_everything, "headers": {"X-Test": "1"}}})
    fake.script(Reply.text([], tool_calls=[call("remote__echo", message="over http")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "echo"}, timeout=40)

    assert [m["content"] for m in tool_results(fake, 1)] == ["Echo: over http"]
    assert (await servers_settled(daemon))["remote"]["transport"] == "http"


async def test_no_server_process_is_left_after_exit(spawn_daemon, fake, tmp_path, everything, time_server):
    daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything, "time": time_server})
    await servers_settled(daemon)
    servers = server_processes(daemon)
    assert len(servers) >= 2

    assert await daemon.shutdown(timeout=15) == 0

    _, alive = psutil.wait_procs(servers, timeout=5)
    assert alive == []


async def test_no_server_process_is_left_after_the_editor_is_killed(spawn_daemon, fake, tmp_path, everything):
    editor = subprocess.Popen(["sleep", "600"])
    try:
        daemon = await open_daemon(spawn_daemon, tmp_path, {"everything": everything}, editor_pid=editor.pid)
        await servers_settled(daemon)
        servers = server_processes(daemon)
        assert servers
        editor.kill()  # SIGKILL: the editor cannot say goodbye

        assert await daemon.wait_exit(timeout=15) == 0
        _, alive = psutil.wait_procs(servers, timeout=5)
        assert alive == []
    finally:
        editor.kill()
        editor.wait()


async def test_the_cli_takes_mcp_servers_from_a_file(fake, tmp_path, time_server):
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"time": time_server}}))
    fake.script(Reply.text([], tool_calls=[call("time__get_current_time", timezone="Asia/Tokyo")]), Reply.text(["It is late."]))

    code, out, err = await finish(await run_cli(fake, "--model", "tiny", "--mcp-config", str(config), "what", "time"))

    assert code == 0, err
    assert out == "It is late.\n"
    [result] = tool_results(fake, 1)
    assert json.loads(result["content"])["timezone"] == "Asia/Tokyo"


async def test_the_cli_names_the_problem_in_an_mcp_file(fake, tmp_path):
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"broken": {"command": "x", "args": "not a list"}}}))

    code, _, err = await finish(await run_cli(fake, "--model", "tiny", "--mcp-config", str(config), "hi"))

    assert code == 2
    assert f"{config}: `mcpServers.broken.args` must be a list of strings" in err
    assert fake.requests == []


async def test_without_servers_chat_mcp_lists_none(daemon):
    assert await daemon.request("chat/mcp", None) == {"servers": []}
