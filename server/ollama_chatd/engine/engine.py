"""The chat engine: runs a turn (the model's reply, and its tool calls) for a chat.

It knows nothing of JSON-RPC: a front-end hands it a `TurnRequest` and an
`EventSink`, and gets a `TurnResult` back (or an exception). Cancelling the
task running `run_turn` stops the turn at once; `cancel()` does the same but
makes `run_turn` return a result with `stop_reason="cancelled"` instead of
raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from typing import Any, Literal, Protocol

import attrs

from ollama_chatd import llm
from ollama_chatd.engine.conversation import Conversation, Conversations
from ollama_chatd.engine.events import EventSink, TextDelta

logger = logging.getLogger(__name__)

StopReason = Literal["end_turn", "max_tokens", "cancelled", "max_tool_rounds"]


class ToolRunner(Protocol):
    """Runs the model's tool calls; see `ollama_chatd.tools.runner`."""

    def specs(self) -> tuple[llm.ToolSpec, ...]: ...

    async def run(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink) -> str:
        """Return the tool's result for the model (failures too, as readable text)."""
        ...

    def skip(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink, why: str) -> str:
        """Report a call that will not run (the turn ended first); return its result text."""
        ...


@attrs.frozen
class TurnRequest:
    chat_id: str
    prompt: str
    model: str | None = None
    system: str | None = None
    think: llm.ThinkLevel | None = None
    options: dict[str, Any] | None = None


@attrs.frozen
class TurnResult:
    chat_id: str
    stop_reason: StopReason
    content: str
    thinking: str | None
    usage: llm.Usage


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


class TurnFailed(Exception):
    """The backend failed mid-turn; what had been streamed is kept in the history."""

    def __init__(self, error: llm.BackendError, partial: llm.Message | None):
        super().__init__(str(error))
        self.error = error
        self.partial = partial


@attrs.define
class _RunningTurn:
    task: asyncio.Task[Any]
    stop_requested: bool = False


@attrs.define
class _Reply:
    """The assistant message being streamed in one round."""

    content: list[str] = attrs.Factory(list)
    thinking: list[str] = attrs.Factory(list)
    tool_calls: list[llm.ToolCall] = attrs.Factory(list)
    done_reason: llm.DoneReason | None = None
    usage: llm.Usage = llm.Usage()

    def is_empty(self) -> bool:
        return not (self.content or self.thinking or self.tool_calls)

    def message(self) -> llm.Message:
        return llm.Message(
            "assistant",
            "".join(self.content),
            thinking="".join(self.thinking) or None,
            tool_calls=tuple(self.tool_calls),
        )


class ChatEngine:
    def __init__(
        self,
        backend: llm.ChatBackend,
        *,
        default_model: str | None = None,
        tools: ToolRunner | None = None,
        max_tool_rounds: int = 10,
    ):
        self._backend = backend
        self._default_model = default_model
        self._tools = tools
        self._max_tool_rounds = max_tool_rounds
        self._conversations = Conversations()
        self._running: dict[str, _RunningTurn] = {}
        self._call_ids = itertools.count(1)
        self._refused_features: dict[str, set[str]] = {}

    def is_running(self, chat_id: str) -> bool:
        return chat_id in self._running

    def cancel(self, chat_id: str) -> asyncio.Task[Any] | None:
        """Stop the chat's running turn, if any, and return the task running it;
        its `run_turn` returns a result with `stop_reason="cancelled"`."""
        turn = self._running.get(chat_id)
        if turn is None:
            return None
        turn.stop_requested = True
        turn.task.cancel()
        return turn.task

    def cancel_all(self) -> list[asyncio.Task[Any]]:
        return [task for chat_id in list(self._running) if (task := self.cancel(chat_id))]

    async def run_turn(self, request: TurnRequest, emit: EventSink) -> TurnResult:
        if request.chat_id in self._running:
            raise ChatBusy(request.chat_id)
        conversation = self._conversations.get(request.chat_id) or Conversation.start(
            request.chat_id, request.system
        )
        model = request.model or conversation.model or self._default_model
        if not model:
            raise NoModelChosen()
        task = asyncio.current_task()
        assert task is not None
        turn = self._running[request.chat_id] = _RunningTurn(task)
        checkpoint = len(conversation.messages)
        conversation.append(llm.Message("user", request.prompt))
        try:
            return await self._run_rounds(conversation, checkpoint, model, request, emit)
        except asyncio.CancelledError:
            # A stop asked through `cancel()` is a normal end of the turn; any other
            # cancellation (the front-end's own, shutdown) propagates.
            if turn.stop_requested and task.uncancel() == 0:
                return _result(request.chat_id, "cancelled", conversation.messages[checkpoint:], llm.Usage())
            raise
        finally:
            del self._running[request.chat_id]
            self._settle(conversation, checkpoint, model)

    def _settle(self, conversation: Conversation, checkpoint: int, model: str) -> None:
        """Keep a turn that produced something, however it ended; forget one that
        produced nothing, so that retrying does not repeat the prompt."""
        if len(conversation.messages) == checkpoint + 1:
            del conversation.messages[checkpoint:]
            return
        conversation.model = model
        self._conversations.add(conversation)

    async def _run_rounds(
        self,
        conversation: Conversation,
        checkpoint: int,
        model: str,
        request: TurnRequest,
        emit: EventSink,
    ) -> TurnResult:
        usage = llm.Usage()
        for tool_round in itertools.count():
            reply = await self._stream_reply(model, request, conversation, emit)
            usage += reply.usage
            new_messages = conversation.messages[checkpoint:]
            if not reply.tool_calls or self._tools is None:
                stop = "max_tokens" if reply.done_reason == "length" else "end_turn"
                return _result(request.chat_id, stop, new_messages, usage)
            if tool_round >= self._max_tool_rounds:
                await self._run_tools(conversation, reply.tool_calls, emit, skip_all=True)
                return _result(request.chat_id, "max_tool_rounds", new_messages, usage)
            await self._run_tools(conversation, reply.tool_calls, emit)
        raise AssertionError("unreachable")

    def _backend_request(self, model: str, request: TurnRequest, conversation: Conversation) -> llm.ChatRequest:
        refused = self._refused_features.get(model, ())
        return llm.ChatRequest(
            model=model,
            messages=tuple(conversation.messages),
            tools=self._tools.specs() if self._tools and "tools" not in refused else (),
            think=None if "think" in refused else request.think,
            options=request.options,
        )

    async def _stream_reply(
        self, model: str, request: TurnRequest, conversation: Conversation, emit: EventSink
    ) -> _Reply:
        """One model reply; a feature the model refuses is dropped and the request retried."""
        while True:
            try:
                return await self._stream_once(self._backend_request(model, request, conversation), conversation, emit)
            except TurnFailed as failure:
                if not isinstance(failure.error, llm.FeatureNotSupported) or failure.partial is not None:
                    raise
                refused = self._refused_features.setdefault(model, set())
                if failure.error.feature in refused:
                    raise
                logger.info("%s: %s; retrying without it", model, failure.error)
                refused.add(failure.error.feature)

    async def _stream_once(
        self, request: llm.ChatRequest, conversation: Conversation, emit: EventSink
    ) -> _Reply:
        reply = _Reply()
        try:
            async with contextlib.aclosing(self._backend.stream_chat(request)) as chunks:
                async for chunk in chunks:
                    if chunk.thinking:
                        reply.thinking.append(chunk.thinking)
                        emit(TextDelta("thinking", chunk.thinking))
                    if chunk.content:
                        reply.content.append(chunk.content)
                        emit(TextDelta("content", chunk.content))
                    if chunk.tool_calls:
                        reply.tool_calls.extend(chunk.tool_calls)
                    if chunk.done:
                        reply.done_reason = chunk.done_reason
                        reply.usage = chunk.usage or llm.Usage()
        except asyncio.CancelledError:
            self._keep_partial(conversation, reply)
            raise
        except llm.BackendError as error:
            raise TurnFailed(error, self._keep_partial(conversation, reply)) from error
        conversation.append(reply.message())
        return reply

    @staticmethod
    def _keep_partial(conversation: Conversation, reply: _Reply) -> llm.Message | None:
        # Tool calls of an interrupted reply never ran: keep only the text, so the
        # history never holds calls without results.
        if not (reply.content or reply.thinking):
            return None
        partial = attrs.evolve(reply.message(), tool_calls=())
        conversation.append(partial)
        return partial

    async def _run_tools(
        self,
        conversation: Conversation,
        calls: list[llm.ToolCall],
        emit: EventSink,
        *,
        skip_all: bool = False,
    ) -> None:
        assert self._tools is not None
        pending = [(f"call-{next(self._call_ids)}", call) for call in calls]
        try:
            while pending:
                call_id, call = pending[0]
                if skip_all:
                    why = f"not run: the limit of {self._max_tool_rounds} tool rounds was reached"
                    result = self._tools.skip(conversation.chat_id, call_id, call, emit, why)
                else:
                    result = await self._tools.run(conversation.chat_id, call_id, call, emit)
                conversation.append(_tool_message(call, result))
                pending.pop(0)
        except asyncio.CancelledError:
            # Every call the model made gets a result, so the next turn's history is valid.
            for call_id, call in pending:
                result = self._tools.skip(conversation.chat_id, call_id, call, emit, "cancelled by the user")
                conversation.append(_tool_message(call, result))
            raise



def _result(
    chat_id: str, stop_reason: StopReason, new_messages: list[llm.Message], usage: llm.Usage
) -> TurnResult:
    """The turn's answer is its last assistant message (empty if it produced none)."""
    answer = next((m for m in reversed(new_messages) if m.role == "assistant"), None)
    if answer is None:
        return TurnResult(chat_id, stop_reason, "", None, usage)
    return TurnResult(chat_id, stop_reason, answer.content, answer.thinking, usage)


def _tool_message(call: llm.ToolCall, result: str) -> llm.Message:
    return llm.Message("tool", result, tool_name=call.name, tool_call_id=call.id)
