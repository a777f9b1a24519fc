"""`run_command` end to end: the fake model asks for a command, the daemon asks the
test (playing the editor) for permission, runs it in a real shell in a temporary
workspace, streams its output and hands it to the model."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError
from real_parts import real_part
from test_cli import chat_on_a_terminal, finish, kill_if_running, read_terminal_until, run_cli
from test_e2e_tools import answer_permission, call, open_daemon, statuses, tool_messages

PY = sys.executable


def run(command: str, **arguments: Any) -> dict[str, Any]:
    return call("run_command", command=command, **arguments)


def command_updates(daemon: Daemon, chat_id: str = "c1") -> list[dict[str, Any]]:
    return [n for n in daemon.notifications("chat/toolCall", chat_id) if n["name"] == "run_command"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "README.md").write_text("hello\n")
    return root


async def test_a_command_runs_in_the_workspace_once_allowed(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    asked = answer_permission(daemon, "allow")
    command = "pwd; cat README.md; echo to-stderr >&2; exit 3"
    fake.script(Reply.text([], tool_calls=[run(command)]), Reply.text(["It failed."]))

    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "run it"})

    assert result["stopReason"] == "end_turn"
    [question] = asked
    assert (question["name"], question["title"], question["arguments"]) == ("run_command", command, {"command": command})
    [tool] = tool_messages(fake, 1)
    assert tool["tool_name"] == "run_command"
    assert f"{workspace}\nhello\nto-stderr\n" in tool["content"]
    assert "[exit code 3 after" in tool["content"]
    assert statuses(daemon)[:3] == ["pending", "awaiting_permission", "running"]
    assert statuses(daemon)[-1] == "completed"
    assert "exit code 3" in command_updates(daemon)[-1]["output"]
    assert "run_command" in [tool["function"]["name"] for tool in fake.requests[0].body["tools"]]


async def test_a_denied_command_does_not_run(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace, {"autoApprove": ["run_command", "write_file"]})
    asked = answer_permission(daemon, "deny")
    fake.script(Reply.text([], tool_calls=[run("touch made-it")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"})

    assert len(asked) == 1, "autoApprove does not cover run_command"
    assert not (workspace / "made-it").exists()
    assert statuses(daemon) == ["pending", "awaiting_permission", "denied"]
    assert "did not allow" in tool_messages(fake, 1)[0]["content"]


async def test_allow_always_holds_for_that_exact_command_only(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    asked = answer_permission(daemon, "allow_always")
    fake.script(
        Reply.text([], tool_calls=[run("echo one")]),
        Reply.text([], tool_calls=[run("echo one"), run("echo one; echo two"), run("echo  one")]),
        Reply.text(["ok"]),
    )

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"})

    assert [question["title"] for question in asked] == ["echo one", "echo one; echo two", "echo  one"]


async def test_allowed_commands_run_by_whole_word_prefix_and_never_with_shell_syntax(
    spawn_daemon, fake: FakeOllama, workspace: Path
):
    daemon = await open_daemon(spawn_daemon, workspace, {"allowedCommands": ["echo", "git status"]})
    asked = answer_permission(daemon, "deny")
    allowed = ["echo fine", "echo", "echo 'quoted words'", "git status --short"]
    refused = [
        "echox fine", "git statusx", "git log", "echo a; touch evil", "echo a && touch evil", "echo a | tee evil",
        "echo $(touch evil)", "echo `touch evil`", "echo a > evil", "echo a\ntouch evil", "echo a & touch evil",
        "echo 'unclosed", "echo a || touch evil", "echo a < /etc/passwd", "echo 'even quoted; it is asked'",
    ]  # fmt: skip
    fake.script(Reply.text([], tool_calls=[run(command) for command in allowed + refused]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"})

    assert [question["title"] for question in asked] == refused
    assert not (workspace / "evil").exists()
    results = [message["content"] for message in tool_messages(fake, 1)]
    assert results[0].startswith("$ echo fine\nfine\n[exit code 0")
    assert "quoted words" in results[2]


async def test_output_streams_while_the_command_runs(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    answer_permission(daemon, "allow")
    fake.script(Reply.text([], tool_calls=[run("for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.3; done")]),
                Reply.text(["ok"]))
    started = time.monotonic()

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"})

    took = time.monotonic() - started
    updates = [(at, m["params"]) for at, m in zip(daemon.received_at, daemon.messages, strict=True)
               if m.get("method") == "chat/toolCall" and m["params"]["status"] == "running" and "output" in m["params"]]
    assert len(updates) >= 3, updates
    assert len(updates) <= took * 4 + 1, "at most about four updates a second"
    assert updates[0][1]["output"].startswith("line 1\n")
    assert "line 8" not in updates[0][1]["output"], "the first update came while it ran"
    lengths = [params["outputLength"] for _, params in updates]
    assert lengths == sorted(set(lengths)) and lengths[-1] == len(updates[-1][1]["output"])
    assert command_updates(daemon)[-1]["status"] == "completed"


async def test_twenty_megabytes_reach_the_model_capped(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    answer_permission(daemon, "allow")
    script = "import sys\nw = sys.stdout.buffer.write\nw(b'FIRST LINE\\n')\nfor i in range(200_000): w(b'%099d\\n' % i)\nw(b'LAST LINE\\n')"
    fake.script(Reply.text([], tool_calls=[run("echo warm-up")]), Reply.text(["ok"]))
    await daemon.request("chat/start", {"chatId": "c0", "prompt": "load what a command turn loads"})
    fake.script(Reply.text([], tool_calls=[run(f"{PY} -c \"{script}\"")]), Reply.text(["ok"]))
    process = psutil.Process(daemon.process.pid)
    before = _peak_rss(process)

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"}, timeout=60)

    [tool] = tool_messages(fake, 3)
    content = tool["content"]
    assert len(content.encode()) < 16 * 1024
    assert "FIRST LINE" in content and "LAST LINE" in content and "[exit code 0" in content
    total = len("FIRST LINE\n") + 200_000 * 100 + len("LAST LINE\n")
    assert re.search(rf"\[\.\.\. [\d,]+ bytes \([\d,]+ lines\) cut here: the output was {total:,} bytes", content), content[:3000]
    grown = _peak_rss(process) - before
    assert grown < 5 * 1024 * 1024, f"the daemon's peak memory grew by {grown / 2**20:.1f} MiB"


def _peak_rss(process: psutil.Process) -> int:
    status = Path(f"/proc/{process.pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024


async def test_bytes_that_are_not_utf8_are_replaced(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    answer_permission(daemon, "allow")
    fake.script(Reply.text([], tool_calls=[run(r"printf 'ok \377\376 done \303'")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"})

    assert "ok \ufffd\ufffd done \ufffd\n[exit code 0" in tool_messages(fake, 1)[0]["content"]
    assert command_updates(daemon)[-1]["status"] == "completed"


async def test_the_daemons_credentials_are_not_in_the_environment(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await spawn_daemon(env={
        "OLLAMA_API_KEY": "ollama-key-5up3r", "OPENAI_API_KEY": "openai-key-s3cr3t",
        "A_COPY_OF_THE_KEY": "ollama-key-5up3r", "HEADER_TOKEN": "header-t0ken-value", "KEEP_ME": "visible",
    })  # fmt: skip
    await daemon.initialize(
        {"model": "tiny", "allowedCommands": ["env"], "headers": {"X-Team-Token": "header-t0ken-value"}},
        rootUri=workspace.as_uri(),
    )
    fake.script(Reply.text([], tool_calls=[run("env")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"})

    content = tool_messages(fake, 1)[0]["content"]
    assert "KEEP_ME=visible" in content
    for secret in ("ollama-key-5up3r", "openai-key-s3cr3t", "header-t0ken-value", "OLLAMA_API_KEY", "OPENAI_API_KEY"):
        assert secret not in content


async def test_a_timeout_stops_the_command(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace, {"commandTimeoutSeconds": 1})
    answer_permission(daemon, "allow")
    fake.script(Reply.text([], tool_calls=[run("echo before; sleep 30", timeout=100)]), Reply.text(["ok"]))
    started = time.monotonic()

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"})

    assert time.monotonic() - started < 10
    [tool] = tool_messages(fake, 1)
    assert "before" in tool["content"]
    assert "Error: timed out after 1 s" in tool["content"]
    last = command_updates(daemon)[-1]
    assert last["status"] == "failed" and last["error"].startswith("timed out after 1 s")


async def test_what_a_command_leaves_running_ends_with_it(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    answer_permission(daemon, "allow")
    fake.script(Reply.text([], tool_calls=[run("sleep 300 & echo background $!")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"}, timeout=20)

    content = tool_messages(fake, 1)[0]["content"]
    [pid] = re.findall(r"background (\d+)", content)
    assert "[exit code 0" in content
    assert not _alive(int(pid))


async def test_a_process_that_leaves_the_group_still_ends_with_the_command(
    spawn_daemon, fake: FakeOllama, workspace: Path
):
    daemon = await open_daemon(spawn_daemon, workspace)
    answer_permission(daemon, "allow")
    escaper = (
        f"{PY} -c 'import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); os.setsid();"
        f" print(\"escaper\", os.getpid(), flush=True); time.sleep(300)'"
    )
    # In a subshell that exits at once: the escaper is an orphan in a session of its own.
    fake.script(Reply.text([], tool_calls=[run(f"({escaper} &); sleep 0.5; echo done")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"}, timeout=20)

    content = tool_messages(fake, 1)[0]["content"]
    [pid] = re.findall(r"escaper (\d+)", content)
    assert "done\n[exit code 0" in content
    assert not _alive(int(pid))


@pytest.mark.parametrize("how", ["chat/cancel", "$/cancelRequest", "daemon exit", "daemon killed"])
async def test_a_cancel_ends_every_process_of_the_command(spawn_daemon, fake: FakeOllama, workspace: Path, how):
    daemon = await open_daemon(spawn_daemon, workspace)
    answer_permission(daemon, "allow")
    stubborn = f"{PY} -c 'import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(\"child\", os.getpid(), flush=True); time.sleep(300)'"
    fake.script(Reply.text([], tool_calls=[run(f"echo shell $$; {stubborn} & wait")]), Reply.text(["never asked"]))
    msg_id, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "run"})
    output = await daemon.wait_for(lambda: next(
        (u["output"] for u in command_updates(daemon) if "child" in u.get("output", "")), None))
    pids = [int(pid) for pid in re.findall(r"(?:shell|child) (\d+)", output)]
    assert len(pids) == 2 and all(psutil.pid_exists(pid) for pid in pids)

    cancelled = time.monotonic()
    if how == "chat/cancel":
        await daemon.request("chat/cancel", {"chatId": "c1"})
        assert (await answer)["stopReason"] == "cancelled"
    elif how == "$/cancelRequest":
        daemon.cancel_request(msg_id)
        with pytest.raises(RpcError, match="-32800"):
            await answer
    elif how == "daemon exit":
        daemon.process.stdin.close()
        await daemon.wait_exit()
    else:
        daemon.process.kill()  # SIGKILL: the command's supervisor notices (PR_SET_PDEATHSIG)
        await daemon.process.wait()

    while any(_alive(pid) for pid in pids) and time.monotonic() - cancelled < 3:
        await asyncio.sleep(0.05)
    assert not any(_alive(pid) for pid in pids), f"still running {time.monotonic() - cancelled:.1f} s after the cancel"
    if how.startswith("$") or how.startswith("chat"):
        assert command_updates(daemon)[-1]["status"] == "cancelled"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- the command line: `ollama-chatd chat` -------------------------------------------------


async def test_the_cli_prints_a_commands_output_live_and_escaped(fake: FakeOllama, workspace: Path):
    (workspace / "emit.py").write_text(
        "import time\nfor i in range(4):\n    print('line', i, flush=True)\n    time.sleep(0.3)\nprint('\\x1b[2J hidden?')\n"
    )
    fake.script(Reply.text([], tool_calls=[run(f"{PY} emit.py")]), Reply.text(["Ran it."]))

    process = await run_cli(fake, "--model", "tiny", "--workspace", str(workspace), "--allow-command", PY, "run it")
    code, out, err = await finish(process)

    assert code == 0, err
    assert out == "Ran it.\n"
    assert "line 0\nline 1\nline 2\nline 3\n\\x1b[2J hidden?\n" in err
    assert "\x1b[2J" not in err
    assert re.search(r"run_command .*emit\.py completed: \[exit code 0 after [\d.]+ s\]", err), err
    assert "line 3" in tool_messages(fake, 1)[0]["content"]


async def test_the_cli_never_runs_a_command_on_yes_alone(fake: FakeOllama, workspace: Path):
    fake.script(Reply.text([], tool_calls=[run("touch made-it")]), Reply.text(["ok"]))

    code, _, err = await finish(await run_cli(fake, "--model", "tiny", "--yes", "--workspace", str(workspace), "run"))

    assert code == 0, err
    assert not (workspace / "made-it").exists()
    assert "refused (--yes allows changes, not commands; pass --allow-command PREFIX" in err


async def test_the_cli_asks_on_a_terminal_with_the_exact_command(fake: FakeOllama, workspace: Path):
    fake.script(Reply.text([], tool_calls=[run("echo asked && echo ran")]), Reply.text(["done"]))
    process, controller = await chat_on_a_terminal(fake, workspace, "run")
    try:
        screen = await read_terminal_until(controller, b"[N]o: ")
        assert f"Run in {workspace}:\r\n$ echo asked && echo ran".encode() in screen
        assert b"[a]lways (this exact command)" in screen
        os.write(controller, b"y\n")
        screen = await read_terminal_until(controller, None)
        code = await asyncio.wait_for(process.wait(), 10)
    finally:
        kill_if_running(process)
        os.close(controller)
    assert code == 0, screen.decode(errors="replace")
    assert b"asked\r\nran" in screen


# -- the sandbox (bubblewrap) -----------------------------------------------------------------


async def test_in_the_sandbox_only_the_workspace_and_tmp_are_writable_and_there_is_no_network(
    spawn_daemon, fake: FakeOllama, workspace: Path
):
    real_part("bwrap", "50-bubblewrap.sh")
    daemon = await open_daemon(spawn_daemon, workspace, {"commandSandbox": True})
    answer_permission(daemon, "allow")
    port = fake.url.rsplit(":", 1)[1]
    outside = Path("/var/tmp") / f"chatd-sandbox-probe-{os.getpid()}"  # /tmp is the sandbox's own
    probe = f"import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), 2)\n    print('NETWORK')\nexcept OSError:\n    print('NO-NETWORK')"
    command = (
        f"echo in > inside.txt; echo scratch > /tmp/scratch && cat /tmp/scratch; echo out > {outside};"
        f" {PY} -c \"{probe}\"; setsid sleep 317 & echo started"
    )
    fake.script(Reply.text([], tool_calls=[run(command)]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "run"})

    content = tool_messages(fake, 1)[0]["content"]
    assert (workspace / "inside.txt").read_text() == "in\n"
    assert not outside.exists()
    assert not Path("/tmp/scratch").exists()
    assert "scratch\n" in content and "Read-only file system" in content
    assert "NO-NETWORK" in content and "started" in content
    [spec] = [tool for tool in fake.requests[0].body["tools"] if tool["function"]["name"] == "run_command"]
    assert "sandbox" in spec["function"]["description"] and "no network" in spec["function"]["description"]
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "317"]], (
        "a process that left the group died with the sandbox"
    )


async def test_the_sandbox_without_bubblewrap_fails_initialize_with_the_way_out(spawn_daemon, tmp_path: Path):
    daemon = await spawn_daemon(env={"PATH": str(tmp_path)})
    with pytest.raises(RpcError) as raised:
        await daemon.initialize({"commandSandbox": True})
    assert raised.value.data == {"kind": "invalid_params", "field": "initializationOptions.commandSandbox"}
    assert "apt install bubblewrap" in raised.value.message
