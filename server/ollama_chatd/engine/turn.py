"""One turn of a chat: request, stream, run the tools the model asked for, repeat."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ollama_chatd import llm
from ollama_chatd.engine.context import answer_reserve, fit_window
from ollama_chatd.engine.conversation import Conversation, Journal
from ollama_chatd.engine.rules import system_message
from ollama_chatd.engine.tool_budget import MAX_CALLS_PER_REPLY, ToolBudget
from ollama_chatd.events import EventSink, ProjectRules, StatusChange, StopReason, TextDelta, ToolResult, ToolRunner

logger = logging.getLogger(__name__)

BUSY_RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds before each retry of a 429 or 503 (server busy)
LONGEST_RETRY_AFTER_S = 30.0  # a server asking for a longer wait gets its error shown instead
CHECKPOINT_SECONDS = 1.0
INLINE_SIZING_MESSAGES = 64  # a window this short, without tool calls, is sized in microseconds


@attrs.frozen
class TurnRequest:
    chat_id: str
    prompt: str
    model: str | None = None
    system: str | None = None
    think: llm.ThinkLevel | None = None
    options: dict[str, Any] | None = None
    images: tuple[str, ...] = ()


@attrs.frozen
class TurnResult:
    chat_id: str
    stop_reason: StopReason
    content: str
    thinking: str | None
    usage: llm.Usage  # summed over the turn's rounds
    context_tokens: int  # prompt + answer of the last round: how full the window is
    context_limit: int
    rules: str | None = None  # the rules file the turn followed (AGENTS.md), if any

    @classmethod
    def nothing(cls, chat_id: str, stop_reason: StopReason) -> TurnResult:
        """A turn stopped before it asked the model anything."""
        return cls(chat_id, stop_reason, "", None, llm.Usage(), 0, 0)


class TurnFailed(Exception):
    """The backend failed mid-turn; what had been streamed is kept in the history."""

    def __init__(self, error: llm.BackendError, partial: llm.Message | None):
        super().__init__(str(error))
        self.error = error
        self.partial = partial


@attrs.frozen
class TurnSettings:
    """What the engine decides for every turn."""

    tools: ToolRunner | None
    max_tool_rounds: int
    refused_features: dict[str, set[str]]  # per model, learnt from the server's 400s
    new_call_id: Callable[[], str]
    busy_retry_delays: Sequence[float] = BUSY_RETRY_DELAYS


@attrs.define
class StreamedReply:
    """The assistant message being streamed in one round."""

    content: list[str] = attrs.Factory(list)
    thinking: list[str] = attrs.Factory(list)
    tool_calls: list[llm.ToolCall] = attrs.Factory(list)
    done_reason: llm.DoneReason | None = None
    usage: llm.Usage = llm.Usage()
    calls_left_out: int = 0  # past the one over the cap, neither kept nor run

    def add_calls(self, calls: Sequence[llm.ToolCall]) -> None:
        """Keep the calls up to one over the cap (it will carry the error), count the rest."""
        room = max(MAX_CALLS_PER_REPLY + 1 - len(self.tool_calls), 0)
        self.tool_calls.extend(calls[:room])
        self.calls_left_out += len(calls) - len(calls[:room])

    def message(self) -> llm.Message:
        return llm.Message(
            "assistant",
            "".join(self.content),
            thinking="".join(self.thinking) or None,
            tool_calls=tuple(self.tool_calls),
        )


class Turn:
    def __init__(
        self,
        conversation: Conversation,
        model: llm.ModelInfo,
        request: TurnRequest,
        backend: llm.ChatBackend,
        journal: Journal,
        settings: TurnSettings,
        emit: EventSink,
        rules: ProjectRules | None = None,
    ):
        self._conversation = conversation
        self._rules = rules
        self._model = model
        self._request = request
        self._backend = backend
        self._journal = journal
        self._settings = settings
        self._emit = emit
        self._checkpoint = len(conversation.messages)
        self._usage = llm.Usage()
        self._last_round = llm.Usage()
        self._said_no_tools = False
        self._budget = ToolBudget()

    @property
    def produced_nothing(self) -> bool:
        return len(self._conversation.messages) <= self._checkpoint + 1

    def forget(self) -> None:
        """Leave the chat as it was before this turn."""
        del self._conversation.messages[self._checkpoint :]
        self._journal.discard_turn(self._request.chat_id)

    async def run(self) -> TurnResult:
        user = llm.Message("user", self._request.prompt, images=self._request.images)
        self._conversation.append(user)
        self._journal.begin_turn(
            self._request.chat_id, user, model=self._model.name, system=self._request.system
        )
        stop_reason = "error"
        try:
            result = await self._run_rounds()
            stop_reason = result.stop_reason
            return result
        except asyncio.CancelledError:
            stop_reason = "cancelled"
            raise
        finally:
            self._journal.end_turn(self._request.chat_id, stop_reason=stop_reason, usage=self._usage)

    async def _run_rounds(self) -> TurnResult:
        for tool_round in itertools.count():
            reply = await self._reply()
            if not reply.tool_calls or self._settings.tools is None:
                return self.result("max_tokens" if reply.done_reason == "length" else "end_turn")
            if tool_round >= self._settings.max_tool_rounds:
                limit = self._settings.max_tool_rounds
                await self._run_tools(reply.tool_calls, skip=f"not run: the limit of {limit} tool rounds was reached")
                return self.result("max_tool_rounds")
            await self._run_tools(reply.tool_calls, left_out=reply.calls_left_out)
        raise AssertionError("unreachable")

    def result(self, stop_reason: StopReason) -> TurnResult:
        """The turn's answer is its last assistant message (empty if it produced none)."""
        new_messages = self._conversation.messages[self._checkpoint :]
        answer = next((m for m in reversed(new_messages) if m.role == "assistant"), None)
        return TurnResult(
            chat_id=self._request.chat_id,
            stop_reason=stop_reason,
            content=answer.content if answer else "",
            thinking=answer.thinking if answer else None,
            usage=self._usage,
            context_tokens=self._last_round.prompt_tokens + self._last_round.completion_tokens,
            context_limit=self._conversation.num_ctx or 0,
            rules=self._rules.name if self._rules else None,
        )

    # -- one model reply ---------------------------------------------------------------

    async def _reply(self) -> StreamedReply:
        """One model reply, retrying what can be retried before anything arrived:
        a feature the model refuses (dropped), and a busy server (with backoff)."""
        delays = self._settings.busy_retry_delays
        busy_retries = 0
        while True:
            try:
                reply = await self._stream_once(await self._backend_request())
            except TurnFailed as failure:
                if failure.partial is not None:
                    raise
                if self._drop_refused_feature(failure.error):
                    continue
                if busy_retries == len(delays) or (delay := _busy_wait(failure.error, delays[busy_retries])) is None:
                    raise
                busy_retries += 1
                self._status("retrying", f"{failure.error.server_title} is busy ({failure.error}); trying again in {delay:g} s")
                await asyncio.sleep(delay)
                continue
            self._usage += reply.usage
            self._last_round = reply.usage
            return reply

    def _drop_refused_feature(self, error: llm.BackendError) -> bool:
        """Remember a feature the model refused (for the session); True to retry without it."""
        if not isinstance(error, llm.FeatureNotSupported):
            return False
        refused = self._settings.refused_features.setdefault(self._model.name, set())
        if error.feature in refused:
            return False
        refused.add(error.feature)
        logger.info("%s: %s; retrying without %s", self._model.name, error, error.feature)
        return True

    async def _backend_request(self) -> llm.ChatRequest:
        refused = self._settings.refused_features.get(self._model.name, set())
        offer_tools = self._settings.tools is not None and self._model.can("tools") and "tools" not in refused
        tools = self._settings.tools.specs() if offer_tools and self._settings.tools else ()
        if self._settings.tools is not None and not offer_tools and not self._said_no_tools:
            self._said_no_tools = True
            self._status("no_tools", f"{self._model.name} cannot use tools: it answers without access to the workspace")
        think = self._request.think
        if think is not None and (not self._model.can("thinking") or "think" in refused):
            think = None  # Ollama refuses `think` for models that cannot think
        num_ctx = self._conversation.num_ctx or 0
        return llm.ChatRequest(
            model=self._model.name,
            messages=await self._window(tools, num_ctx),
            tools=tools,
            think=think,
            options={**(self._request.options or {}), "num_ctx": num_ctx},
        )

    async def _window(self, tools: Sequence[llm.ToolSpec], num_ctx: int) -> tuple[llm.Message, ...]:
        """The history that fits the context window (oldest whole turns left out).

        A long history, or one with tool calls (their arguments are sized as JSON), is
        sized in a worker thread: that takes a while, and the other chats keep streaming
        meanwhile. A short plain one is sized here, sparing the turn's first token a
        thread hop (a third of a millisecond).
        """
        stored = tuple(self._conversation.messages)
        own = 1 if stored and stored[0].role == "system" else 0
        system = system_message(stored[0].content if own else None, self._rules)
        head = (system,) if system else ()
        messages = (*head, *stored[own:])
        shift = len(head) - own  # window_start counts the stored messages
        start = max(self._conversation.window_start + shift, len(head))
        budget = num_ctx - answer_reserve(num_ctx)
        if _quick_to_size(messages[start:]):
            new_start = fit_window(messages, start, budget, tools)
        else:
            new_start = await asyncio.to_thread(fit_window, messages, start, budget, tools)
        if new_start > start:
            self._status(
                "truncated",
                f"left {new_start - start} older messages out so the chat fits the model's "
                f"{num_ctx}-token context window",
            )
        self._conversation.window_start = new_start - shift
        return (*head, *messages[new_start:])

    async def _stream_once(self, request: llm.ChatRequest) -> StreamedReply:
        reply = StreamedReply()
        self._status("waiting", f"waiting for {request.model}")
        checkpoints = asyncio.create_task(self._checkpoint_while_streaming(reply))
        try:
            async with contextlib.aclosing(self._backend.stream_chat(request)) as chunks:
                first = True
                async for chunk in chunks:
                    if first:
                        self._status("streaming", f"{request.model} is answering")
                        first = False
                    if chunk.thinking:
                        reply.thinking.append(chunk.thinking)
                        self._emit(TextDelta("thinking", chunk.thinking))
                    if chunk.content:
                        reply.content.append(chunk.content)
                        self._emit(TextDelta("content", chunk.content))
                    if chunk.tool_calls:
                        reply.add_calls(chunk.tool_calls)
                    if chunk.done:
                        reply.done_reason = chunk.done_reason
                        reply.usage = chunk.usage or llm.Usage()
                    elif self._emit.congested:
                        # Not reading lets TCP slow the model down instead of the
                        # unread answer piling up in memory.
                        await self._emit.until_drained()
        except asyncio.CancelledError:
            self._keep_partial(reply, "cancelled")
            raise
        except llm.BackendError as error:
            raise TurnFailed(error, self._keep_partial(reply, "failed")) from error
        finally:
            checkpoints.cancel()
        self._record(reply.message())
        return reply

    async def _checkpoint_while_streaming(self, reply: StreamedReply) -> None:
        """Save the answer so far every second, off the token path, so a crash
        loses at most a second of it."""
        saved = 0
        while True:
            await asyncio.sleep(CHECKPOINT_SECONDS)
            if (size := len(reply.content) + len(reply.thinking)) != saved:
                saved = size
                self._journal.checkpoint(self._request.chat_id, _without_calls(reply.message()))

    def _keep_partial(self, reply: StreamedReply, status: str) -> llm.Message | None:
        # Tool calls of an interrupted reply never ran: keep only the text, so the
        # history never holds calls without results.
        if not (reply.content or reply.thinking):
            return None
        partial = _without_calls(reply.message())
        self._record(partial, status)
        return partial

    def _record(self, message: llm.Message, status: str = "complete") -> None:
        self._conversation.append(message)
        self._journal.append(self._request.chat_id, message, status)

    def _status(self, state: Any, message: str) -> None:
        self._emit(StatusChange(state, message))

    # -- tools ------------------------------------------------------------------------------

    def _result_message(self, call: llm.ToolCall, result: str | ToolResult) -> llm.Message:
        """A run's result, charged to the turn's budget; its images only for a model that can see."""
        text, images = (result, ()) if isinstance(result, str) else (result.text, result.images)
        text = self._budget.charge(text)
        if images and not self._model.can("vision"):
            text, images = f"{text}\n[the images are not shown: {self._model.name} cannot see images]", ()
        elif images and not self._budget.afford(sum(len(image) for image in images)):
            text, images = f"{text}\n[the images are not shown: this turn's tool results are too large]", ()
        return attrs.evolve(_tool_message(call, text), images=images)

    async def _run_tools(self, calls: list[llm.ToolCall], *, skip: str | None = None, left_out: int = 0) -> None:
        tools = self._settings.tools
        assert tools is not None
        chat_id = self._conversation.chat_id
        pending = [(self._settings.new_call_id(), call) for call in calls]
        try:
            for index in range(len(calls)):
                call_id, call = pending[0]
                if (why := skip or self._budget.refusal(index, left_out)) is not None:
                    message = _tool_message(call, tools.skip(chat_id, call_id, call, self._emit, why))
                else:
                    message = self._result_message(call, await tools.run(chat_id, call_id, call, self._emit))
                self._record(message)
                pending.pop(0)
        except asyncio.CancelledError:
            # Every call the model made gets a result, so the next turn's history is valid;
            # the one that was running included (its run reported no final status).
            for call_id, call in pending:
                result = tools.skip(chat_id, call_id, call, self._emit, "cancelled by the user")
                self._record(_tool_message(call, result))
            raise


def _without_calls(message: llm.Message) -> llm.Message:
    return attrs.evolve(message, tool_calls=())


def _busy_wait(error: llm.BackendError, backoff: float) -> float | None:
    """Seconds to wait before asking a busy server again: what it asked for (Retry-After),
    else `backoff`; None when it is not busy, or asks for longer than a person would wait."""
    if not isinstance(error, llm.UpstreamError) or not error.server_busy:
        return None
    if error.retry_after is None:
        return backoff
    return error.retry_after if error.retry_after <= LONGEST_RETRY_AFTER_S else None


def _tool_message(call: llm.ToolCall, result: str) -> llm.Message:
    return llm.Message("tool", result, tool_name=call.name, tool_call_id=call.id)


def _quick_to_size(messages: Sequence[llm.Message]) -> bool:
    return len(messages) <= INLINE_SIZING_MESSAGES and not any(message.tool_calls for message in messages)
