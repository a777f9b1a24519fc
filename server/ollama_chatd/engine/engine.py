"""The chat engine: every chat of a session, and the turns running in them.

It knows nothing of JSON-RPC: a front-end hands it a `TurnRequest` and an
`EventSink`, and gets a `TurnResult` back (or an exception). Cancelling the
task running `run_turn` stops the turn at once; `cancel()` does the same but
makes `run_turn` return a result with `stop_reason="cancelled"` instead of
raising.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from ollama_chatd import llm
from ollama_chatd.engine.context import context_size
from ollama_chatd.engine.conversation import Conversation, Conversations, Journal
from ollama_chatd.engine.models import ModelCatalog
from ollama_chatd.engine.running import RunningTasks
from ollama_chatd.engine.turn import (
    BUSY_RETRY_DELAYS,
    ToolRunner,
    Turn,
    TurnFailed,
    TurnRequest,
    TurnResult,
    TurnSettings,
)
from ollama_chatd.events import EventSink, ProjectRules, RulesSource

__all__ = [
    "ChatBusy",
    "ChatEngine",
    "ImagesNotSupported",
    "NoModelChosen",
    "ToolRunner",
    "TurnFailed",
    "TurnRequest",
    "TurnResult",
]


class ChatBusy(Exception):
    def __init__(self, chat_id: str):
        super().__init__(
            f"chat '{chat_id}' already has a turn running; wait for its answer "
            "or stop it with chat/cancel"
        )
        self.chat_id = chat_id


class NoModelChosen(Exception):
    def __init__(self) -> None:
        super().__init__(
            "no model chosen: pass `model` in chat/start, set `model` in initializationOptions, "
            "or set the OLLAMA_CHATD_MODEL environment variable (see `ollama list` for installed models)"
        )


class ImagesNotSupported(Exception):
    def __init__(self, model: str):
        super().__init__(
            f"model '{model}' cannot see images (it lacks the vision capability); "
            "choose a vision model (see chat/models) or send the message without images"
        )
        self.model = model


class ChatEngine:
    def __init__(
        self,
        backend: llm.ChatBackend,
        journal: Journal,
        *,
        default_model: str | None = None,
        tools: ToolRunner | None = None,
        max_tool_rounds: int = 10,
        max_context: int = 8192,
        busy_retry_delays: tuple[float, ...] = BUSY_RETRY_DELAYS,
        rules: RulesSource | None = None,
    ):
        self._backend = backend
        self._rules = rules
        self._journal = journal
        self._default_model = default_model
        self._max_context = max_context
        self.models = ModelCatalog(backend)
        self._conversations = Conversations(journal)
        self._running = RunningTasks()
        call_numbers = itertools.count(1)
        self._turn_settings = TurnSettings(
            tools=tools,
            max_tool_rounds=max_tool_rounds,
            refused_features={},
            new_call_id=lambda: f"call-{next(call_numbers)}",
            busy_retry_delays=busy_retry_delays,
        )

    def is_running(self, chat_id: str) -> bool:
        return chat_id in self._running

    def cancel(self, chat_id: str) -> asyncio.Task[Any] | None:
        """Stop the chat's running turn and return the task running it; its
        `run_turn` returns a result with `stop_reason="cancelled"`. None when no
        turn runs, or it is already being stopped (the first stop decides)."""
        return self._running.stop(chat_id)

    def cancel_all(self) -> list[asyncio.Task[Any]]:
        return self._running.stop_all()

    async def run_turn(self, request: TurnRequest, emit: EventSink) -> TurnResult:
        if request.chat_id in self._running:
            raise ChatBusy(request.chat_id)
        with self._running.register(request.chat_id) as running:
            turn: Turn | None = None
            try:
                conversation = await self._conversation_for(request)
                model = await self._model_for(request, conversation)
                rules = await self._read_rules()
                turn = Turn(conversation, model, request, self._backend, self._journal, self._turn_settings, emit, rules)
                try:
                    return await turn.run()
                finally:
                    self._settle(conversation, turn, model.name)
            except asyncio.CancelledError:
                # A stop asked through `cancel()` is a normal end of the turn; any other
                # cancellation (the front-end's own, shutdown) propagates.
                if not running.stopped_on_request():
                    raise
                return turn.result("cancelled") if turn else TurnResult.nothing(request.chat_id, "cancelled")

    async def _read_rules(self) -> ProjectRules | None:
        """The project's rules as they are now: each turn follows the file of its moment."""
        return None if self._rules is None else await asyncio.to_thread(self._rules.read)

    async def _conversation_for(self, request: TurnRequest) -> Conversation:
        conversation = await self._conversations.get(request.chat_id)
        return conversation or Conversation.start(request.chat_id, request.system)

    def forget(self, chat_id: str) -> None:
        """Drop a chat from memory (it was deleted); refused while a turn runs."""
        if chat_id in self._running:
            raise ChatBusy(chat_id)
        self._conversations.forget(chat_id)

    async def _model_for(self, request: TurnRequest, conversation: Conversation) -> llm.ModelInfo:
        name = request.model or conversation.model or self._default_model
        if not name:
            raise NoModelChosen()
        model = await self.models.describe(name)
        if request.images and not model.can("vision"):
            raise ImagesNotSupported(name)
        if conversation.num_ctx is None:
            conversation.num_ctx = context_size(model, request.options, self._max_context)
        return model

    def _settle(self, conversation: Conversation, turn: Turn, model: str) -> None:
        """Keep a turn that produced something, however it ended; forget one that
        produced nothing, so that retrying does not repeat the prompt."""
        if turn.produced_nothing:
            turn.forget()
            return
        conversation.model = model
        self._conversations.add(conversation)
