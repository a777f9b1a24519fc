"""One editor session: the engine and the store of its workspace, spoken to in
wire types. Turns engine events into notifications and engine failures into
JSON-RPC errors.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import attrs

from ollama_chatd import llm
from ollama_chatd.engine.engine import TurnRequest, TurnResult, UnknownChat
from ollama_chatd.events import StatusChange, TextDelta, ToolCallUpdate, TurnEvent
from ollama_chatd.rpc import chats, messages, model_call, model_messages
from ollama_chatd.rpc.errors import in_contract_terms, invalid_params
from ollama_chatd.rpc.outbox import TokenStream
from ollama_chatd.rpc.peer import Editor

if TYPE_CHECKING:
    from ollama_chatd.app import Parts

logger = logging.getLogger(__name__)


class Session:
    def __init__(self, editor: Editor, parts: Parts):
        self._editor = editor
        self._parts = parts
        self.engine = parts.engine
        self.store = parts.store
        self.model_calls = parts.model_calls
        self.mcp = parts.mcp

    @in_contract_terms
    async def start_chat(self, params: messages.ChatStartParams) -> messages.ChatStartResult:
        if self.mcp is not None:
            await self.mcp.until_started()  # so the model sees the MCP tools from the first turn
        request = TurnRequest(
            chat_id=params.chat_id,
            prompt=params.prompt,
            model=params.model,
            system=params.system,
            think=params.think,
            options=params.options,
            images=tuple(params.images or ()),
        )
        result = await self.engine.run_turn(request, _Notifier(self._editor, TokenStream(params.chat_id), params.chat_id))
        return _to_wire(result)

    @in_contract_terms
    async def list_models(self, params: messages.ModelsParams) -> messages.ModelsResult:
        models = await self.engine.models.installed(refresh=params.refresh)
        return messages.ModelsResult(models=[_model_entry(model) for model in models])

    async def cancel_chat(self, chat_id: str) -> bool:
        """Stop the chat's turn; return once its `chat/start` has been answered."""
        task = self.engine.cancel(chat_id)
        if task is None:
            return False
        await asyncio.wait([task])
        return True

    async def cancel_all(self) -> None:
        if tasks := [*self.engine.cancel_all(), *self.model_calls.cancel_all()]:
            await asyncio.wait(tasks)

    @in_contract_terms
    async def call_model(self, params: model_messages.ModelChatParams) -> model_messages.ModelChatResult:
        tokens = TokenStream(params.request_id, model_messages.MODEL_TOKEN, "requestId")
        result = await self.model_calls.run(model_call.call_request(params), _Notifier(self._editor, tokens))
        return model_call.call_result(result)

    async def cancel_model_call(self, request_id: str) -> bool:
        """Stop a running `model/chat`; return once it has been answered."""
        task = self.model_calls.cancel(request_id)
        if task is None:
            return False
        await asyncio.wait([task])
        return True

    @in_contract_terms
    async def list_chats(self, params: messages.ListParams) -> messages.ListResult:
        summaries = await self.store.list_chats(limit=params.limit, before=params.before)
        return messages.ListResult(chats=[chats.entry(summary) for summary in summaries])

    @in_contract_terms
    async def history(self, chat_id: str) -> messages.HistoryResult:
        saved = await self.store.load(chat_id)
        if saved is None:
            raise _unknown_chat("chat/history", chat_id)
        return chats.history(saved, running=self.engine.is_running(chat_id))

    @in_contract_terms
    async def rename(self, params: messages.RenameParams) -> messages.RenameResult:
        if not await self.store.exists(params.chat_id):
            raise _unknown_chat("chat/rename", params.chat_id)
        title = params.title.strip()  # as the store keeps it
        self.store.rename(params.chat_id, title)
        return messages.RenameResult(chat_id=params.chat_id, title=title)

    @in_contract_terms
    async def delete(self, chat_id: str) -> messages.DeleteResult:
        existed = await self.store.exists(chat_id)
        # No await between these two: a turn started meanwhile makes forget refuse
        # (chat busy) before the store is told to delete.
        self.engine.forget(chat_id)
        self.store.delete(chat_id)
        return messages.DeleteResult(deleted=existed)

    @in_contract_terms
    async def revert(self, params: messages.RevertParams) -> messages.RevertResult:
        try:
            result = await self.engine.revert(params.chat_id, params.turn, self._parts.files)
        except UnknownChat:
            raise _unknown_chat("chat/revert", params.chat_id) from None
        return messages.RevertResult(
            restored=list(result.restored),
            skipped=[messages.SkippedFile(path=file.path, reason=file.reason) for file in result.skipped],
            commands_not_undone=list(result.commands_not_undone),
        )

    def mcp_servers(self) -> messages.McpResult:
        statuses = self.mcp.statuses() if self.mcp is not None else []
        return messages.McpResult(servers=[messages.McpServerEntry(**attrs.asdict(status)) for status in statuses])

    async def close(self) -> None:
        await self._parts.aclose()


class _Notifier:
    """The engine's event sink for one turn or model call: events become notifications."""

    def __init__(self, editor: Editor, tokens: TokenStream, chat_id: str = ""):
        self._editor = editor
        self._chat_id = chat_id  # a model call has none: it reports text only
        self._tokens = tokens
        self._state: str | None = None

    @property
    def congested(self) -> bool:
        return self._editor.tokens.congested

    async def until_drained(self) -> None:
        await self._editor.tokens.until_drained()

    def __call__(self, event: TurnEvent) -> None:
        if isinstance(event, TextDelta):
            self._editor.tokens.send_token(self._tokens, event.kind, event.text)
        elif isinstance(event, StatusChange):
            if event.state != self._state:  # the client hears of changes, not repeats
                self._state = event.state
                self._editor.notify(
                    messages.CHAT_STATUS,
                    messages.StatusParams(chat_id=self._chat_id, state=event.state, message=event.message),
                )
        elif isinstance(event, ToolCallUpdate):
            self._editor.notify(
                messages.CHAT_TOOL_CALL,
                messages.ToolCallParams(
                    chat_id=self._chat_id,
                    call_id=event.call_id,
                    name=event.name,
                    arguments=event.arguments,
                    status=event.status,
                    output=event.output,
                    error=event.error,
                    output_length=event.output_length,
                ),
            )


def _unknown_chat(method: str, chat_id: str) -> Exception:
    return invalid_params(
        f"{method}: there is no chat '{chat_id}' in this workspace (chat/list shows them)", "chatId"
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
        rules=result.rules,
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
