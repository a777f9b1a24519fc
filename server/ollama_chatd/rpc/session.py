"""One editor session: settings, the Ollama client and the engine, spoken to in
wire types. Turns engine events into notifications and engine failures into
JSON-RPC errors.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ollama_chatd import llm
from ollama_chatd.config import InitializationOptions, Settings
from ollama_chatd.engine.engine import ChatEngine, TurnRequest, TurnResult
from ollama_chatd.engine.events import StatusChange, TextDelta, ToolCallUpdate, TurnEvent
from ollama_chatd.ollama import OllamaClient
from ollama_chatd.rpc import messages
from ollama_chatd.rpc.editor import ClientApprover, EditorApplier, editor_workspace
from ollama_chatd.rpc.errors import to_rpc_error
from ollama_chatd.rpc.outbox import TokenStream
from ollama_chatd.tools.runner import WorkspaceTools

if TYPE_CHECKING:
    from ollama_chatd.rpc.server import ChatServer

logger = logging.getLogger(__name__)


class Session:
    def __init__(self, server: ChatServer, options: InitializationOptions):
        self._server = server
        self.settings = Settings.resolve(options)
        logger.info("Ollama at %s (from %s)", self.settings.host.url, self.settings.host.source)
        self.backend = OllamaClient(
            self.settings.host.url,
            headers=self.settings.headers,
            verify=self.settings.verify,
            stall_timeout=self.settings.stall_timeout,
        )
        tools = WorkspaceTools(
            lambda: editor_workspace(server),
            ClientApprover(server),
            EditorApplier(server),
            auto_approve=self.settings.auto_approve,
        )
        self.engine = ChatEngine(
            self.backend,
            default_model=self.settings.default_model,
            tools=tools,
            max_tool_rounds=self.settings.max_tool_rounds,
            max_context=self.settings.max_context,
        )

    async def start_chat(self, params: messages.ChatStartParams) -> messages.ChatStartResult:
        request = TurnRequest(
            chat_id=params.chat_id,
            prompt=params.prompt,
            model=params.model,
            system=params.system,
            think=params.think,
            options=params.options,
            images=tuple(params.images or ()),
        )
        try:
            result = await self.engine.run_turn(request, _Notifier(self._server, params.chat_id))
        except Exception as error:
            raise to_rpc_error(error) from error
        return _to_wire(result)

    async def list_models(self, params: messages.ModelsParams) -> messages.ModelsResult:
        try:
            models = await self.engine.models.installed(refresh=params.refresh)
        except Exception as error:
            raise to_rpc_error(error) from error
        return messages.ModelsResult(models=[_model_entry(model) for model in models])

    async def cancel_chat(self, chat_id: str) -> bool:
        """Stop the chat's turn; return once its `chat/start` has been answered."""
        task = self.engine.cancel(chat_id)
        if task is None:
            return False
        await asyncio.wait([task])
        return True

    async def cancel_all(self) -> None:
        if tasks := self.engine.cancel_all():
            await asyncio.wait(tasks)

    async def close(self) -> None:
        await self.backend.aclose()


class _Notifier:
    """The engine's event sink for one turn: events become notifications."""

    def __init__(self, server: ChatServer, chat_id: str):
        self._server = server
        self._chat_id = chat_id
        self._tokens = TokenStream(chat_id)
        self._state: str | None = None

    def __call__(self, event: TurnEvent) -> None:
        if isinstance(event, TextDelta):
            assert self._server.outbox is not None
            self._server.outbox.send_token(self._tokens, event.kind, event.text)
        elif isinstance(event, StatusChange):
            if event.state != self._state:  # the client hears of changes, not repeats
                self._state = event.state
                self._server.protocol.notify(
                    messages.CHAT_STATUS,
                    messages.StatusParams(chat_id=self._chat_id, state=event.state, message=event.message),
                )
        elif isinstance(event, ToolCallUpdate):
            self._server.protocol.notify(
                messages.CHAT_TOOL_CALL,
                messages.ToolCallParams(
                    chat_id=self._chat_id,
                    call_id=event.call_id,
                    name=event.name,
                    arguments=event.arguments,
                    status=event.status,
                    output=event.output,
                    error=event.error,
                ),
            )


def _to_wire(result: TurnResult) -> messages.ChatStartResult:
    return messages.ChatStartResult(
        chat_id=result.chat_id,
        stop_reason=result.stop_reason,
        message=messages.AssistantMessage(role="assistant", content=result.content, thinking=result.thinking),
        usage=messages.TurnUsage(
            prompt_tokens=result.usage.prompt_tokens,
            completion_tokens=result.usage.completion_tokens,
            total_duration_ms=result.usage.total_duration_ns / 1e6,
            context_tokens=result.context_tokens,
            context_limit=result.context_limit,
        ),
    )


def _model_entry(model: llm.ModelInfo) -> messages.ModelEntry:
    return messages.ModelEntry(
        name=model.name,
        size_bytes=model.size_bytes,
        family=model.family,
        parameter_size=model.parameter_size,
        quantization=model.quantization,
        capabilities=sorted(model.capabilities or ()),
        context_length=model.context_length,
    )
