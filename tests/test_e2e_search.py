"""search_text and find_files over stdio with rg as the engine: the walk's answers (ignore
rules, unsaved buffers, links out), an answer within the time budget when rg is stuck,
and rg killed when the turn is cancelled. The fake model scripts the tool calls."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil
import pytest

from fake_ollama import FakeOllama, Reply
from ollama_chatd.tools import ripgrep, search
from test_e2e_tools import call, open_daemon, tool_messages
from test_tools_builtin import make_tree

pytestmark = pytest.mark.skipif(ripgrep.binary() is None, reason="rg missing: scripts/setup/10-python.sh installs it")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    make_tree(root, {
        ".gitignore": "*.log\nbuild/\n",
        "keep.py": "NEEDLE kept\n",
        "debug.log": "NEEDLE in an ignored file\n",
        "build/gen.py": "NEEDLE in an ignored folder\n",
        "src/.gitignore": "*.tmp\n",
        "src/scratch.tmp": "NEEDLE ignored by the nested rules\n",
        "src/b.py": "NEEDLE b\n",
        "notes.txt": "nothing on disk\n",
        ".git/config": "NEEDLE in git\n",
    })
    make_tree(tmp_path, {"outside/secret.py": "NEEDLE outside\n"})
    (root / "src" / "out").symlink_to(tmp_path / "outside")
    (root / "link.py").symlink_to(tmp_path / "outside" / "secret.py")
    return root


async def test_the_walks_answers_through_rg(spawn_daemon, fake: FakeOllama, project: Path):
    daemon = await open_daemon(spawn_daemon, project)
    daemon.notify("textDocument/didOpen", {"textDocument": {
        "uri": (project / "notes.txt").as_uri(), "languageId": "plaintext", "version": 1, "text": "unsaved NEEDLE\n"}})
    fake.script(
        Reply.text([], tool_calls=[call("search_text", pattern="NEEDLE"), call("find_files", glob="**/*.py")]),
        Reply.text(["found"]),
    )

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "find the needle"})

    searched, found = (message["content"] for message in tool_messages(fake, 1))
    assert searched == "keep.py:1: NEEDLE kept\nnotes.txt:1: unsaved NEEDLE\nsrc/b.py:1: NEEDLE b"
    assert found == "keep.py\nsrc/b.py"


async def test_a_search_over_its_budget_answers_with_what_it_found(spawn_daemon, fake: FakeOllama, project: Path):
    # rg proposes every file at once; matching the pattern in Python then takes the per-file
    # limit (1 s) on each "evil" file, so the 10 s budget ends the search part of the way.
    make_tree(project, {"a_quick.txt": "MATCH quick\n", **{f"evil{n:02}.txt": "a" * 5000 + "!\nMATCH\n" for n in range(14)}})
    daemon = await open_daemon(spawn_daemon, project)
    fake.script(Reply.text([], tool_calls=[call("search_text", pattern="(a+)+$|MATCH")]), Reply.text(["partial"]))
    started = time.monotonic()
    _, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "search"})

    await daemon.wait_for(lambda: "running" in [n["status"] for n in daemon.notifications("chat/toolCall", "c1")])
    listed = await daemon.request("chat/list", {})  # the loop serves while the search runs
    assert "chats" in listed and not answer.done()
    await asyncio.wait_for(answer, search.SEARCH_TIME_BUDGET + 20)

    assert time.monotonic() - started < search.SEARCH_TIME_BUDGET + 10
    [tool] = tool_messages(fake, 1)
    assert tool["content"].startswith("a_quick.txt:1: MATCH quick\n")
    assert "results are incomplete" in tool["content"] and "narrow it with path=" in tool["content"]
    assert "evil13.txt" not in tool["content"]  # never reached


async def test_cancelling_the_turn_kills_rg(spawn_daemon, fake: FakeOllama, project: Path):
    os.mkfifo(_fifo_folder(project) / ".gitignore")
    daemon = await open_daemon(spawn_daemon, project)
    fake.script(Reply.text([], tool_calls=[call("search_text", pattern="NEEDLE")]))
    _, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "search"})
    rg = await _rg_of(daemon)

    assert await daemon.request("chat/cancel", {"chatId": "c1"}) == {"cancelled": True}

    assert (await asyncio.wait_for(answer, 10))["stopReason"] == "cancelled"
    gone, alive = await asyncio.to_thread(psutil.wait_procs, [rg], 5)
    assert gone and not alive, "rg still runs after the turn was cancelled"


def _fifo_folder(project: Path) -> Path:
    folder = project / "zz-stuck"
    folder.mkdir()
    return folder


async def _rg_of(daemon) -> psutil.Process:
    """The daemon's rg child, once it runs (found in the process table: rg says so nowhere else)."""
    parent = psutil.Process(daemon.process.pid)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rg = next((child for child in parent.children() if child.name() == "rg"), None)
        if rg is not None:
            return rg
        await asyncio.sleep(0.01)
    raise AssertionError(f"the daemon started no rg; stderr:\n{daemon.stderr()}")
