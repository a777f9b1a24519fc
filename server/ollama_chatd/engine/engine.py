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

import attrs

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
from ollama_chatd.events import EventSink, FileRestorer, ProjectRules, RulesSource, SkippedFile

__all__ = [
    "ChatBusy",
    "ChatEngine",
    "ImagesNotSupported",
    "NoModelChosen",
    "RevertResult",
    "ToolRunner",
    "TurnFailed",
    "TurnRequest",
    "TurnOutOfRange",
    "TurnResult",
    "UnknownChat",
]


class ChatBusy(Exception):
    def __init__(self, chat_id: str, reverting: bool = False):
        super().__init__(
            f"chat '{chat_id}' is being reverted; wait for chat/revert's answer"
            if reverting
            else f"chat '{chat_id}' already has a turn running; wait for its answer or stop it with chat/cancel"
        )
        self.chat_id = chat_id


class UnknownChat(Exception):
    def __init__(self, chat_id: str):
        super().__init__(f"there is no chat '{chat_id}' in this workspace (chat/list shows them)")
        self.chat_id = chat_id


class TurnOutOfRange(Exception):
    def __init__(self, turn: int, turns: int):
        has = f"has turns 0 to {turns - 1}" if turns else "has no turns"
        super().__init__(f"turn {turn} does not exist: the chat {has} (the index of a user message in chat/history)")
        self.turn = turn


@attrs.frozen
class RevertResult:
    restored: tuple[str, ...]  # the files put back as they were
    skipped: tuple[SkippedFile, ...]  # the files left alone, with why
    commands_not_undone: tuple[str, ...]  # what `run_command` ran in the reverted turns


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
        self._reverting: set[str] = set()
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
        self._check_idle(request.chat_id)
        with self._running.register(request.chat_id) as running:
            turn: Turn | None = None
            try:
                # Both may wait on a worker thread (the store, the rules file): together, so a
                # new chat's first token waits for one thread hop instead of two.
                conversation, rules = await asyncio.gather(self._conversation_for(request), self._read_rules())
                model = await self._model_for(request, conversation)
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
        self._check_idle(chat_id)
        self._conversations.forget(chat_id)

    async def revert(self, chat_id: str, turn: int, files: FileRestorer) -> RevertResult:
        """Put back the files changed by the chat's turns from `turn` (0-based) on, as they
        were before that turn, and drop those turns. Refused while a turn runs in the chat
        (stop it first); a chat/start meanwhile is refused too."""
        self._check_idle(chat_id)
        self._reverting.add(chat_id)
        try:
            plan = await self._journal.revert_plan(chat_id, turn)
            if plan is None:
                raise UnknownChat(chat_id)
            if not 0 <= turn < plan.turns:
                raise TurnOutOfRange(turn, plan.turns)
            report = await files.restore(plan.changes)
            self._journal.drop_turns(chat_id, turn)
            self._conversations.forget(chat_id)
        finally:
            self._reverting.discard(chat_id)
        return RevertResult(report.restored, report.skipped, tuple(plan.commands))

    def _check_idle(self, chat_id: str) -> None:
        if chat_id in self._running:
            raise ChatBusy(chat_id)
        if chat_id in self._reverting:
            raise ChatBusy(chat_id, reverting=True)

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
