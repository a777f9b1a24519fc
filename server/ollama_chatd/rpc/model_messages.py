"""Typed `model/*` messages: the stateless model call (protocol/README.md, section 14).

The client's messages and tool definitions go in, the streamed reply comes out; the
daemon stores nothing and runs no tool. Same conventions as `messages`.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from ollama_chatd.events import CallStopReason
from ollama_chatd.llm import Role
from ollama_chatd.rpc.messages import HistoryToolCall, MsgId, ThinkParam, non_empty
from ollama_chatd.structuring import FieldError

MODEL_CHAT = "model/chat"
MODEL_TOKEN = "model/token"
MODEL_CANCEL = "model/cancel"



def _request_id(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not 1 <= len(value) <= 128:
        raise FieldError("requestId", f"must be 1 to 128 characters long, got {len(value)}")


def _some_messages(instance: Any, attribute: attrs.Attribute, value: list[Any]) -> None:
    if not value:
        raise FieldError("messages", "must hold at least one message")


@attrs.define
class CallMessage:
    role: Role
    content: str
    thinking: str | None = None
    images: list[str] | None = None
    tool_calls: list[HistoryToolCall] | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


@attrs.define
class ToolDefinition:
    name: str = attrs.field(validator=non_empty)
    description: str = ""
    parameters: dict[str, Any] = attrs.Factory(lambda: {"type": "object", "properties": {}})


@attrs.define
class ModelChatParams:
    request_id: str = attrs.field(validator=_request_id)
    model: str = attrs.field(validator=non_empty)
    messages: list[CallMessage] = attrs.field(validator=_some_messages)
    tools: list[ToolDefinition] | None = None
    think: ThinkParam | None = None
    options: dict[str, Any] | None = None


@attrs.define
class CallReply:
    role: Literal["assistant"]
    content: str
    thinking: str | None = None
    tool_calls: list[HistoryToolCall] | None = None


@attrs.define
class CallUsage:
    prompt_tokens: int
    completion_tokens: int
    total_duration_ms: float


@attrs.define
class ModelChatResult:
    request_id: str
    stop_reason: CallStopReason
    message: CallReply
    usage: CallUsage


@attrs.define
class ModelCancelParams:
    request_id: str = attrs.field(validator=_request_id)


@attrs.define
class ModelChatRequest:
    id: MsgId
    params: ModelChatParams
    method: str
    jsonrpc: str


@attrs.define
class ModelCancelRequest:
    id: MsgId
    params: ModelCancelParams
    method: str
    jsonrpc: str



MESSAGE_TYPES: dict[str, type] = {
    MODEL_CHAT: ModelChatRequest,
    MODEL_CANCEL: ModelCancelRequest,
}
