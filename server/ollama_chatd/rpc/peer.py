"""The editor at the other end of the pipe, as a session sees it.

The server builds one `Editor`; the session, the approver and the applier take
it instead of the server, so none of them reaches into pygls' server object (or
imports the server module, which builds them).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument
from pygls.workspace import Workspace as LspWorkspace

from ollama_chatd.rpc.outbox import Outbox

logger = logging.getLogger(__name__)


class Editor:
    def __init__(self, server: LanguageServer):
        self._server = server
        self.outbox: Outbox | None = None  # set once stdout is connected

    @property
    def tokens(self) -> Outbox:
        assert self.outbox is not None, "the outbox is connected before any request is handled"
        return self.outbox

    def notify(self, method: str, params: object) -> None:
        self._server.protocol.notify(method, params)

    def tell_user(self, text: str) -> None:
        """Something the user should know that is not part of any chat."""
        logger.warning("%s", text)
        self._server.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Warning, message=f"ollama-chatd: {text}"))

    async def request(self, method: str, params: object):
        """A request to the editor that, if our turn is cancelled, is cancelled too.

        pygls 2.1 raises InvalidStateError when a reply arrives for a request whose
        awaiting task was cancelled (pygls#621), so we forget the request first.
        """
        protocol = self._server.protocol
        msg_id = str(uuid.uuid4())
        future = protocol.send_request(method, params, msg_id=msg_id)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            protocol._request_futures.pop(msg_id, None)
            protocol._result_types.pop(msg_id, None)
            protocol.notify(lsp.CANCEL_REQUEST, lsp.CancelParams(id=msg_id))
            raise

    @property
    def workspace(self) -> LspWorkspace | None:
        """What the editor opened; None before `initialize` (a script using the defaults)."""
        try:
            return self._server.workspace
        except RuntimeError:
            return None

    def open_buffer(self, path: Path) -> str | None:
        """The unsaved text of `path` when it is open in the editor."""
        document = self.open_document(path)
        return None if document is None else document.source

    def open_buffer_paths(self) -> list[Path]:
        """The local files the editor has open (what `open_buffer` may answer for)."""
        workspace = self.workspace
        if workspace is None:
            return []
        return [Path(path) for uri in list(workspace.text_documents) if (path := to_fs_path(uri))]

    def open_document(self, path: Path) -> TextDocument | None:
        """The editor's open buffer of `path`, if any."""
        workspace = self.workspace
        return None if workspace is None else workspace.text_documents.get(unquote(path.as_uri()))

    def applies_edits(self) -> bool:
        """Whether the editor said it can apply `workspace/applyEdit`."""
        try:
            capabilities = self._server.client_capabilities.workspace
        except AttributeError:  # no `initialize`
            return False
        return capabilities is not None and bool(capabilities.apply_edit)

    def position_encoding(self) -> str:
        return self._server.server_capabilities.position_encoding or lsp.PositionEncodingKind.Utf16
