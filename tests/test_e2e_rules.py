"""Project rules end to end: AGENTS.md at the workspace root reaches the model's system
message of every turn, as the file is at that turn, and chat/start names it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fake_ollama import FakeOllama, Reply
from test_e2e_tools import open_daemon


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


def system_of(fake: FakeOllama, request_index: int) -> str | None:
    first = fake.requests[request_index].body["messages"][0]
    return first["content"] if first["role"] == "system" else None


async def ask(daemon: Any, fake: FakeOllama, prompt: str, **params: Any) -> dict[str, Any]:
    fake.script(Reply.text(["ok"]))
    return await daemon.request("chat/start", {"chatId": "c1", "prompt": prompt, **params})


async def test_the_rules_follow_the_chats_own_system_prompt(spawn_daemon, fake: FakeOllama, workspace: Path):
    (workspace / "AGENTS.md").write_text("Run the tests with `make check`.\n")
    daemon = await open_daemon(spawn_daemon, workspace)

    result = await ask(daemon, fake, "hi", system="You are terse.")

    assert result["rules"] == "AGENTS.md"
    system = system_of(fake, 0)
    assert system is not None and system.startswith("You are terse.\n\n# Project rules (AGENTS.md)\n")
    assert "do not change what your tools may do" in system
    assert system.endswith("Run the tests with `make check`.")
    history = await daemon.request("chat/history", {"chatId": "c1"})
    assert history["messages"][0] == {**history["messages"][0], "role": "system", "content": "You are terse."}


async def test_without_agents_md_there_are_no_rules(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)

    result = await ask(daemon, fake, "hi")

    assert result["rules"] is None
    assert system_of(fake, 0) is None


async def test_an_edit_applies_from_the_next_turn_and_an_unchanged_file_gives_the_same_bytes(
    spawn_daemon, fake: FakeOllama, workspace: Path
):
    rules = workspace / "AGENTS.md"
    rules.write_text("Use tabs.\n")
    daemon = await open_daemon(spawn_daemon, workspace)

    await ask(daemon, fake, "one")
    await ask(daemon, fake, "two")
    rules.write_text("Use four spaces.\n")
    await ask(daemon, fake, "three")

    first, second, third = (system_of(fake, index) for index in range(3))
    assert first == second and first is not None and first.endswith("Use tabs.")
    assert third is not None and third.endswith("Use four spaces.") and "Use tabs." not in third
    # Only the system message changed: the rest of the history is sent as it was.
    later = [(m["role"], m["content"]) for m in fake.requests[2].body["messages"][1:]]
    assert later == [("user", "one"), ("assistant", "ok"), ("user", "two"), ("assistant", "ok"), ("user", "three")]


async def test_an_oversized_file_is_cut_with_a_note(spawn_daemon, fake: FakeOllama, workspace: Path):
    text = "# Rule\n" + "é" * 20_000  # 7 + 40,000 bytes: the cut at 32 KiB falls inside an "é"
    (workspace / "AGENTS.md").write_text(text)
    daemon = await open_daemon(spawn_daemon, workspace, {"maxContext": 65536})

    result = await ask(daemon, fake, "hi")

    assert result["rules"] == "AGENTS.md"
    system = system_of(fake, 0)
    assert system is not None
    body, note = system.rsplit("\n\n", 1)
    kept = body.split("approve.\n\n", 1)[1]
    head = text.encode()[: 32 * 1024].decode("utf-8", errors="ignore")  # whole characters only
    assert kept == head.rstrip()
    left_out = len(text.encode()) - len(head.encode())
    assert note == f"[AGENTS.md is cut here: its last {left_out} bytes are left out, over the size limit of project rules]"


async def test_a_symlink_leading_outside_the_workspace_is_not_read(spawn_daemon, fake: FakeOllama, workspace: Path):
    outside = workspace.parent / "elsewhere.md"
    outside.write_text("OUTSIDE-SECRET\n")
    os.symlink(outside, workspace / "AGENTS.md")
    daemon = await open_daemon(spawn_daemon, workspace)

    result = await ask(daemon, fake, "hi")

    assert result["rules"] is None
    assert "OUTSIDE-SECRET" not in str(fake.requests[0].body)


async def test_an_unsaved_buffer_of_agents_md_is_not_used(spawn_daemon, fake: FakeOllama, workspace: Path):
    (workspace / "AGENTS.md").write_text("Saved rule.\n")
    daemon = await open_daemon(spawn_daemon, workspace)
    uri = (workspace / "AGENTS.md").as_uri()
    daemon.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "markdown", "version": 1, "text": "Unsaved rule.\n"}})

    await ask(daemon, fake, "hi")

    system = system_of(fake, 0)
    assert system is not None and system.endswith("Saved rule.") and "Unsaved" not in system
