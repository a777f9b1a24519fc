"""The JSON-RPC front-end: thin pygls handlers that delegate to the session.

The session's parts (backend, store, tools, engine) are built by the composition
root (`app.open_workspace`), handed in by whoever starts the server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from ollama_chatd import __version__, logs
from ollama_chatd.config import InitializationOptions, OptionError, ServeOptions, Settings, parse_initialization_options
from ollama_chatd.parent import watch_parent
from ollama_chatd.rpc import messages, model_messages
from ollama_chatd.rpc.editor import ClientApprover, EditorApplier, editor_workspace
from ollama_chatd.rpc.errors import invalid_params, log_server_error
from ollama_chatd.rpc.peer import Editor
from ollama_chatd.rpc.protocol import ChatProtocol, chat_converter
from ollama_chatd.rpc.session import Session

if TYPE_CHECKING:
    from ollama_chatd.app import Parts

OpenWorkspace = Callable[..., "Parts"]  # app.open_workspace

logger = logging.getLogger(__name__)


class ChatServer(LanguageServer):
    def __init__(self, options: ServeOptions, open_workspace: OpenWorkspace) -> None:
        super().__init__(
            "ollama-chatd",
            __version__,
            protocol_cls=ChatProtocol,
            converter_factory=chat_converter,
            text_document_sync_kind=lsp.TextDocumentSyncKind.Incremental,
        )
        self.editor = Editor(self)
        self._options = options
        self._open_workspace = open_workspace
        self._stop_forwarding_logs: Callable[[], None] | None = None
        self.initialized = False
        self.stop_requested = asyncio.Event()
        self._session: Session | None = None

    def session(self) -> Session:
        """The session, opened with the defaults and the environment for a script
        that skipped `initialize` (this opens the store and the backend)."""
        if self._session is None:
            self._session = self._new_session(InitializationOptions())
        return self._session

    def open_session(self, params: lsp.InitializeParams) -> None:
        try:
            options = parse_initialization_options(params.initialization_options)
            self._configure_logging(options)
            self._session = self._new_session(options)
        except OptionError as error:
            raise invalid_params(f"initialize: initializationOptions {error}", f"initializationOptions.{error.field}") from None
        except ValueError as error:  # e.g. an OLLAMA_HOST that cannot be an address
            raise invalid_params(f"initialize: {error}", "initializationOptions") from None
        self.initialized = True
        if params.process_id is not None:
            watch_parent(params.process_id, self.stop_requested.set)

    def _new_session(self, options: InitializationOptions) -> Session:
        settings = Settings.resolve(options)
        workspace = editor_workspace(self.editor, use_working_directory=settings.use_working_directory)
        parts = self._open_workspace(
            settings,
            self._options,
            workspace,
            approver=ClientApprover(self.editor),
            applier=EditorApplier(self.editor, workspace),
            on_problem=self.editor.tell_user,
        )
        return Session(self.editor, parts)

    async def cancel_all(self) -> None:
        """Stop every running turn; nothing to do (and nothing opened) before a session."""
        if self._session is not None:
            await self._session.cancel_all()

    def _configure_logging(self, options: InitializationOptions) -> None:
        level = self._options.log_level or options.log_level
        log_file = self._options.log_file or options.log_file
        if (level, log_file) != (self._options.log_level, self._options.log_file):
            logs.configure(level, log_file)
        if self._stop_forwarding_logs is None:
            self._stop_forwarding_logs = logs.forward_to_client(self._log_to_client, asyncio.get_running_loop())

    def _log_to_client(self, kind: int, text: str) -> None:
        self.protocol.notify(lsp.WINDOW_LOG_MESSAGE, lsp.LogMessageParams(type=lsp.MessageType(kind), message=text))

    def report_server_error(self, error: Exception, source: object) -> None:
        # pygls' default tells the client through window/showMessage, which recurses
        # when stdout is already closed; the log is the right place.
        log_server_error(error, source)

    async def close(self) -> None:
        """Stop every running turn (keeping what was streamed) and release resources."""
        running = [f for f in self.protocol._request_futures.values() if isinstance(f, asyncio.Future)]
        for future in running:
            future.cancel()
        if running:
            await asyncio.wait(running, timeout=2.0)
        if self._session is not None:
            await self._session.close()
        if self._stop_forwarding_logs is not None:
            self._stop_forwarding_logs()


def create_server(options: ServeOptions, open_workspace: OpenWorkspace) -> ChatServer:
    server = ChatServer(options, open_workspace)

    @server.feature(lsp.INITIALIZE)
    def initialize(ls: ChatServer, params: lsp.InitializeParams) -> None:
        ls.open_session(params)

    @server.feature(messages.CHAT_START)
    async def chat_start(ls: ChatServer, params: messages.ChatStartParams) -> messages.ChatStartResult:
        return await ls.session().start_chat(params)

    @server.feature(messages.CHAT_CANCEL)
    async def chat_cancel(ls: ChatServer, params: messages.ChatCancelParams) -> messages.ChatCancelResult:
        return messages.ChatCancelResult(cancelled=await ls.session().cancel_chat(params.chat_id))

    @server.feature(model_messages.MODEL_CHAT)
    async def model_chat(ls: ChatServer, params: model_messages.ModelChatParams) -> model_messages.ModelChatResult:
        return await ls.session().call_model(params)

    @server.feature(model_messages.MODEL_CANCEL)
    async def model_cancel(ls: ChatServer, params: model_messages.ModelCancelParams) -> messages.ChatCancelResult:
        return messages.ChatCancelResult(cancelled=await ls.session().cancel_model_call(params.request_id))

    @server.feature(messages.CHAT_MODELS)
    async def chat_models(ls: ChatServer, params: messages.ModelsParams) -> messages.ModelsResult:
        return await ls.session().list_models(params)

    @server.feature(messages.CHAT_LIST)
    async def chat_list(ls: ChatServer, params: messages.ListParams) -> messages.ListResult:
        return await ls.session().list_chats(params)

    @server.feature(messages.CHAT_HISTORY)
    async def chat_history(ls: ChatServer, params: messages.ChatIdParams) -> messages.HistoryResult:
        return await ls.session().history(params.chat_id)

    @server.feature(messages.CHAT_RENAME)
    async def chat_rename(ls: ChatServer, params: messages.RenameParams) -> messages.RenameResult:
        return await ls.session().rename(params)

    @server.feature(messages.CHAT_DELETE)
    async def chat_delete(ls: ChatServer, params: messages.ChatIdParams) -> messages.DeleteResult:
        return await ls.session().delete(params.chat_id)

    @server.feature(messages.CHAT_REVERT)
    async def chat_revert(ls: ChatServer, params: messages.RevertParams) -> messages.RevertResult:
        return await ls.session().revert(params)

    @server.feature(messages.CHAT_MCP)
    def chat_mcp(ls: ChatServer, params: messages.McpParams) -> messages.McpResult:
        return ls.session().mcp_servers()

    @server.feature(lsp.SHUTDOWN)
    async def shutdown(ls: ChatServer, *_: object) -> None:
        # Running turns end as by chat/cancel, answering with what they streamed.
        await ls.cancel_all()

    return server
