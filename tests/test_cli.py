"""`ollama-chatd chat` end to end: the real CLI, which spawns the real daemon."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import http.server
import json
import os
import pty
import re
import signal
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from fake_ollama import FakeOllama, Reply
from ollama_chatd.cli import main


async def run_cli(fake: FakeOllama, *args: str, cwd: Path | None = None, stdin=asyncio.subprocess.DEVNULL,
                  env: dict[str, str] | None = None):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", "chat", *args,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "OLLAMA_HOST": fake.url, "OLLAMA_CHATD_MODEL": "", **(env or {})},
        cwd=cwd,
    )


async def finish(process) -> tuple[int, str, str]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, stdout.decode(), stderr.decode()


async def test_the_answer_is_printed_with_a_summary(fake: FakeOllama):
    fake.script(Reply.text(["Bonjour", ", ", "le monde ", "🌍"], eval_count=4))
    code, out, err = await finish(await run_cli(fake, "--model", "tiny", "say", "hello"))
    assert code == 0, err
    assert out == "Bonjour, le monde 🌍\n"
    assert "4 tokens" in err
    assert fake.requests[0].body["messages"][-1]["content"] == "say hello"


async def test_thinking_goes_to_stderr(fake: FakeOllama):
    fake.script(Reply.text(["42"], thinking=["pondering"]))
    code, out, err = await finish(await run_cli(fake, "--model", "thinker", "--think", "q"))
    assert code == 0
    assert out == "42\n"
    assert "pondering" in err


async def test_json_prints_every_message_as_a_line(fake: FakeOllama):
    fake.script(Reply.text(["a", "b"]))
    code, out, _ = await finish(await run_cli(fake, "--model", "tiny", "--json", "q"))
    messages = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    tokens = [m["params"] for m in messages if m.get("method") == "chat/token"]
    assert "".join(t["text"] for t in tokens) == "ab"  # one or two notifications: tokens may merge
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    assert messages[-1]["result"]["stopReason"] == "end_turn"


async def test_errors_print_the_daemons_message(fake: FakeOllama):
    code, out, err = await finish(await run_cli(fake, "--model", "nonesuch", "q"))
    assert code == 1
    assert out == ""
    assert "ollama pull nonesuch" in err


async def test_continuing_a_stored_chat_by_id(fake: FakeOllama, tmp_path: Path):
    code, _, err = await finish(await run_cli(fake, "--model", "tiny", "--chat", "mine", "first", cwd=tmp_path))
    assert code == 0
    assert "(mine)" in err
    code, out, _ = await finish(await run_cli(fake, "--chat", "mine", "second", cwd=tmp_path))
    assert code == 0
    assert [m["content"] for m in fake.requests[1].body["messages"]] == ["first", "echo: first", "second"]
    assert fake.requests[1].body["model"] == "tiny"  # the chat remembers its model


async def test_ctrl_c_cancels_prints_what_came_and_exits_130(fake: FakeOllama):
    fake.script(Reply.endless(token="word ", delay=0.01))
    process = await run_cli(fake, "--model", "tiny", "go")
    first = b""
    while len(first) < 10:
        first += await asyncio.wait_for(process.stdout.read(20), 10)
    process.send_signal(signal.SIGINT)
    code, rest, err = await finish(process)
    assert code == 130
    assert (first.decode() + rest).startswith("word word")
    assert "cancelled" in err
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 2.0)


async def test_changes_are_refused_when_stdin_is_not_a_terminal(fake: FakeOllama, tmp_path: Path):
    fake.script(
        Reply.text([], tool_calls=[{"function": {"name": "write_file", "arguments": {"path": "a.txt", "content": "x"}}}]),
        Reply.text(["ok"]),
    )
    code, _, err = await finish(await run_cli(fake, "--model", "tiny", "--workspace", str(tmp_path), "write"))
    assert code == 0
    assert not (tmp_path / "a.txt").exists()
    assert "--yes" in err


async def test_yes_allows_changes(fake: FakeOllama, tmp_path: Path):
    fake.script(
        Reply.text([], tool_calls=[{"function": {"name": "write_file", "arguments": {"path": "a.txt", "content": "x\n"}}}]),
        Reply.text(["written"]),
    )
    code, out, err = await finish(
        await run_cli(fake, "--model", "tiny", "--yes", "--workspace", str(tmp_path), "write")
    )
    assert code == 0, err
    assert (tmp_path / "a.txt").read_text() == "x\n"
    assert "write_file a.txt completed" in err
    assert out == "written\n"


@pytest.mark.parametrize("args", [["serve", "--help"], ["chat", "--help"], ["--version"]])
async def test_help_and_version(args):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    assert b"ollama-chatd" in out or b"usage" in out


# -- as a new user meets it -------------------------------------------------------------------------

COMMANDS = ["serve", "acp", "chat", "history", "export", "revert", "models", "doctor"]


def cli_env(fake: FakeOllama, **extra: str) -> dict[str, str]:
    return {**os.environ, "OLLAMA_HOST": fake.url, "OLLAMA_CHATD_MODEL": "", **extra}


def write_call(path: str, content: str) -> Reply:
    return Reply.text([], tool_calls=[{"function": {"name": "write_file", "arguments": {"path": path, "content": content}}}])


def _controlling_terminal() -> None:
    """In the child: a session of its own whose controlling terminal is the pty on fd 0."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.mark.parametrize("key", [b"\x03", b"\x04"], ids=["ctrl-c", "ctrl-d"])
async def test_ctrl_c_or_ctrl_d_at_the_permission_prompt_cancels_and_exits_130_at_once(
    fake: FakeOllama, tmp_path: Path, key: bytes
):
    """Ctrl-C there used to print "cancelled" and hang until Enter (input() in a thread);
    a second Ctrl-C then printed a KeyboardInterrupt traceback."""
    fake.script(write_call("a.txt", "x\n"), Reply.text(["never asked"]))
    process, controller = await chat_on_a_terminal(fake, tmp_path, "write")
    try:
        screen = await read_terminal_until(controller, b"Allow?")
        assert b"+x" in screen
        os.write(controller, key)
        code = await asyncio.wait_for(process.wait(), 5)
        screen += await read_terminal_until(controller, None)
    finally:
        kill_if_running(process)
        os.close(controller)
    assert code == 130, screen.decode(errors="replace")
    assert b"Traceback" not in screen and b"KeyboardInterrupt" not in screen
    assert not (tmp_path / "a.txt").exists()
    assert len(fake.requests) == 1  # the turn ended there


def kill_if_running(process: asyncio.subprocess.Process) -> None:
    """A test that failed must not leave the CLI (and its daemon, which follows it) running."""
    if process.returncode is None:
        process.kill()


async def chat_on_a_terminal(fake: FakeOllama, workspace: Path, prompt: str) -> tuple[asyncio.subprocess.Process, int]:
    """`ollama-chatd chat` on a pseudo-terminal, as a user runs it; returns it and the terminal's other end."""
    controller, terminal = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", "chat", "--model", "tiny", "--workspace", str(workspace), prompt,
        stdin=terminal, stdout=terminal, stderr=terminal, env=cli_env(fake), preexec_fn=_controlling_terminal,
    )
    os.close(terminal)
    return process, controller


async def read_terminal_until(controller: int, marker: bytes | None, timeout: float = 15) -> bytes:
    """What the program wrote to its terminal, up to `marker` (None: until it closed)."""
    loop = asyncio.get_running_loop()
    seen = b""
    while marker is None or marker not in seen:
        try:
            chunk = await asyncio.wait_for(loop.run_in_executor(None, os.read, controller, 4096), timeout)
        except OSError:  # EIO: the program's side of the terminal is closed
            break
        if not chunk:
            break
        seen += chunk
    return seen


@pytest.mark.parametrize("command", [
    ["models"], ["doctor"], ["history"], ["export", "c1"], ["history", "c1"], ["revert", "c1"],
    ["chat", "--model", "tiny", "hello"], ["chat", "--model", "tiny", "--json", "hello"], ["chat", "--help"],
])
async def test_every_subcommand_ends_quietly_on_a_closed_pipe(fake: FakeOllama, tmp_path: Path, command: list[str]):
    """`ollama-chatd models | head -1` printed a BrokenPipeError traceback."""
    await finish(await run_cli(fake, "--model", "tiny", "--chat", "c1", "a stored chat", cwd=tmp_path))
    fake.script(Reply.endless(token="word ", delay=0.001) if command[0] == "chat" else Reply.text(["x"]))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has left before the first line
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", *command,
        stdout=write_end, stderr=asyncio.subprocess.PIPE, env=cli_env(fake), cwd=tmp_path,
    )
    os.close(write_end)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 30)
    finally:
        kill_if_running(process)
    assert process.returncode == (0 if "--help" in command else 141), err.decode()  # argparse ignores it
    assert err.decode().strip() == ""


async def test_errors_name_the_command_line_options(fake: FakeOllama, closed_port_url: str, tmp_path: Path):
    code, _, err = await finish(await run_cli(fake, "hello"))
    assert code == 1
    assert "pass --model" in err and "chat/start" not in err and "initializationOptions" not in err

    unreachable = {"OLLAMA_HOST": closed_port_url}
    code, _, err = await finish(await run_cli(fake, "--model", "tiny", "hello", env=unreachable))
    assert code == 1
    assert "--host" in err and "ollama serve" in err and "ollamaHost" not in err

    outputs = []
    for command in (["models"], ["doctor"]):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ollama_chatd", *command,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=cli_env(fake, **unreachable),
        )
        out = (await asyncio.wait_for(process.communicate(), 30))[0].decode()
        assert process.returncode == 1
        assert "start it with `ollama serve`, or pass --host" in out, out
        outputs.append(out)
    models, doctor = outputs
    assert models.strip() == err.strip()  # the same words as `chat`
    assert f"Ollama is not reachable at {closed_port_url} (Connection refused)" in doctor, doctor


async def test_doctor_tells_a_server_that_answers_with_an_error_from_one_that_is_not_there(fake: FakeOllama):
    class Failing(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the standard library's name
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b'{"error": "the GPU fell over"}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ollama_chatd", "doctor", stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=cli_env(fake, OLLAMA_HOST=f"http://127.0.0.1:{server.server_port}"),
        )  # fmt: skip
        out = (await asyncio.wait_for(process.communicate(), 30))[0].decode()
    finally:
        server.shutdown()
    assert process.returncode == 1
    assert "[FAIL] Ollama answered, with an error: " in out and "the GPU fell over" in out, out
    assert "not reachable" not in out and "ollama serve" not in out


@pytest.mark.parametrize("option, value, said", [
    ("--host", "ht!tp://localhost", "argument --host: unsupported scheme 'ht!tp'"),
    ("--workspace", "no-such-folder", "argument --workspace/-w: no folder 'no-such-folder'"),
])
async def test_a_bad_option_is_a_usage_error_naming_it(fake: FakeOllama, tmp_path: Path, option: str, value: str, said: str):
    code, out, err = await finish(await run_cli(fake, "--model", "tiny", option, value, "hello", cwd=tmp_path))
    assert code == 2 and out == ""
    assert said in err and "Traceback" not in err
    assert fake.requests == []


async def test_the_chat_status_is_shown(fake: FakeOllama):
    fake.script(Reply.error(503, "server busy, please try again."), Reply.text(["fine"]))
    code, out, err = await finish(await run_cli(fake, "--model", "plain", "hello"))
    assert code == 0 and out == "fine\n"
    assert "plain cannot use tools" in err, err
    assert "Ollama is busy" in err and "trying again" in err


@pytest.mark.parametrize("command", COMMANDS)
async def test_every_subcommand_help_describes_it_and_each_argument_with_its_default(command: str):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", command, "--help", stdout=asyncio.subprocess.PIPE,
    )
    out = (await process.communicate())[0].decode()
    assert process.returncode == 0
    usage, description, *_ = out.split("\n\n")
    assert usage.startswith(f"usage: ollama-chatd {command}")
    assert not description.startswith(("positional arguments", "options")), f"{command} --help has no description"
    subcommand = next(a for a in main._parser()._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for action in subcommand._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{command} {action.dest}: no help"
        if action.option_strings and action.default not in (None, False):
            assert "default" in action.help, f"{command} {action.option_strings[0]}: the default is not said"


SLOW_PYGLS = """
import sys, time

class SlowPygls:
    def find_spec(self, name, path=None, target=None):
        if name == "pygls":
            sys.meta_path.remove(self)
            time.sleep(2)
        return None

if b"serve" in open("/proc/self/cmdline", "rb").read().split(b"\\0"):
    sys.meta_path.insert(0, SlowPygls())
"""


async def test_the_footer_times_the_question_not_the_daemons_start(fake: FakeOllama, tmp_path: Path):
    """A daemon that takes 2 s to load (a slow disk, say) is not part of the answer's time. The
    daemon answers `initialize` before loading pygls; here loading pygls takes 2 s."""
    (tmp_path / "sitecustomize.py").write_text(SLOW_PYGLS)
    fake.script(Reply.text(["quick"]))
    slow_start = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    started = time.monotonic()
    code, _, err = await finish(await run_cli(fake, "--model", "tiny", "hello", env=slow_start))
    assert code == 0, err
    assert time.monotonic() - started > 2  # the daemon did start slowly
    seconds = float(re.search(r"tokens in ([\d.]+) s", err).group(1))
    assert seconds < 1.5, err


async def run_revert(fake: FakeOllama, workspace: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", "revert", *args, "--workspace", str(workspace),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(fake),
    )  # fmt: skip
    return await finish(process)


async def test_revert_takes_back_the_last_turn_by_default_and_says_what_it_did(fake: FakeOllama, tmp_path: Path):
    (tmp_path / "notes.txt").write_text("old\n")
    for prompt, *calls in (("first", write_call("a.txt", "a\n")), ("second", write_call("notes.txt", "new\n"), write_call("b.txt", "b\n"))):
        fake.script(*calls, Reply.text(["done"]))
        code, _, err = await finish(await run_cli(fake, "--model", "tiny", "--yes", "--chat", "c1", "-w", str(tmp_path), prompt))
        assert code == 0, err
    (tmp_path / "b.txt").write_text("b, and mine\n")

    code, out, err = await run_revert(fake, tmp_path, "c1")

    assert code == 0, err
    assert out.splitlines() == [
        "Reverted turn 1 and the turns after it.",
        "restored  notes.txt",
        "skipped   b.txt: changed since the model's edit (by you or another program); left as it is",
    ]
    assert (tmp_path / "notes.txt").read_text() == "old\n" and (tmp_path / "a.txt").exists()

    code, out, err = await run_revert(fake, tmp_path, "c1", "0")

    assert code == 0, err
    assert out.splitlines() == ["Reverted turn 0 and the turns after it.", "restored  a.txt"]
    assert not (tmp_path / "a.txt").exists()
    code, _, err = await run_revert(fake, tmp_path, "c1")
    assert code == 1 and "there is no chat 'c1'" in err


async def test_the_workspaces_agents_md_reaches_the_model(fake: FakeOllama, tmp_path: Path):
    (tmp_path / "AGENTS.md").write_text("Answer in French.\n")
    fake.script(Reply.text(["Bonjour"]))
    code, _, err = await finish(await run_cli(fake, "--model", "tiny", "--workspace", str(tmp_path), "hello"))
    assert code == 0, err
    system = fake.requests[0].body["messages"][0]
    assert system["role"] == "system" and system["content"].endswith("Answer in French.")
