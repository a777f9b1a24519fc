"""The ACP front-end's engine-facing parts: engine events as ACP updates, prompt
blocks as the engine's prompt, a stored chat replayed, updates kept in order."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from acp import schema

from ollama_chatd import llm
from ollama_chatd.acp import outbox as outbox_module
from ollama_chatd.acp import tool_calls
from ollama_chatd.acp.outbox import UpdateOutbox
from ollama_chatd.acp.prompt import UnsupportedContent, read_prompt
from ollama_chatd.acp.replay import replay
from ollama_chatd.store import StoredChat, StoredMessage
from ollama_chatd.tools.edits import ProposedEdit
from ollama_chatd.tools.workspace import Folder, Workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('disk')\n")
    return Workspace([Folder("project", root.resolve())])


def dump(update: Any) -> dict[str, Any]:
    return update.model_dump(mode="json", by_alias=True, exclude_none=True)


# -- tool calls ----------------------------------------------------------------------------


def test_a_call_starts_pending_with_kind_title_and_where_it_acts(workspace):
    update = dump(tool_calls.started("call-1", "read_file", {"path": "src/app.py", "start_line": 3}, workspace))
    assert update == {
        "sessionUpdate": "tool_call", "toolCallId": "call-1", "title": "Read src/app.py", "kind": "read",
        "status": "pending", "locations": [{"path": str(workspace.folders[0].path / "src" / "app.py"), "line": 3}],
        "rawInput": {"path": "src/app.py", "start_line": 3},
    }


@pytest.mark.parametrize(("name", "arguments", "kind", "title"), [
    ("list_directory", {}, "read", "List the workspace"),
    ("search_text", {"pattern": "TODO", "path": "src"}, "search", "Search for 'TODO' in src"),
    ("find_files", {"glob": "*.py"}, "search", "Find files matching '*.py'"),
    ("write_file", {"path": "new.txt", "content": ""}, "edit", "Write new.txt"),
    ("edit_file", {"path": "src/app.py"}, "edit", "Edit src/app.py"),
    ("made_up", {}, "other", "made_up"),
])
def test_each_tool_has_its_kind_and_a_readable_title(workspace, name, arguments, kind, title):
    update = tool_calls.started("c", name, arguments, workspace)
    assert (update.kind, update.title) == (kind, title)


def test_a_path_outside_the_workspace_gets_no_location(workspace):
    assert tool_calls.started("c", "read_file", {"path": "../secret"}, workspace).locations == []


@pytest.mark.parametrize(("status", "acp_status", "text"), [
    ("running", "in_progress", None),
    ("failed", "failed", "Error: no such file"),
    ("denied", "failed", "The user did not allow this change."),
    ("cancelled", "failed", "Cancelled by the user."),
])
def test_engine_statuses_map_to_acps_four(status, acp_status, text):
    update = dump(tool_calls.progressed("c", status, None if status != "failed" else text))
    assert update["status"] == acp_status
    assert update.get("content", [{}])[0].get("content", {}).get("text") == text


def test_waiting_for_permission_sends_no_update_of_its_own():
    assert tool_calls.progressed("c", "awaiting_permission", None) is None


def test_a_completed_edit_carries_its_diff_before_the_summary(workspace):
    path = workspace.folders[0].path / "src" / "app.py"
    edit = ProposedEdit(path, "src/app.py", "print('disk')\n", "print('new')\n")
    update = dump(tool_calls.progressed("c", "completed", "Updated src/app.py (1 lines).", edit))
    diff, summary = update["content"]
    assert diff == {"type": "diff", "path": str(path), "oldText": "print('disk')\n", "newText": "print('new')\n"}
    assert summary["content"]["text"] == "Updated src/app.py (1 lines)."


# -- prompt blocks -------------------------------------------------------------------------


async def test_text_resources_and_images_become_the_prompt(workspace):
    app = workspace.folders[0].path / "src" / "app.py"
    parts = await read_prompt([
        schema.TextContentBlock(type="text", text="Explain"),
        schema.ResourceContentBlock(type="resource_link", uri=app.as_uri(), name="app.py"),
        schema.EmbeddedResourceContentBlock(
            type="resource", resource=schema.TextResourceContents(uri="file:///x/notes.md", text="has ``` inside")
        ),
        schema.ImageContentBlock(type="image", data="aW1n", mime_type="image/png"),
    ], workspace)
    assert parts.images == ("aW1n",)
    explain, linked, embedded = parts.text.split("\n\n")
    assert explain == "Explain"
    assert linked == f"{app}:\n```\nprint('disk')\n```"
    assert embedded == "/x/notes.md:\n````\nhas ``` inside\n````"  # a longer fence than the text's


async def test_audio_is_refused_with_what_is_accepted(workspace):
    with pytest.raises(UnsupportedContent, match="audio content is not supported; send text"):
        await read_prompt([schema.AudioContentBlock(type="audio", data="x", mime_type="audio/wav")], workspace)


async def test_a_linked_file_that_cannot_be_read_is_named_not_fatal(workspace):
    missing = workspace.folders[0].path / "gone.txt"
    parts = await read_prompt([schema.ResourceContentBlock(type="resource_link", uri=missing.as_uri(), name="gone")],
                              workspace)
    assert parts.text.startswith("[attached gone: cannot be read:")


# -- replay --------------------------------------------------------------------------------


def stored(*messages: llm.Message) -> StoredChat:
    return StoredChat("c1", None, "tiny", None, 0.0, 0.0, tuple(StoredMessage(m, "complete", 0.0) for m in messages))


def test_replay_shows_each_message_and_each_call_with_its_result(workspace):
    chat = stored(
        llm.Message("user", "Fix it"),
        llm.Message("assistant", "", thinking="hmm", tool_calls=(
            llm.ToolCall("read_file", {"path": "src/app.py"}), llm.ToolCall("read_file", {"path": "nope"}))),
        llm.Message("tool", "1\tprint('disk')", tool_name="read_file"),
        llm.Message("tool", "Error: no file 'nope'", tool_name="read_file"),
        llm.Message("assistant", "Done."),
    )
    updates = [dump(u) for u in replay(chat, workspace)]
    assert [u["sessionUpdate"] for u in updates] == [
        "user_message_chunk", "agent_thought_chunk", "tool_call", "tool_call", "agent_message_chunk"]
    assert [u.get("status") for u in updates[2:4]] == ["completed", "failed"]
    assert updates[2]["toolCallId"] != updates[3]["toolCallId"]
    assert updates[3]["content"][0]["content"]["text"] == "Error: no file 'nope'"


# -- the outbox ----------------------------------------------------------------------------


class SlowClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.gate = asyncio.Event()

    async def session_update(self, session_id: str, update: Any) -> None:
        await self.gate.wait()
        self.sent.append((session_id, update))


async def test_updates_go_out_in_order_and_flush_waits_for_them():
    client = SlowClient()
    outbox = UpdateOutbox(client)
    for n in range(5):
        outbox.send("s", n)
    flushed = asyncio.create_task(outbox.flush())
    await asyncio.sleep(0)
    assert not flushed.done()
    client.gate.set()
    await flushed
    assert client.sent == [("s", n) for n in range(5)]
    await outbox.close()


async def test_a_client_that_does_not_read_congests_the_outbox(monkeypatch):
    monkeypatch.setattr(outbox_module, "CONGESTED_AT", 10)
    monkeypatch.setattr(outbox_module, "DRAINED_AT", 2)
    client = SlowClient()
    outbox = UpdateOutbox(client)
    for n in range(12):
        outbox.send("s", n)
    assert outbox.congested
    client.gate.set()
    await asyncio.wait_for(outbox.until_drained(), 5)
    await outbox.flush()
    assert len(client.sent) == 12 and not outbox.congested
    await outbox.close()


async def test_a_closed_client_drops_updates_instead_of_failing():
    class Gone:
        async def session_update(self, session_id: str, update: Any) -> None:
            raise ConnectionError("closed")

    outbox = UpdateOutbox(Gone())
    outbox.send("s", 1)
    await asyncio.wait_for(outbox.flush(), 5)
    outbox.send("s", 2)  # ignored, no error
    await asyncio.wait_for(outbox.flush(), 5)
    await outbox.close()


def test_serve_does_not_load_the_acp_sdk():
    code = "import sys, ollama_chatd.cli.main, ollama_chatd.rpc.stdio; print('acp' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_an_unknown_backend_is_refused_with_the_known_ones(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ollama_chatd", "acp", "--backend", "nope"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert '`backend` must be one of "ollama"' in done.stderr


def test_a_file_as_stdout_is_refused_with_how_to_pipe(tmp_path):
    with (tmp_path / "out").open("w") as out:
        done = subprocess.run([sys.executable, "-m", "ollama_chatd", "acp"], stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert done.returncode == 2 and (tmp_path / "out").read_text() == ""
    assert "stdin and stdout must be pipes" in done.stderr and "Traceback" not in done.stderr
