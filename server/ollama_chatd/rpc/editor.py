"""The editor's side of the tools: its folders, its unsaved buffers, asking its
user for permission, and applying changes through it (`workspace/applyEdit`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcMethodNotFound
from pygls.uris import to_fs_path

from ollama_chatd import llm
from ollama_chatd.events import Decision
from ollama_chatd.rpc import messages
from ollama_chatd.rpc.peer import Editor
from ollama_chatd.tools.edits import ProposedEdit, apply_to_disk
from ollama_chatd.tools.workspace import Folder, ToolError, Workspace

logger = logging.getLogger(__name__)


def editor_workspace(editor: Editor, *, use_working_directory: bool) -> Workspace:
    """The folders the editor opened (else its root), seen through its open buffers.
    Taken once per session: a folder the editor adds later does not widen what the
    model may touch. With neither, our working directory holds the chats, and the
    tools refuse to run unless the client opted in (`useWorkingDirectory`): a
    daemon started from "/" would otherwise read the whole machine."""
    folders = _folders(editor)
    if folders:
        return Workspace(folders, open_document=editor.open_buffer, open_paths=editor.open_buffer_paths)
    cwd = Path.cwd().resolve()
    refusal = None if use_working_directory else _no_folder_refusal(cwd)
    return Workspace(
        [Folder(cwd.name or str(cwd), cwd)],
        open_document=editor.open_buffer,
        open_paths=editor.open_buffer_paths,
        refusal=refusal,
    )


def _no_folder_refusal(cwd: Path) -> str:
    return (
        "the editor opened no workspace folder, so there are no files the tools may use. Tell the user to "
        "open a folder (or, to use the daemon's working directory "
        f"{str(cwd)!r}, to set the initialization option \"useWorkingDirectory\": true)"
    )


def _folders(editor: Editor) -> list[Folder]:
    workspace = editor.workspace
    folders = []
    if workspace is not None:
        for folder in workspace.folders.values():
            if (path := _local_path(folder.uri)) is not None:
                folders.append(Folder(folder.name or path.name, path))
        if not folders and workspace.root_uri and (path := _local_path(workspace.root_uri)) is not None:
            folders.append(Folder(path.name, path))
    return folders


def _local_path(uri: str) -> Path | None:
    fs_path = to_fs_path(uri)
    if fs_path is None:
        logger.warning("ignoring workspace folder %s: not a local file URI", uri)
        return None
    return Path(fs_path).resolve()


class ClientApprover:
    """Asks the editor's user with `chat/requestPermission`."""

    def __init__(self, editor: Editor):
        self._editor = editor
        self._client_cannot_ask = False

    async def ask(self, chat_id: str, call_id: str, call: llm.ToolCall, edit: ProposedEdit) -> Decision:
        title = f"{edit.verb} {edit.display_path}"
        if edit.runs_code:
            title += " (this file can run code: editor tasks, git hooks or shell setup run it without asking)"
        diff = await asyncio.to_thread(lambda: edit.diff)  # up to 10 MiB each side: not on the loop
        return await self._ask(chat_id, call_id, call, title, diff)

    async def ask_to_run(self, chat_id: str, call_id: str, call: llm.ToolCall, title: str) -> Decision:
        """For a call that changes no file (an MCP tool): the arguments say what it does."""
        return await self._ask(chat_id, call_id, call, title, diff="")

    async def _ask(self, chat_id: str, call_id: str, call: llm.ToolCall, title: str, diff: str) -> Decision:
        if self._client_cannot_ask:
            raise _cannot_ask()
        params = messages.RequestPermissionParams(
            chat_id=chat_id, call_id=call_id, name=call.name, arguments=call.arguments, title=title, diff=diff
        )
        try:
            response = await self._editor.request(messages.CHAT_REQUEST_PERMISSION, params)
        except JsonRpcMethodNotFound:
            self._client_cannot_ask = True
            raise _cannot_ask() from None
        except JsonRpcException as error:
            logger.info("chat/requestPermission failed (%s): taken as a denial", error)
            return "deny"
        return messages.RequestPermissionResult.read(response).decision


def _cannot_ask() -> ToolError:
    return ToolError(
        "changes and commands are refused: this editor cannot ask its user for permission "
        "(it does not implement chat/requestPermission). Tell the user what you would change instead."
    )


class EditorApplier:
    """Applies allowed changes through the editor when it can, else on disk."""

    def __init__(self, editor: Editor, workspace: Workspace):
        self._editor = editor
        self._workspace = workspace

    async def apply(self, edit: ProposedEdit) -> None:
        if not self._editor.applies_edits():
            await asyncio.to_thread(apply_to_disk, self._workspace, edit)
            return
        on_disk = await asyncio.to_thread(_text_now, self._workspace, edit.path)
        # From here to the send, no await: no didChange can slip in between the check
        # that the text is still the one the diff was computed on and its version.
        document = self._editor.open_document(edit.path)
        if (on_disk if document is None else document.source) != edit.old_text:
            raise ToolError(
                f"{edit.display_path} changed after the change was proposed (typed in the editor "
                "while the user was asked, or changed on disk); the change was not made. "
                "Read it again and redo the change"
            )
        version = None if document is None else document.version
        params = lsp.ApplyWorkspaceEditParams(
            edit=self._workspace_edit(edit, version), label=f"ollama: {edit.display_path}"
        )
        result = await self._editor.request(lsp.WORKSPACE_APPLY_EDIT, params)
        if not result.applied:
            reason = result.failure_reason or "no reason given"
            raise ToolError(f"the editor did not apply the change to {edit.display_path}: {reason}")
        if edit.old_text is None and edit.mode is not None:
            await asyncio.to_thread(_give_mode, edit.path, edit.mode)

    def _workspace_edit(self, edit: ProposedEdit, version: int | None) -> lsp.WorkspaceEdit:
        """The edit, for the document `version` its ranges belong to (None: not open)."""
        uri = edit.path.as_uri()
        new_text = edit.new_text
        if new_text is None:
            return lsp.WorkspaceEdit(document_changes=[lsp.DeleteFile(uri=uri)])
        change = lsp.TextDocumentEdit(
            text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
            edits=[text_edit(edit.old_text or "", new_text, self._editor.position_encoding())],
        )
        if edit.old_text is not None:
            return lsp.WorkspaceEdit(document_changes=[change])
        create = lsp.CreateFile(uri=uri, options=lsp.CreateFileOptions(overwrite=False, ignore_if_exists=True))
        return lsp.WorkspaceEdit(document_changes=[create, change])


def _give_mode(path: Path, mode: int) -> None:
    """The recorded permission bits, for a file the editor created (it cannot set them)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return  # not on disk yet (the editor keeps it in a buffer until saved)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _text_now(workspace: Workspace, path: Path) -> str | None:
    """The file's text now (None: it does not exist), to compare with what the edit replaces."""
    return workspace.read_text(path) if os.path.lexists(path) else None


def text_edit(old: str, new: str, encoding: str = lsp.PositionEncodingKind.Utf16) -> lsp.TextEdit:
    """The smallest single edit turning `old` into `new` (keeps the editor's cursor and undo tidy)."""
    prefix = len(os.path.commonprefix([old, new]))
    suffix = 0
    limit = min(len(old), len(new)) - prefix
    while suffix < limit and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return lsp.TextEdit(
        range=lsp.Range(
            start=_position(old, prefix, encoding), end=_position(old, len(old) - suffix, encoding)
        ),
        new_text=new[prefix : len(new) - suffix],
    )


def _position(text: str, offset: int, encoding: str) -> lsp.Position:
    """The LSP position of a string offset, in the negotiated position encoding."""
    line = text.count("\n", 0, offset)
    before = text[text.rfind("\n", 0, offset) + 1 : offset]
    if encoding == lsp.PositionEncodingKind.Utf8:
        column = len(before.encode("utf-8"))
    elif encoding == lsp.PositionEncodingKind.Utf32:
        column = len(before)
    else:
        column = len(before.encode("utf-16-le")) // 2
    return lsp.Position(line=line, character=column)
