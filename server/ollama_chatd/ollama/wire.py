"""Ollama's JSON shapes: building /api/chat requests and reading the replies.

Pure functions, no I/O, so the HTTP layer stays small and these stay easy to test.
`parse_chat_line` runs once per streamed token; it is kept deliberately plain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from ..http_backend import error_text, excerpt
from ..llm import (
    ChatChunk,
    ChatRequest,
    DoneReason,
    Message,
    ToolCall,
    ToolSpec,
    UpstreamError,
    Usage,
)
from ..structuring import is_integer

_EMPTY: Mapping[str, Any] = {}
_KNOWN_DONE_REASONS: dict[Any, DoneReason] = {"stop": "stop", "length": "length"}


@attrs.frozen
class ModelSummary:
    """One entry of /api/tags."""

    name: str
    size_bytes: int
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None


@attrs.frozen
class ModelDetails:
    """What /api/show tells us that matters for chatting."""

    capabilities: tuple[str, ...] = ()
    context_length: int | None = None
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None


# ---------------------------------------------------------------- requests


def chat_payload(request: ChatRequest) -> dict[str, Any]:
    """The /api/chat body; optional fields are left out rather than sent as null."""
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [_message_json(message) for message in request.messages],
    }
    if request.tools:
        payload["tools"] = [_tool_json(tool) for tool in request.tools]
    if request.think is not None:
        payload["think"] = request.think
    if request.options:
        payload["options"] = dict(request.options)
    payload["stream"] = True
    return payload


def _message_json(message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.thinking:
        body["thinking"] = message.thinking
    if message.images:
        body["images"] = list(message.images)
    if message.tool_calls:
        body["tool_calls"] = [_tool_call_json(call) for call in message.tool_calls]
    if message.tool_name:
        body["tool_name"] = message.tool_name
    if message.tool_call_id:
        body["tool_call_id"] = message.tool_call_id
    return body


def _tool_call_json(call: ToolCall) -> dict[str, Any]:
    # Ollama wants `arguments` as an object; a string is a 400 (see the reference §1).
    body: dict[str, Any] = {"function": {"name": call.name, "arguments": call.arguments}}
    if call.id:
        body["id"] = call.id
    return body


def _tool_json(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


# ---------------------------------------------------------------- streamed chat


def parse_chat_line(line: bytes) -> ChatChunk:
    """Read one NDJSON line of a streamed /api/chat reply.

    Raises `UpstreamError` for an `{"error": ...}` line (status None: the HTTP
    status was already 200) and for anything that is not a JSON object.
    """
    try:
        data = _load_json_line(line)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError both; absurd nesting
        raise UpstreamError(f"Ollama sent a line that is not JSON: {excerpt(line)}") from None
    if type(data) is not dict:
        raise UpstreamError(f"Ollama sent a line that is not a JSON object: {excerpt(line)}")
    if "error" in data:
        raise UpstreamError(error_text(data["error"]))

    try:
        return _chunk_from(data)
    except (AttributeError, TypeError):  # a field of the wrong JSON type
        raise UpstreamError(f"Ollama sent a chat line of an unexpected shape: {excerpt(line)}") from None


_raw_decode = json.JSONDecoder().raw_decode


def _load_json_line(line: bytes) -> Any:
    """`json.loads(line)`, about twice as fast for the lines Ollama actually sends.

    `json.loads(bytes)` sniffs the encoding in Python code, and `loads`/`decode`
    match a whitespace regex at both ends; together that is half the cost of a
    typical chunk. Ollama writes compact UTF-8 JSON, so decode and `raw_decode`
    directly, and only fall back to the careful path for unusual input.
    """
    text = line.decode("utf-8")
    try:
        data, end = _raw_decode(text)
    except ValueError:
        return json.loads(text)  # leading whitespace, or a real error with a good message
    if end != len(text) and not text[end:].isspace():
        return json.loads(text)  # trailing data: let json raise its "Extra data" error
    return data


def _chunk_from(data: dict[str, Any]) -> ChatChunk:
    message = data.get("message") or _EMPTY
    content = message.get("content") or ""
    thinking = message.get("thinking") or ""
    if type(content) is not str or type(thinking) is not str:
        raise TypeError("content and thinking must be strings")
    raw_calls = message.get("tool_calls")
    # Calls can come on any chunk, the final one included (reference §2).
    tool_calls = tuple(map(_parse_tool_call, raw_calls)) if raw_calls else ()
    if not data.get("done"):
        return ChatChunk(content=content, thinking=thinking, tool_calls=tool_calls)
    usage = Usage(
        prompt_tokens=_count(data.get("prompt_eval_count")),
        completion_tokens=_count(data.get("eval_count")),
        total_duration_ns=_count(data.get("total_duration")),
    )
    done_reason = _KNOWN_DONE_REASONS.get(data.get("done_reason"), "other")
    return ChatChunk(
        content=content,
        thinking=thinking,
        tool_calls=tool_calls,
        done=True,
        done_reason=done_reason,
        usage=usage,
    )


def _count(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise TypeError("counts must be whole numbers")
    return value


def _parse_tool_call(raw: dict[str, Any]) -> ToolCall:
    function = raw.get("function") or {}
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        # Not what native Ollama sends, but an OpenAI-minded proxy might.
        arguments = _json_object_or_none(arguments)
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise UpstreamError(f"Ollama sent a tool call whose arguments are not a JSON object: {excerpt(raw)}")
    return ToolCall(name=function.get("name") or "", arguments=arguments, id=raw.get("id") or None)


def _json_object_or_none(text: str) -> Any:
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # reported by the caller as "not a JSON object"


# ---------------------------------------------------------------- other endpoints


def parse_tags(body: Mapping[str, Any]) -> list[ModelSummary]:
    """/api/tags -> the installed models."""
    summaries = [_model_summary(entry) for entry in _list_field(body, "models", "/api/tags")]
    return [summary for summary in summaries if summary.name]  # a nameless entry cannot be used


def _model_summary(entry: Any) -> ModelSummary:
    if not isinstance(entry, dict):
        raise UpstreamError(f"Ollama's /api/tags lists a model that is not an object: {excerpt(entry)}")
    details = entry.get("details") or {}
    return ModelSummary(
        name=entry.get("name") or entry.get("model") or "",
        size_bytes=_int_or_none(entry.get("size")) or 0,
        family=details.get("family") or None,
        parameter_size=details.get("parameter_size") or None,
        quantization=details.get("quantization_level") or None,
    )


def parse_show(body: Mapping[str, Any]) -> ModelDetails:
    """/api/show -> capabilities (since Ollama v0.6.4) and the trained context length."""
    capabilities = body.get("capabilities") or ()
    details = body.get("details") or {}
    return ModelDetails(
        capabilities=tuple(str(capability) for capability in capabilities),
        context_length=_context_length(body.get("model_info") or {}),
        family=details.get("family") or None,
        parameter_size=details.get("parameter_size") or None,
        quantization=details.get("quantization_level") or None,
    )


def _context_length(model_info: Mapping[str, Any]) -> int | None:
    architecture = model_info.get("general.architecture")
    if architecture:
        return _int_or_none(model_info.get(f"{architecture}.context_length"))
    # No architecture key: accept a lone "<something>.context_length".
    lengths = [value for key, value in model_info.items() if key.endswith(".context_length")]
    return _int_or_none(lengths[0]) if len(lengths) == 1 else None


def parse_version(body: Mapping[str, Any]) -> str:
    """/api/version -> "0.12.10"."""
    version = body.get("version")
    if not isinstance(version, str) or not version:
        raise UpstreamError(f"Ollama's /api/version has no version string: {excerpt(body)}")
    return version


def _list_field(body: Mapping[str, Any], field: str, endpoint: str) -> list[Any]:
    value = body.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise UpstreamError(f"Ollama's {endpoint} has a {field!r} that is not a list: {excerpt(value)}")
    return value


def _int_or_none(value: Any) -> int | None:
    return value if is_integer(value) else None
