"""`ollama-chatd chat` end to end: the real CLI, which spawns the real daemon."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest

from fake_ollama import FakeOllama, Reply


async def run_cli(fake: FakeOllama, *args: str, cwd: Path | None = None, stdin=asyncio.subprocess.DEVNULL):
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", "chat", *args,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "OLLAMA_HOST": fake.url, "OLLAMA_CHATD_MODEL": ""},
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
