"""The tool loop end to end: the fake model calls tools, the daemon acts on a real
temporary workspace, the test plays the editor (permission prompts, applyEdit)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"function": {"name": name, "arguments": arguments}}


def tool_messages(fake: FakeOllama, request_index: int) -> list[dict[str, Any]]:
    return [m for m in fake.requests[request_index].body["messages"] if m["role"] == "tool"]


def statuses(daemon: Daemon, chat_id: str = "c1") -> list[str]:
    return [n["status"] for n in daemon.notifications("chat/toolCall", chat_id)]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 1\n")
    (root / "notes.txt").write_text("first line\nsecond line\n")
    (tmp_path / "secret.txt").write_text("TOP-SECRET-OUTSIDE")
    return root


async def open_daemon(spawn_daemon, workspace: Path, options: dict[str, Any] | None = None,
                      apply_edit: bool = False) -> Daemon:
    daemon = await spawn_daemon()
    capabilities = {"workspace": {"applyEdit": True, "workspaceEdit": {"documentChanges": True}}} if apply_edit else {}
    await daemon.initialize(
        {"model": "tiny", **(options or {})},
        rootUri=workspace.as_uri(),
        workspaceFolders=[{"uri": workspace.as_uri(), "name": "project"}],
        capabilities=capabilities,
    )
    return daemon


def answer_permission(daemon: Daemon, decision: str) -> list[dict[str, Any]]:
    asked: list[dict[str, Any]] = []

    async def handler(params: dict[str, Any]) -> dict[str, str]:
        asked.append(params)
        return {"decision": decision}

    daemon.request_handlers["chat/requestPermission"] = handler
    return asked


async def test_a_read_result_reaches_the_model(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    fake.script(Reply.text([], tool_calls=[call("read_file", path="src/app.py")]), Reply.text(["It returns 1."]))

    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "what does main return?"})

    assert result["stopReason"] == "end_turn"
    assert result["message"]["content"] == "It returns 1."
    [tool] = tool_messages(fake, 1)
    assert tool["tool_name"] == "read_file"
    assert "return 1" in tool["content"]
    assert tool["tool_call_id"]
    assistant = fake.requests[1].body["messages"][1]
    assert assistant["tool_calls"][0]["function"] == {"name": "read_file", "arguments": {"path": "src/app.py"}}
    assert statuses(daemon) == ["pending", "running", "completed"]
    assert "tools" in fake.requests[1].body


async def test_a_tool_call_in_the_final_chunk_runs(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    fake.script(
        Reply.text(["Let me look."], tool_calls=[call("list_directory")], tool_calls_in_final=True),
        Reply.text(["Two entries."]),
    )
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "list"})
    [tool] = tool_messages(fake, 1)
    assert "src/" in tool["content"] and "notes.txt" in tool["content"]


async def test_reads_see_the_unsaved_buffer(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    uri = (workspace / "notes.txt").as_uri()
    daemon.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "plaintext", "version": 1, "text": "unsaved words\n"}})
    daemon.notify("textDocument/didChange", {
        "textDocument": {"uri": uri, "version": 2},
        "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 7}}, "text": "edited"}],
    })
    fake.script(Reply.text([], tool_calls=[call("read_file", path="notes.txt")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "read notes"})

    [tool] = tool_messages(fake, 1)
    assert "edited words" in tool["content"]
    assert "first line" not in tool["content"]


async def test_a_denied_write_changes_nothing(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    asked = answer_permission(daemon, "deny")
    fake.script(Reply.text([], tool_calls=[call("write_file", path="notes.txt", content="gone\n")]), Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "overwrite"})

    assert (workspace / "notes.txt").read_text() == "first line\nsecond line\n"
    assert asked[0]["title"] == "Edit notes.txt"
    assert "-first line" in asked[0]["diff"] and "+gone" in asked[0]["diff"]
    assert statuses(daemon) == ["pending", "awaiting_permission", "denied"]
    assert "did not allow" in tool_messages(fake, 1)[0]["content"]


async def test_an_allowed_edit_goes_through_the_editor(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace, apply_edit=True)
    answer_permission(daemon, "allow")
    edits: list[dict[str, Any]] = []

    async def apply_edit(params: dict[str, Any]) -> dict[str, Any]:
        edits.append(params)
        apply_workspace_edit(params["edit"])
        return {"applied": True}

    daemon.request_handlers["workspace/applyEdit"] = apply_edit
    fake.script(
        Reply.text([], tool_calls=[call("edit_file", path="src/app.py", old_text="return 1", new_text="return 2")]),
        Reply.text(["Done."]),
    )

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "return 2"})

    assert len(edits) == 1
    assert (workspace / "src" / "app.py").read_text() == "def main():\n    return 2\n"
    assert statuses(daemon) == ["pending", "awaiting_permission", "running", "completed"]


async def test_an_edit_of_an_open_buffer_lands_at_its_utf16_columns(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace, apply_edit=True)
    answer_permission(daemon, "allow")
    buffer = EditorBuffer(daemon, workspace / "src" / "app.py", "s = '🙂🙂'; b = 2\n")
    daemon.request_handlers["workspace/applyEdit"] = buffer.apply_edit
    fake.script(Reply.text([], tool_calls=[call("edit_file", path="src/app.py", old_text="b = 2", new_text="b = 42")]),
                Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "b = 42"})

    assert buffer.text == "s = '🙂🙂'; b = 42\n"
    assert statuses(daemon)[-1] == "completed"


async def test_typing_while_the_prompt_is_open_never_applies_what_was_not_approved(
    spawn_daemon, fake: FakeOllama, workspace: Path
):
    """The user approves `b = 2 -> b = 42` but typed a line above meanwhile: the ranges of
    the approved diff no longer fit, and the edit used to land as `x = 4'🙂'`."""
    daemon = await open_daemon(spawn_daemon, workspace, apply_edit=True)
    buffer = EditorBuffer(daemon, workspace / "src" / "app.py", "a = 1\nb = 2  # 🙂\n")
    daemon.request_handlers["workspace/applyEdit"] = buffer.apply_edit
    asked: list[dict[str, Any]] = []

    async def type_then_allow(params: dict[str, Any]) -> dict[str, str]:
        asked.append(params)
        buffer.type(1, 0, "x = '🙂'\n")
        buffer.type(1, 8, "  # typed after a UTF-16 column")
        return {"decision": "allow"}

    daemon.request_handlers["chat/requestPermission"] = type_then_allow
    fake.script(Reply.text([], tool_calls=[call("edit_file", path="src/app.py", old_text="b = 2", new_text="b = 42")]),
                Reply.text(["ok"]))

    await daemon.request("chat/start", {"chatId": "c1", "prompt": "b = 42"})

    assert "+b = 42" in asked[0]["diff"]
    assert buffer.text == "a = 1\nx = '🙂'  # typed after a UTF-16 column\nb = 2  # 🙂\n"
    assert statuses(daemon) == ["pending", "awaiting_permission", "running", "failed"]
    assert "changed after the change was proposed" in tool_messages(fake, 1)[0]["content"]
    # The daemon's view of the buffer is the editor's: the next read sees the user's typing.
    fake.script(Reply.text([], tool_calls=[call("read_file", path="src/app.py")]), Reply.text(["ok"]))
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "read it"})
    assert "x = '🙂'  # typed after a UTF-16 column" in tool_messages(fake, 3)[-1]["content"]


async def test_a_new_file_through_the_editor_is_created_then_filled(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace, {"autoApprove": ["write_file"]}, apply_edit=True)

    async def apply_edit(params: dict[str, Any]) -> dict[str, Any]:
        apply_workspace_edit(params["edit"])
        return {"applied": True}

    daemon.request_handlers["workspace/applyEdit"] = apply_edit
    fake.script(Reply.text([], tool_calls=[call("write_file", path="docs/new.md", content="# Hi\n")]), Reply.text(["ok"]))
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "write docs"})
    assert (workspace / "docs" / "new.md").read_text() == "# Hi\n"


async def test_an_edit_the_editor_refuses_is_a_tool_error(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace, {"autoApprove": ["write_file"]}, apply_edit=True)

    async def refuse(params: dict[str, Any]) -> dict[str, Any]:
        return {"applied": False, "failureReason": "file is read-only"}

    daemon.request_handlers["workspace/applyEdit"] = refuse
    fake.script(Reply.text([], tool_calls=[call("write_file", path="notes.txt", content="x\n")]), Reply.text(["ok"]))
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "write"})
    assert statuses(daemon)[-1] == "failed"
    assert "file is read-only" in tool_messages(fake, 1)[0]["content"]


async def test_without_apply_edit_the_daemon_writes_the_disk(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    answer_permission(daemon, "allow")
    fake.script(Reply.text([], tool_calls=[call("write_file", path="src/new.py", content="x = 1\n")]), Reply.text(["ok"]))
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "create"})
    assert (workspace / "src" / "new.py").read_text() == "x = 1\n"
    assert sorted(os.listdir(workspace / "src")) == ["app.py", "new.py"]  # no temporary left behind


async def test_allow_always_holds_for_the_session(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    asked = answer_permission(daemon, "allow_always")
    fake.script(
        Reply.text([], tool_calls=[call("write_file", path="a.txt", content="a\n")]),
        Reply.text([], tool_calls=[call("write_file", path="b.txt", content="b\n")]),
        Reply.text(["ok"]),
    )
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "two files"})
    assert len(asked) == 1
    assert (workspace / "b.txt").read_text() == "b\n"


async def test_an_editor_that_cannot_ask_gets_writes_refused(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)  # no chat/requestPermission handler: -32601
    fake.script(Reply.text([], tool_calls=[call("write_file", path="notes.txt", content="x\n")]), Reply.text(["ok"]))
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "write"})
    assert (workspace / "notes.txt").read_text() == "first line\nsecond line\n"
    assert "cannot ask" in tool_messages(fake, 1)[0]["content"]
    assert statuses(daemon)[-1] == "failed"


@pytest.mark.parametrize(
    "tool_call",
    [
        call("read_file", path="../secret.txt"),
        call("read_file", path="/etc/passwd"),
        call("read_file", path="file:///etc/passwd"),
        call("read_file", path="link-out/secret.txt"),
        call("read_file", path="secret-link"),
        call("list_directory", path="link-out"),
        call("search_text", pattern="T.P-SECRET", path=".."),
        call("write_file", path="../escape.txt", content="x"),
        call("write_file", path=".git/config", content="x"),
        call("edit_file", path="secret-link", old_text="TOP", new_text="BOTTOM"),
    ],
    ids=lambda c: f"{c['function']['name']}:{next(iter(c['function']['arguments'].values()))}",
)
async def test_nothing_outside_the_workspace_is_touched(spawn_daemon, fake: FakeOllama, workspace: Path, tool_call):
    (workspace / "link-out").symlink_to(workspace.parent)
    (workspace / "secret-link").symlink_to(workspace.parent / "secret.txt")
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text("[core]\n")
    daemon = await open_daemon(spawn_daemon, workspace, {"autoApprove": ["write_file", "edit_file"]})
    fake.script(Reply.text([], tool_calls=[tool_call]), Reply.text(["ok"]))

    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "try"})

    assert result["stopReason"] == "end_turn"
    [tool] = tool_messages(fake, 1)
    assert tool["content"].startswith("Error:")
    assert "TOP-SECRET-OUTSIDE" not in repr(fake.requests[1].body)
    assert (workspace.parent / "secret.txt").read_text() == "TOP-SECRET-OUTSIDE"
    assert not (workspace.parent / "escape.txt").exists()
    assert (workspace / ".git" / "config").read_text() == "[core]\n"
    assert statuses(daemon)[-1] == "failed"


@pytest.mark.parametrize("how", ["chat/cancel", "$/cancelRequest"])
async def test_cancel_during_a_permission_request(spawn_daemon, fake: FakeOllama, workspace: Path, how):
    daemon = await open_daemon(spawn_daemon, workspace)
    prompt_open = asyncio.Event()
    never = asyncio.get_running_loop().create_future()

    async def hesitate(params: dict[str, Any]) -> dict[str, str]:
        prompt_open.set()
        return await never

    daemon.request_handlers["chat/requestPermission"] = hesitate
    fake.script(Reply.text([], tool_calls=[call("write_file", path="notes.txt", content="x\n")]))
    msg_id, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "write"})
    await asyncio.wait_for(prompt_open.wait(), 10)

    if how == "chat/cancel":
        assert await daemon.request("chat/cancel", {"chatId": "c1"}) == {"cancelled": True}
        assert (await answer)["stopReason"] == "cancelled"
    else:
        daemon.cancel_request(msg_id)
        with pytest.raises(RpcError, match="-32800"):
            await answer

    permission_id = next(m["id"] for m in daemon.messages if m.get("method") == "chat/requestPermission")
    cancels = await daemon.wait_for(lambda: [
        m for m in daemon.messages if m.get("method") == "$/cancelRequest" and m["params"]["id"] == permission_id
    ])
    assert cancels
    assert statuses(daemon) == ["pending", "awaiting_permission", "cancelled"]  # one final status
    never.set_result({"decision": "allow"})  # the late answer changes nothing
    await daemon.request("chat/list", {})  # handled after the late answer
    assert (workspace / "notes.txt").read_text() == "first line\nsecond line\n"
    assert "InvalidStateError" not in daemon.stderr()
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "still fine?"})
    assert result["stopReason"] == "end_turn"


async def test_the_tool_round_bound_ends_the_turn(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace, {"maxToolRounds": 2})
    fake.script(*[Reply.text([], tool_calls=[call("list_directory")]) for _ in range(3)])

    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "loop forever"})

    assert result["stopReason"] == "max_tool_rounds"
    assert len(fake.requests) == 3
    assert statuses(daemon).count("completed") == 2
    assert statuses(daemon)[-1] == "cancelled"


async def test_a_bad_argument_is_a_result_the_model_can_recover_from(spawn_daemon, fake: FakeOllama, workspace: Path):
    daemon = await open_daemon(spawn_daemon, workspace)
    fake.script(
        Reply.text([], tool_calls=[call("read_file", file="notes.txt")]),
        Reply.text([], tool_calls=[call("read_file", path="notes.txt")]),
        Reply.text(["Got it."]),
    )
    result = await daemon.request("chat/start", {"chatId": "c1", "prompt": "read"})
    assert result["message"]["content"] == "Got it."
    assert "path" in tool_messages(fake, 1)[0]["content"]
    assert "first line" in tool_messages(fake, 2)[-1]["content"]


def apply_workspace_edit(edit: dict[str, Any]) -> None:
    """What an editor does with a WorkspaceEdit of files it has not open."""
    for change in edit["documentChanges"]:
        path = Path(unquote(urlparse(change.get("uri") or change["textDocument"]["uri"]).path))
        if change.get("kind") == "create":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            continue
        text = path.read_text()
        for text_edit in change["edits"]:
            start, end = (_offset(text, text_edit["range"][key]) for key in ("start", "end"))
            text = text[:start] + text_edit["newText"] + text[end:]
        path.write_text(text)


def _offset(text: str, position: dict[str, int]) -> int:
    """The string index of an LSP position, its column counted in UTF-16 code units."""
    lines = text.split("\n")
    line = lines[position["line"]] if position["line"] < len(lines) else ""
    index = units = 0
    while units < position["character"] and index < len(line):
        units += 2 if ord(line[index]) > 0xFFFF else 1
        index += 1
    return sum(len(line) + 1 for line in lines[: position["line"]]) + index


class EditorBuffer:
    """A document open in the test's editor: every keystroke is sent as `didChange`, and,
    like VS Code, a `workspace/applyEdit` for another version of it is refused."""

    def __init__(self, daemon: Daemon, path: Path, text: str):
        self.daemon, self.uri, self.text, self.version = daemon, path.as_uri(), text, 1
        daemon.notify("textDocument/didOpen", {
            "textDocument": {"uri": self.uri, "languageId": "python", "version": 1, "text": text},
        })

    def type(self, line: int, character: int, typed: str) -> None:
        at = {"line": line, "character": character}
        self._replace(at, at, typed)
        self.daemon.notify("textDocument/didChange", {
            "textDocument": {"uri": self.uri, "version": self.version},
            "contentChanges": [{"range": {"start": at, "end": at}, "text": typed}],
        })

    async def apply_edit(self, params: dict[str, Any]) -> dict[str, Any]:
        [change] = params["edit"]["documentChanges"]
        assert change["textDocument"]["uri"] == self.uri
        if change["textDocument"]["version"] != self.version:
            return {"applied": False, "failureReason": f"the document is at version {self.version}"}
        for text_edit in change["edits"]:
            self._replace(text_edit["range"]["start"], text_edit["range"]["end"], text_edit["newText"])
        return {"applied": True}

    def _replace(self, start: dict[str, int], end: dict[str, int], new_text: str) -> None:
        self.text = self.text[: _offset(self.text, start)] + new_text + self.text[_offset(self.text, end) :]
        self.version += 1
