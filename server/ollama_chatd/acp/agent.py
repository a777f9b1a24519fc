"""ollama-chatd as an ACP agent: the SDK's `Agent` methods over the chat engine.

A session is a stored chat (its id is the chat id) in the store of its cwd's
workspace. Failures are answered with the same codes, wording and `data.kind` as
`serve` (the mapping in `rpc/errors.py`).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from acp import PROTOCOL_VERSION, RequestError, schema

from ollama_chatd import __version__
from ollama_chatd.acp import models
from ollama_chatd.acp.client_side import ClientSide
from ollama_chatd.acp.outbox import UpdateOutbox
from ollama_chatd.acp.projects import Projects
from ollama_chatd.acp.prompt import UnsupportedContent, read_prompt
from ollama_chatd.acp.replay import replay
from ollama_chatd.acp.session import Session, TurnReporter
from ollama_chatd.config import Settings
from ollama_chatd.engine.engine import TurnRequest
from ollama_chatd.mcp.config import ServerConfig, from_acp
from ollama_chatd.structuring import FieldError

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

_STOP_REASONS: dict[str, schema.StopReason] = {
    "end_turn": "end_turn",
    "max_tokens": "max_tokens",
    "max_tool_rounds": "max_turn_requests",
    "cancelled": "cancelled",
}


def in_acp_terms(handler: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Answer whatever `handler` raises as `serve` would (code, message, data.kind)."""

    @functools.wraps(handler)
    async def answer(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await handler(*args, **kwargs)
        except RequestError:
            raise
        except UnsupportedContent as error:
            raise invalid_params(str(error), "prompt") from error
        except Exception as error:
            from ollama_chatd.rpc.errors import to_rpc_error

            raise _as_acp(to_rpc_error(error)) from error

    return answer


# rpc/errors.py holds serve's wording; it is imported when an error is answered, not
# at start-up, because it loads pygls and lsprotocol (0.4 s of CPU) that ACP never needs.


def invalid_params(message: str, field: str) -> RequestError:
    from ollama_chatd.rpc import errors

    return _as_acp(errors.invalid_params(message, field))


def _as_acp(error: Any) -> RequestError:
    return RequestError(error.code, error.message, error.data)


class ChatAgent:
    def __init__(self, projects: Projects, settings: Settings):
        self._projects = projects
        self._settings = settings
        self._default_model = settings.default_model
        self._sessions: dict[str, Session] = {}
        self._client: Any = None
        self._client_capabilities: schema.ClientCapabilities | None = None
        self._outbox: UpdateOutbox | None = None

    def on_connect(self, conn: Any) -> None:
        self._client = conn
        self._outbox = UpdateOutbox(conn)

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        if self._outbox is not None:
            await self._outbox.close()
        await self._projects.close()

    # -- set-up --------------------------------------------------------------------

    async def initialize(
        self, protocol_version: int, client_capabilities: schema.ClientCapabilities | None = None, **_: Any
    ) -> schema.InitializeResponse:
        self._client_capabilities = client_capabilities
        images = await models.sees_images(self._projects.backend, self._default_model)
        return schema.InitializeResponse(
            protocol_version=PROTOCOL_VERSION,
            agent_capabilities=schema.AgentCapabilities(
                load_session=True,
                prompt_capabilities=schema.PromptCapabilities(image=images, embedded_context=True),
                mcp_capabilities=schema.McpCapabilities(http=True, sse=False),
            ),
            agent_info=schema.Implementation(name="ollama-chatd", title="ollama-chatd", version=__version__),
        )

    @in_acp_terms
    async def new_session(self, cwd: str, mcp_servers: list[Any] | None = None, **_: Any) -> schema.NewSessionResponse:
        session = self._open(uuid.uuid4().hex, cwd, self._default_model, mcp_servers)
        options = await models.config_options(session)
        return schema.NewSessionResponse(session_id=session.id, config_options=options)

    @in_acp_terms
    async def load_session(
        self, cwd: str, session_id: str, mcp_servers: list[Any] | None = None, **_: Any
    ) -> schema.LoadSessionResponse:
        chat = await self._projects.store(_workspace_folder(cwd)).load(session_id)
        if chat is None:
            raise invalid_params(
                f"session/load: there is no chat '{session_id}' in the workspace {cwd} "
                "(chats are kept per workspace folder)",
                "sessionId",
            )
        session = self._sessions.get(session_id) or self._open(
            session_id, cwd, chat.model or self._default_model, mcp_servers
        )
        assert self._outbox is not None
        for update in replay(chat, session.workspace):
            self._outbox.send(session.id, update)
        await self._outbox.flush()
        options = await models.config_options(session)
        return schema.LoadSessionResponse(config_options=options)

    def _open(self, session_id: str, cwd: str, model: str | None, mcp_servers: list[Any] | None) -> Session:
        folder = _workspace_folder(cwd)
        servers = _mcp_servers(mcp_servers)
        client = ClientSide(self._client, session_id, self._client_capabilities)
        store, backend = self._projects.store(folder), self._projects.backend
        session = Session(session_id, folder, store, backend, client, self._settings, servers, model)
        self._sessions[session_id] = session
        return session

    @in_acp_terms
    async def set_config_option(
        self, config_id: str, session_id: str, value: str | bool, **_: Any
    ) -> schema.SetSessionConfigOptionResponse:
        session = self._session("session/set_config_option", session_id)
        if config_id != models.MODEL_OPTION:
            raise invalid_params(
                f"session/set_config_option: there is no option '{config_id}'; the only one is '{models.MODEL_OPTION}'",
                "configId",
            )
        if not isinstance(value, str) or not value:
            raise invalid_params("session/set_config_option: `value` must be a model name", "value")
        await session.engine.models.describe(value)  # ModelNotFound says how to get it
        session.model = value
        return schema.SetSessionConfigOptionResponse(
            config_options=await models.config_options(session)
        )

    # -- turns ---------------------------------------------------------------------

    @in_acp_terms
    async def prompt(self, prompt: list[Any], session_id: str, **_: Any) -> schema.PromptResponse:
        session = self._session("session/prompt", session_id)
        assert self._outbox is not None
        session.stop_requested = False
        parts = await read_prompt(prompt, session.workspace)
        if session.mcp is not None:
            await session.mcp.until_started()  # so the model sees the MCP tools from the first turn
        if session.stop_requested:  # cancelled before the turn began: nothing to stop in the engine
            return schema.PromptResponse(stop_reason="cancelled")
        request = TurnRequest(chat_id=session.id, prompt=parts.text, model=session.model, images=parts.images)
        try:
            result = await session.engine.run_turn(request, TurnReporter(session, self._outbox))
        finally:
            await self._outbox.flush()  # every update of the turn goes before its answer
        if result.context_limit:
            self._outbox.send(session.id, _usage(result.context_tokens, result.context_limit))
            await self._outbox.flush()
        return schema.PromptResponse(stop_reason=_STOP_REASONS[result.stop_reason])

    async def cancel(self, session_id: str, **_: Any) -> None:
        session = self._sessions.get(session_id)
        if session is None:
            logger.info("session/cancel for unknown session %s ignored", session_id)
            return
        session.stop_requested = True
        session.engine.cancel(session.id)

    def _session(self, method: str, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise invalid_params(
                f"{method}: there is no session '{session_id}'; start one with session/new or session/load",
                "sessionId",
            )
        return session


def _usage(used: int, size: int) -> schema.UsageUpdate:
    return schema.UsageUpdate(session_update="usage_update", used=used, size=size)


def _mcp_servers(servers: list[Any] | None) -> tuple[ServerConfig, ...]:
    as_sent = [server.model_dump(mode="json", by_alias=True, exclude_none=True) for server in servers or []]
    try:
        return from_acp(as_sent)
    except FieldError as error:
        raise invalid_params(f"session/new: {error}", error.field) from None


def _workspace_folder(cwd: str) -> Path:
    path = Path(cwd)
    if not path.is_absolute() or not path.is_dir():
        raise invalid_params(f"`cwd` must be the absolute path of an existing folder, got {cwd!r}", "cwd")
    return path.resolve()
