"""Undoing turns end to end: the model changes files over two turns, the user changes one of
them too, and chat/revert puts back what the model did (only that), through the editor when it
can, also after a daemon restart, and the conversation continues from before the reverted turn."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError
from test_e2e_chat import _start_endless
from test_e2e_tools import answer_permission, apply_workspace_edit, call, open_daemon, workspace  # noqa: F401

CHANGED_SINCE = "changed since the model's edit (by you or another program); left as it is"


@pytest.fixture
def project(workspace: Path) -> Path:  # noqa: F811 -- the fixture of test_e2e_tools
    script = workspace / "run.sh"
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o750)
    return workspace


async def turn(daemon: Daemon, fake: FakeOllama, prompt: str, *calls: dict[str, Any]) -> dict[str, Any]:
    """A turn in which the model makes `calls` (each in its own round), then answers "done"."""
    fake.script(*(Reply.text([], tool_calls=[one]) for one in calls), Reply.text([f"done: {prompt}"]))
    return await daemon.request("chat/start", {"chatId": "c1", "prompt": prompt})


async def two_turns_of_changes(daemon: Daemon, fake: FakeOllama, project: Path) -> None:
    """Turn 0 only talks; turn 1 edits, creates and deletes; the user then edits notes.txt;
    turn 2 edits app.py again."""
    answer_permission(daemon, "allow")
    await turn(daemon, fake, "hello")
    await turn(
        daemon, fake, "change things",
        call("edit_file", path="src/app.py", old_text="return 1", new_text="return 2"),
        call("write_file", path="docs/new.md", content="# New\n"),
        call("delete_file", path="run.sh"),
        call("edit_file", path="notes.txt", old_text="first line", new_text="model's line"),
    )  # fmt: skip
    (project / "notes.txt").write_text("model's line\nsecond line\nthe user's own line\n")
    await turn(daemon, fake, "more", call("edit_file", path="src/app.py", old_text="return 2", new_text="return 3"))
    assert (project / "src" / "app.py").read_text() == "def main():\n    return 3\n"
    assert not (project / "run.sh").exists() and (project / "docs" / "new.md").exists()


def assert_back_before_turn_1(project: Path, result: dict[str, Any]) -> None:
    assert sorted(result["restored"]) == ["docs/new.md", "run.sh", "src/app.py"]
    assert result["skipped"] == [{"path": "notes.txt", "reason": CHANGED_SINCE}]
    assert result["commandsNotUndone"] == []
    assert (project / "src" / "app.py").read_text() == "def main():\n    return 1\n"
    assert not (project / "docs" / "new.md").exists()
    assert (project / "run.sh").read_text() == "#!/bin/sh\necho run\n"
    assert stat.S_IMODE((project / "run.sh").stat().st_mode) == 0o750
    assert (project / "notes.txt").read_text() == "model's line\nsecond line\nthe user's own line\n"


async def test_revert_of_two_turns_restores_the_models_changes_and_keeps_the_users(
    spawn_daemon, fake: FakeOllama, project: Path
):
    daemon = await open_daemon(spawn_daemon, project)
    await two_turns_of_changes(daemon, fake, project)

    result = await daemon.request("chat/revert", {"chatId": "c1", "turn": 1})

    assert_back_before_turn_1(project, result)
    history = await daemon.request("chat/history", {"chatId": "c1"})
    assert [m["content"] for m in history["messages"] if m["role"] == "user"] == ["hello"]
    fake.script(Reply.text(["again"]))
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "what now?"})
    sent = [(m["role"], m["content"]) for m in fake.requests[-1].body["messages"]]
    assert sent == [("user", "hello"), ("assistant", "done: hello"), ("user", "what now?")]


async def test_revert_goes_through_the_editor_when_it_applies_edits(spawn_daemon, fake: FakeOllama, project: Path):
    daemon = await open_daemon(spawn_daemon, project, apply_edit=True)
    edits: list[dict[str, Any]] = []

    async def apply_edit(params: dict[str, Any]) -> dict[str, Any]:
        edits.append(params["edit"])
        apply_editor_edit(params["edit"])
        return {"applied": True}

    daemon.request_handlers["workspace/applyEdit"] = apply_edit
    await two_turns_of_changes(daemon, fake, project)
    made = len(edits)

    result = await daemon.request("chat/revert", {"chatId": "c1", "turn": 1})

    assert_back_before_turn_1(project, result)
    kinds = sorted(change.get("kind", "edit") for edit in edits[made:] for change in edit["documentChanges"])
    assert kinds == ["create", "delete", "edit", "edit"]  # app.py; new.md deleted; run.sh created and filled


async def test_a_file_the_editor_will_not_restore_is_skipped_with_its_answer(spawn_daemon, fake: FakeOllama, project: Path):
    daemon = await open_daemon(spawn_daemon, project, apply_edit=True)
    answer_permission(daemon, "allow")
    reverting = False

    async def apply_edit(params: dict[str, Any]) -> dict[str, Any]:
        uris = [change.get("uri") or change["textDocument"]["uri"] for change in params["edit"]["documentChanges"]]
        if reverting and uris[0].endswith("notes.txt"):
            return {"applied": False, "failureReason": "the file is read-only in the editor"}
        if reverting and uris[0].endswith("app.py"):
            raise RuntimeError("the editor crashed")  # answered with a JSON-RPC error
        apply_editor_edit(params["edit"])
        return {"applied": True}

    daemon.request_handlers["workspace/applyEdit"] = apply_edit
    await turn(
        daemon, fake, "edit three",
        call("edit_file", path="notes.txt", old_text="first line", new_text="model's line"),
        call("edit_file", path="src/app.py", old_text="return 1", new_text="return 2"),
        call("write_file", path="a.txt", content="a\n"),
    )  # fmt: skip
    reverting = True

    result = await daemon.request("chat/revert", {"chatId": "c1", "turn": 0})

    assert result["restored"] == ["a.txt"] and not (project / "a.txt").exists()
    skipped = {file["path"]: file["reason"] for file in result["skipped"]}
    assert skipped["notes.txt"] == "the editor did not apply the change to notes.txt: the file is read-only in the editor"
    assert skipped["src/app.py"].startswith("could not be restored (") and "the editor crashed" in skipped["src/app.py"]
    assert (await daemon.request("chat/list", {}))["chats"] == []  # the turn is dropped all the same


async def test_a_revert_after_a_restart_uses_the_stored_record(spawn_daemon, fake: FakeOllama, project: Path):
    first = await open_daemon(spawn_daemon, project)
    await two_turns_of_changes(first, fake, project)
    assert await first.shutdown() == 0

    second = await open_daemon(spawn_daemon, project)
    result = await second.request("chat/revert", {"chatId": "c1", "turn": 1})

    assert_back_before_turn_1(project, result)


async def test_reverting_the_first_turn_forgets_the_chat(spawn_daemon, fake: FakeOllama, project: Path):
    daemon = await open_daemon(spawn_daemon, project)
    answer_permission(daemon, "allow")
    await turn(daemon, fake, "create", call("write_file", path="a.txt", content="a\n"))

    result = await daemon.request("chat/revert", {"chatId": "c1", "turn": 0})

    assert result == {"restored": ["a.txt"], "skipped": [], "commandsNotUndone": []}
    assert not (project / "a.txt").exists()
    assert (await daemon.request("chat/list", {}))["chats"] == []


async def test_the_answer_names_the_commands_that_are_not_undone(spawn_daemon, fake: FakeOllama, project: Path):
    daemon = await open_daemon(spawn_daemon, project)
    answer_permission(daemon, "allow")
    await turn(
        daemon, fake, "make it",
        call("write_file", path="a.txt", content="a\n"),
        call("run_command", command="echo made > made.txt"),
    )  # fmt: skip

    result = await daemon.request("chat/revert", {"chatId": "c1", "turn": 0})

    assert result == {"restored": ["a.txt"], "skipped": [], "commandsNotUndone": ["echo made > made.txt"]}
    assert not (project / "a.txt").exists()
    assert (project / "made.txt").read_text() == "made\n"  # what the command did stays


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"chatId": "nope", "turn": 0}, "chatId", "chat/revert: there is no chat 'nope' in this workspace"),
        ({"chatId": "c1", "turn": 1}, "turn", "turn 1 does not exist: the chat has turns 0 to 0"),
        ({"chatId": "c1", "turn": -1}, "turn", "must be 0 or more"),
    ],
)
async def test_a_revert_of_what_does_not_exist_names_the_field(
    spawn_daemon, fake: FakeOllama, project: Path, params: dict[str, Any], field: str, words: str
):
    daemon = await open_daemon(spawn_daemon, project)
    await turn(daemon, fake, "hello")

    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/revert", params)

    assert raised.value.code == -32602
    assert raised.value.data == {"kind": "invalid_params", "field": field}
    assert words in raised.value.message


async def test_a_revert_while_a_turn_runs_is_refused(spawn_daemon, fake: FakeOllama, project: Path):
    daemon = await open_daemon(spawn_daemon, project)
    msg_id, answer = await _start_endless(daemon, fake)

    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/revert", {"chatId": "c1", "turn": 0})

    assert raised.value.code == -32004
    assert raised.value.data == {"kind": "chat_busy", "chatId": "c1"}
    await daemon.request("chat/cancel", {"chatId": "c1"})
    await answer


def apply_editor_edit(edit: dict[str, Any]) -> None:
    """`apply_workspace_edit`, plus deletions."""
    for change in edit["documentChanges"]:
        if change.get("kind") == "delete":
            os.unlink(unquote(urlparse(change["uri"]).path))
        else:
            apply_workspace_edit({"documentChanges": [change]})
