"""Stateless model calls: the client's messages and tool definitions in, the streamed
reply out. Nothing is stored and no tool is run: tool calls go back to the caller (an
editor's own agent, say VS Code's chat), which runs them and calls again.

Cancelling the task running `run` drops the model's stream at once; `cancel()` does
the same but makes `run` return what was streamed with `stop_reason="cancelled"`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import attrs

from ollama_chatd import llm
from ollama_chatd.engine.context import context_size
from ollama_chatd.engine.models import ModelCatalog
from ollama_chatd.engine.running import RunningTasks
from ollama_chatd.engine.turn import StreamedReply, TurnFailed
from ollama_chatd.events import CallStopReason, EventSink, TextDelta


class CallBusy(Exception):
    def __init__(self, request_id: str):
        super().__init__(f"a model call with requestId '{request_id}' is already running; use another id")
        self.request_id = request_id


@attrs.frozen
class CallRequest:
    request_id: str
    model: str
    messages: tuple[llm.Message, ...]
    tools: tuple[llm.ToolSpec, ...] = ()
    think: llm.ThinkLevel | None = None
    options: dict[str, Any] | None = None


@attrs.frozen
class CallResult:
    request_id: str
    stop_reason: CallStopReason
    message: llm.Message
    usage: llm.Usage


class ModelCalls:
    def __init__(self, backend: llm.ChatBackend, models: ModelCatalog, *, max_context: int):
        self._backend = backend
        self._models = models
        self._max_context = max_context
        self._running = RunningTasks()

    def cancel(self, request_id: str) -> asyncio.Task[Any] | None:
        """Stop a running call (its `run` returns what was streamed); None if none runs."""
        return self._running.stop(request_id)

    def cancel_all(self) -> list[asyncio.Task[Any]]:
        return self._running.stop_all()

    async def run(self, request: CallRequest, emit: EventSink) -> CallResult:
        if request.request_id in self._running:
            raise CallBusy(request.request_id)
        with self._running.register(request.request_id) as running:
            reply = _CallReply()
            try:
                backend_request = await self._backend_request(request)
                await self._stream(backend_request, reply, emit)
                return reply.result(request.request_id, reply.stop_reason())
            except asyncio.CancelledError:
                if not running.stopped_on_request():
                    raise  # $/cancelRequest or shutdown: the front-end answers it
                return reply.result(request.request_id, "cancelled")

    async def _backend_request(self, request: CallRequest) -> llm.ChatRequest:
        model = await self._models.describe(request.model)
        return llm.ChatRequest(
            model=request.model,
            messages=request.messages,
            # Ollama refuses `tools` and `think` for models that lack them: leave them out.
            tools=request.tools if model.can("tools") else (),
            think=request.think if model.can("thinking") else None,
            options={**(request.options or {}), "num_ctx": context_size(model, request.options, self._max_context)},
        )

    async def _stream(self, request: llm.ChatRequest, reply: _CallReply, emit: EventSink) -> None:
        try:
            async with contextlib.aclosing(self._backend.stream_chat(request)) as chunks:
                async for chunk in chunks:
                    reply.add(chunk, emit)
                    if not chunk.done and emit.congested:
                        await emit.until_drained()
        except llm.BackendError as error:
            raise TurnFailed(error, reply.partial()) from error


@attrs.define
class _CallReply(StreamedReply):
    def add(self, chunk: llm.ChatChunk, emit: Callable[[TextDelta], None]) -> None:
        if chunk.thinking:
            self.thinking.append(chunk.thinking)
            emit(TextDelta("thinking", chunk.thinking))
        if chunk.content:
            self.content.append(chunk.content)
            emit(TextDelta("content", chunk.content))
        self.tool_calls.extend(chunk.tool_calls)
        if chunk.done:
            self.done_reason = chunk.done_reason
            self.usage = chunk.usage or llm.Usage()

    def stop_reason(self) -> CallStopReason:
        if self.tool_calls:
            return "tool_calls"
        return "max_tokens" if self.done_reason == "length" else "end_turn"

    def partial(self) -> llm.Message | None:
        """What a failed call had streamed, if anything (the error carries it)."""
        return self.message() if self.content or self.thinking else None

    def result(self, request_id: str, stop_reason: CallStopReason) -> CallResult:
        return CallResult(request_id, stop_reason, self.message(), self.usage)
