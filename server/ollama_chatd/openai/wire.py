"""The Chat Completions JSON shapes: building requests, reading streamed chunks and /models.

Pure functions and one accumulator (`ReplyAssembler`), no I/O, so the HTTP layer
stays small and these stay easy to test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from ..http_backend import error_text, excerpt
from ..llm import ChatChunk, ChatRequest, DoneReason, Message, ToolCall, ToolSpec, UpstreamError, Usage
from ..structuring import is_integer

SERVER = "the OpenAI-compatible server"

# Ollama's option names that these servers know by another name; the rest pass as they are
# (temperature, top_p, seed, stop, and llama.cpp's and vLLM's top_k, min_p ...).
_RENAMED_OPTIONS = {"num_predict": "max_tokens"}
# Fixed when the server starts: asking for them per request is refused or ignored.
_SERVER_SIDE_OPTIONS = frozenset({"num_ctx", "num_gpu", "num_thread", "num_batch", "keep_alive"})
_FINISH_REASONS: dict[Any, DoneReason] = {"stop": "stop", "length": "length", "tool_calls": "stop"}
_IMAGE_TYPES = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif", b"RIFF": "image/webp"}


# ---------------------------------------------------------------- requests


def chat_payload(request: ChatRequest) -> dict[str, Any]:
    """The /chat/completions body: streamed, with the token counts in the last chunk."""
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": list(_messages_json(request.messages)),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.tools:
        payload["tools"] = [_tool_json(tool) for tool in request.tools]
    if isinstance(request.think, str):
        payload["reasoning_effort"] = request.think  # "low" | "medium" | "high"
    payload.update(_sampling_options(request.options or {}))
    return payload


def _sampling_options(options: Mapping[str, Any]) -> dict[str, Any]:
    sampling = {}
    for name, value in options.items():
        if name in _SERVER_SIDE_OPTIONS:
            continue
        if name == "num_predict" and is_integer(value) and value < 0:
            continue  # Ollama's "no limit"
        sampling[_RENAMED_OPTIONS.get(name, name)] = value
    return sampling


def _messages_json(messages: tuple[Message, ...]) -> Iterator[dict[str, Any]]:
    """The messages; tool calls without an id (a chat begun with Ollama) get one by position,
    and their results, in order, the same ids: these servers pair them by id."""
    unanswered: list[str] = []
    for number, message in enumerate(messages):
        if message.role == "assistant":
            ids = [call.id or f"call_{number}_{index}" for index, call in enumerate(message.tool_calls)]
            unanswered = list(ids)
            yield _assistant_json(message, ids)
        elif message.role == "tool":
            call_id = message.tool_call_id or (unanswered[0] if unanswered else f"call_{number}")
            if call_id in unanswered:
                unanswered.remove(call_id)
            yield {"role": "tool", "tool_call_id": call_id, "content": message.content}
        else:
            yield {"role": message.role, "content": _content_json(message)}


def _assistant_json(message: Message, ids: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls:
        body["content"] = message.content or None  # the spec's way to say "calls only"
        body["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}
            for call_id, call in zip(ids, message.tool_calls, strict=True)
        ]
    return body


def _content_json(message: Message) -> str | list[dict[str, Any]]:
    if not message.images:
        return message.content
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.content}]
    parts += [{"type": "image_url", "image_url": {"url": image_data_url(image)}} for image in message.images]
    return parts


def image_data_url(image: str) -> str:
    """A base64 image (as the protocol carries them) as a data: URL with its type sniffed."""
    head = base64.b64decode(image[:16] + "=" * (-len(image[:16]) % 4), validate=False)
    kind = next((kind for magic, kind in _IMAGE_TYPES.items() if head.startswith(magic)), "image/png")
    return f"data:{kind};base64,{image}"


def _tool_json(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


# ---------------------------------------------------------------- streamed chunks


@attrs.frozen
class Timings:
    """llama-server's `timings` of the last chunk: how much of the prompt it evaluated."""

    prompt_n: int  # prompt tokens evaluated for this request
    cache_n: int | None  # prompt tokens taken from its prompt cache
    total_ms: float


class ReplyAssembler:
    """Reads the `data:` events of one streamed reply and yields `ChatChunk`s.

    Text and thinking pass straight through; tool calls come as fragments keyed by
    `index` (the name first, the arguments as string pieces) and are put together,
    with the finish reason and the token counts, in the final chunk.
    """

    def __init__(self) -> None:
        self._calls: dict[int, _PartialCall] = {}
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.timings: Timings | None = None

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None

    def feed(self, data: str) -> ChatChunk | None:
        """One event's data; the chunk to pass on, or None when it carries no text."""
        event = _json_event(data)
        if "error" in event:
            raise _stream_error(event["error"])
        try:
            return self._read(event)
        except (AttributeError, TypeError, ValueError):  # a field of the wrong JSON type
            raise UpstreamError(f"{SERVER} sent a chunk of an unexpected shape: {excerpt(data)}", server=SERVER) from None

    def final(self) -> ChatChunk:
        """The last chunk: the assembled tool calls, why the reply ended, the token counts."""
        return ChatChunk(
            tool_calls=tuple(self._calls[index].call() for index in sorted(self._calls)),
            done=True,
            done_reason=_FINISH_REASONS.get(self.finish_reason, "other"),
            usage=self.usage or Usage(),
        )

    def _read(self, event: dict[str, Any]) -> ChatChunk | None:
        if (usage := event.get("usage")) is not None:
            self.usage = _usage(usage, self.usage)
        if (timings := event.get("timings")) is not None:
            self.timings = _timings(timings)
            if self.usage is not None and not self.usage.total_duration_ns:
                self.usage = attrs.evolve(self.usage, total_duration_ns=int(self.timings.total_ms * 1e6))
        content, thinking = "", ""
        for choice in event.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue  # we ask for one completion; ignore any other
            delta = choice.get("delta") or {}
            content += _text(delta.get("content"))
            thinking += _text(delta.get("reasoning_content")) or _text(delta.get("reasoning"))
            for fragment in delta.get("tool_calls") or ():
                self._add_fragment(fragment)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return ChatChunk(content=content, thinking=thinking) if content or thinking else None

    def _add_fragment(self, fragment: dict[str, Any]) -> None:
        index = fragment.get("index", len(self._calls))
        call = self._calls.setdefault(index, _PartialCall())
        call.id = call.id or fragment.get("id")
        function = fragment.get("function") or {}
        call.name += _text(function.get("name"))
        arguments = function.get("arguments")
        # Most servers send string pieces; a whole object arrives from some proxies.
        call.arguments.append(arguments if isinstance(arguments, str) else json.dumps(arguments) if arguments else "")


@attrs.define
class _PartialCall:
    id: str | None = None
    name: str = ""
    arguments: list[str] = attrs.Factory(list)

    def call(self) -> ToolCall:
        text = "".join(self.arguments)
        if not text.strip():
            return ToolCall(self.name, {}, self.id)
        try:
            arguments = json.loads(text)
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            return ToolCall(self.name, {}, self.id, unreadable_arguments=text)
        return ToolCall(self.name, arguments, self.id)


def _json_event(data: str) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        raise UpstreamError(f"{SERVER} sent an event that is not JSON: {excerpt(data)}", server=SERVER) from None
    if not isinstance(event, dict):
        raise UpstreamError(f"{SERVER} sent an event that is not a JSON object: {excerpt(data)}", server=SERVER)
    return event


def _stream_error(error: Any) -> UpstreamError:
    return UpstreamError(error_text(error), server=SERVER)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError("text fields must be strings")
    return value


def _usage(usage: Mapping[str, Any], earlier: Usage | None) -> Usage:
    return Usage(
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        total_duration_ns=earlier.total_duration_ns if earlier else 0,
    )


def _timings(timings: Mapping[str, Any]) -> Timings:
    cache_n = timings.get("cache_n")
    return Timings(
        prompt_n=_count(timings.get("prompt_n")),
        cache_n=_count(cache_n) if cache_n is not None else None,
        total_ms=float(timings.get("prompt_ms") or 0) + float(timings.get("predicted_ms") or 0),
    )


def _count(value: Any) -> int:
    if value is None:
        return 0
    if not is_integer(value) or value < 0:
        raise TypeError("counts must be whole numbers")
    return value


# ---------------------------------------------------------------- /models and /props


@attrs.frozen
class ServedModel:
    """One entry of GET /models."""

    id: str
    context_length: int | None = None  # vLLM's max_model_len; llama-server's meta.n_ctx_train is not the window


def parse_models(body: Mapping[str, Any]) -> list[ServedModel]:
    """GET /models -> the models the server serves (entries without an id are left out)."""
    entries = body.get("data")
    if not isinstance(entries, list):
        raise UpstreamError(f"{SERVER}'s /models has no list of models: {excerpt(body)}", server=SERVER)
    return [_served_model(entry) for entry in entries if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


def _served_model(entry: Mapping[str, Any]) -> ServedModel:
    length = entry.get("max_model_len")
    return ServedModel(id=entry["id"], context_length=length if is_integer(length) and length > 0 else None)


def context_length_from_props(body: Mapping[str, Any]) -> int | None:
    """llama-server's GET /props: the context window of one slot (`n_ctx`), if it says."""
    settings = body.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    if n_ctx is None:
        n_ctx = body.get("n_ctx")
    return n_ctx if is_integer(n_ctx) and n_ctx > 0 else None


def capabilities_from_props(body: Mapping[str, Any]) -> frozenset[str] | None:
    """What llama-server's GET /props says its model can do: tools when its chat template
    renders them, vision when a projector is loaded; None when it does not say."""
    caps = body.get("chat_template_caps")
    if not isinstance(caps, dict):
        return None
    abilities = {"completion"}
    if caps.get("supports_tools") or caps.get("supports_tool_calls"):
        abilities.add("tools")
    if caps.get("supports_reasoning_effort"):
        abilities.add("thinking")
    modalities = body.get("modalities")
    if isinstance(modalities, dict) and modalities.get("vision"):
        abilities.add("vision")
    return frozenset(abilities)
