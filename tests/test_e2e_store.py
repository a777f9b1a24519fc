"""Conversations that survive: the real daemon over stdio, its SQLite store on disk."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError


async def open_daemon(spawn_daemon, workspace: Path, *args: str) -> Daemon:
    daemon = await spawn_daemon(*args)
    await daemon.initialize(
        {"model": "tiny"},
        workspaceFolders=[{"uri": workspace.as_uri(), "name": workspace.name}],
    )
    return daemon


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


async def test_a_chat_continues_in_a_fresh_daemon(spawn_daemon, fake: FakeOllama, workspace: Path):
    first = await open_daemon(spawn_daemon, workspace)
    await first.request("chat/start", {"chatId": "c1", "prompt": "remember 42", "system": "be brief"})
    await first.shutdown()

    second = await open_daemon(spawn_daemon, workspace)
    await second.request("chat/start", {"chatId": "c1", "prompt": "what number?"})

    history = fake.requests[1].body["messages"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("system", "be brief"),
        ("user", "remember 42"),
        ("assistant", "echo: remember 42"),
        ("user", "what number?"),
    ]


@pytest.mark.parametrize("store", ["on disk", "--no-store"])
async def test_a_chat_left_while_forty_others_ran_keeps_its_whole_history(
    spawn_daemon, fake: FakeOllama, workspace: Path, store: str
):
    # Only the most recently used chats stay in memory; the others come back from the store.
    daemon = await open_daemon(spawn_daemon, workspace, *(["--no-store"] if store == "--no-store" else []))
    await daemon.request("chat/start", {"chatId": "first", "prompt": "remember 42", "system": "be brief"})
    for n in range(40):
        await daemon.request("chat/start", {"chatId": f"other-{n}", "prompt": f"chat {n}"})
    await daemon.request("chat/start", {"chatId": "first", "prompt": "what number?"})

    assert [(m["role"], m["content"]) for m in fake.requests[-1].body["messages"]] == [
        ("system", "be brief"),
        ("user", "remember 42"),
        ("assistant", "echo: remember 42"),
        ("user", "what number?"),
    ]


async def checkpoint_saved(database: Path, timeout: float = 10.0) -> None:
    """Wait until a partial answer (status "streaming") is committed to the database."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with contextlib.suppress(sqlite3.OperationalError):  # not created yet
            with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as reader:
                if reader.execute("SELECT 1 FROM messages WHERE status = 'streaming'").fetchone():
                    return
        assert asyncio.get_running_loop().time() < deadline, "no checkpoint was saved"
        await asyncio.sleep(0.05)


async def test_kill_9_mid_answer_keeps_the_prompt_and_the_last_checkpoint(
    spawn_daemon, fake: FakeOllama, workspace: Path, tmp_path: Path
):
    first = await open_daemon(spawn_daemon, workspace)
    fake.script(Reply.endless(token="tok ", delay=0.01))
    first.send_request("chat/start", {"chatId": "c1", "prompt": "go on"})
    await first.wait_for(lambda: len(first.tokens("c1")) >= 5)
    await checkpoint_saved(tmp_path / "data" / "ollama-chatd" / "chats.sqlite3")  # within a second
    first.kill()
    await first.process.wait()

    second = await open_daemon(spawn_daemon, workspace)
    history = await second.request("chat/history", {"chatId": "c1"})
    user, partial = history["messages"]
    assert (user["role"], user["content"]) == ("user", "go on")
    assert partial["role"] == "assistant"
    assert partial["status"] == "interrupted"
    # What the model had sent, whole tokens (the last checkpoint may hold tokens that were
    # still on their way to the editor when the daemon was killed).
    assert partial["content"].startswith("tok tok tok")
    assert partial["content"] == "tok " * partial["content"].count("tok ")

    result = await second.request("chat/start", {"chatId": "c1", "prompt": "continue"})
    assert result["stopReason"] == "end_turn"
    sent = fake.requests[1].body["messages"]
    assert sent[1] == {"role": "assistant", "content": partial["content"]}


async def test_list_history_rename_delete(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    for chat_id, prompt in (("a", "First question\nwith details"), ("b", "Second"), ("c", "Third " + "x" * 100)):
        await daemon.request("chat/start", {"chatId": chat_id, "prompt": prompt})
    await daemon.request("chat/start", {"chatId": "a", "prompt": "follow-up"})

    listed = (await daemon.request("chat/list", {}))["chats"]
    assert [c["chatId"] for c in listed] == ["a", "c", "b"]
    assert listed[0]["title"] == "First question"
    assert listed[0]["turns"] == 2
    assert listed[0]["model"] in ("tiny", "tiny:latest")
    assert len(listed[1]["title"]) <= 80
    assert listed[0]["createdAt"].endswith("Z") and listed[0]["updatedAt"] >= listed[0]["createdAt"]

    page1 = (await daemon.request("chat/list", {"limit": 2}))["chats"]
    page2 = (await daemon.request("chat/list", {"limit": 2, "before": page1[-1]["cursor"]}))["chats"]
    assert [c["chatId"] for c in page1 + page2] == ["a", "c", "b"]

    history = await daemon.request("chat/history", {"chatId": "a"})
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user", "assistant"]
    assert all("status" not in m for m in history["messages"])

    await daemon.request("chat/rename", {"chatId": "b", "title": "Renamed"})
    assert (await daemon.request("chat/history", {"chatId": "b"}))["title"] == "Renamed"

    assert await daemon.request("chat/delete", {"chatId": "c"}) == {"deleted": True}
    assert [c["chatId"] for c in (await daemon.request("chat/list", {}))["chats"]] == ["a", "b"]
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/history", {"chatId": "c"})
    assert raised.value.code == -32602
    assert raised.value.data == {"kind": "invalid_params", "field": "chatId"}


async def test_a_running_chat_cannot_be_deleted(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    fake.script(Reply.endless())
    msg_id, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "go"})
    await daemon.wait_for(lambda: daemon.tokens("c1"))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/delete", {"chatId": "c1"})
    assert raised.value.code == -32004
    await daemon.request("chat/cancel", {"chatId": "c1"})
    await answer
    history = await daemon.request("chat/history", {"chatId": "c1"})
    assert history["messages"][-1]["status"] == "cancelled"


async def test_a_row_the_store_cannot_read_is_an_internal_error_not_a_missing_chat(
    spawn_daemon, fake: FakeOllama, workspace: Path, tmp_path: Path
):
    first = await open_daemon(spawn_daemon, workspace)
    await first.request("chat/start", {"chatId": "c1", "prompt": "remember 42"})
    await first.shutdown()
    with sqlite3.connect(tmp_path / "data" / "ollama-chatd" / "chats.sqlite3") as database:
        database.execute("UPDATE messages SET tool_calls = '{broken' WHERE role = 'assistant'")
    log_file = tmp_path / "chatd.log"
    daemon = await open_daemon(spawn_daemon, workspace, "--log-file", str(log_file))

    for method, params in (("chat/history", {"chatId": "c1"}), ("chat/start", {"chatId": "c1", "prompt": "and?"})):
        with pytest.raises(RpcError) as raised:
            await daemon.request(method, params)
        assert raised.value.code == -32603, method
        assert "could not read the chat database (JSONDecodeError" in raised.value.message
        assert raised.value.data == {"kind": "internal_error"}
    assert len(fake.requests) == 1  # no fresh conversation was started behind the user's back
    await daemon.shutdown()
    log = log_file.read_text()
    assert "Traceback (most recent call last)" in log and "json.decoder.JSONDecodeError" in log


async def test_chats_are_scoped_by_workspace(spawn_daemon, fake: FakeOllama, tmp_path: Path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    daemon_one = await open_daemon(spawn_daemon, one)
    await daemon_one.request("chat/start", {"chatId": "same-id", "prompt": "in one"})
    daemon_two = await open_daemon(spawn_daemon, two)
    assert (await daemon_two.request("chat/list", {}))["chats"] == []
    await daemon_two.request("chat/start", {"chatId": "same-id", "prompt": "in two"})
    assert [m["content"] for m in fake.requests[1].body["messages"]] == ["in two"]


async def test_two_daemons_on_one_database_lose_nothing(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemons = [await open_daemon(spawn_daemon, workspace) for _ in range(2)]

    async def chat(daemon: Daemon, chat_id: str) -> None:
        for turn in range(10):
            await daemon.request("chat/start", {"chatId": chat_id, "prompt": f"{chat_id} turn {turn}"})

    await asyncio.gather(*(chat(d, f"{i}-{n}") for i, d in enumerate(daemons) for n in range(3)))
    # A turn's last write may still be queued when chat/start is answered; a read runs after
    # every write asked for before it, so one read on each daemon means all is committed.
    for daemon in daemons:
        await daemon.request("chat/list", {})

    listed = (await daemons[0].request("chat/list", {"limit": 200}))["chats"]
    assert sorted(c["chatId"] for c in listed) == sorted(f"{i}-{n}" for i in range(2) for n in range(3))
    assert all(c["turns"] == 10 for c in listed)
    assert "locked" not in daemons[0].stderr() + daemons[1].stderr()


async def test_an_unusable_store_falls_back_to_memory_and_says_so_once(spawn_daemon, fake: FakeOllama, tmp_path: Path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    daemon = await spawn_daemon("--state-dir", str(not_a_directory / "state"))
    await daemon.initialize({"model": "tiny"})
    for prompt in ("one", "two"):
        result = await daemon.request("chat/start", {"chatId": "c1", "prompt": prompt})
        assert result["stopReason"] == "end_turn"
    assert [m["content"] for m in fake.requests[1].body["messages"]] == ["one", "echo: one", "two"]
    warnings = daemon.notifications("window/showMessage")
    assert len(warnings) == 1
    assert warnings[0]["type"] == 2


async def test_no_store_writes_nothing(spawn_daemon, fake: FakeOllama, tmp_path: Path):
    daemon = await spawn_daemon("--no-store")
    await daemon.initialize({"model": "tiny"})
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    await daemon.shutdown()
    assert not (tmp_path / "data").exists()


async def run_cli(*args: str, cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", *args, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=os.environ.copy(),
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode, out.decode()


async def test_history_and_export_on_the_command_line(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "Explain sockets"})
    await daemon.shutdown()

    code, out = await run_cli("history", cwd=workspace)
    assert code == 0 and out.startswith("c1\t") and "\t1 turn\t" in out and "Explain sockets" in out
    code, out = await run_cli("history", "c1", cwd=workspace)
    assert code == 0 and "## User" in out and "echo: Explain sockets" in out and ", 1 turn." in out
    code, out = await run_cli("export", "c1", "--format", "json", cwd=workspace)
    exported = json.loads(out)
    assert [m["role"] for m in exported["messages"]] == ["user", "assistant"]
    assert exported["title"] == "Explain sockets"
    code, out = await run_cli("export", "nope", cwd=workspace)
    assert code == 1 and "ollama-chatd history" in out
