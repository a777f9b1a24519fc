"""Typed `chat/*` messages, as they appear on the wire (see protocol/README.md).

Field names are snake_case here and camelCase on the wire (lsprotocol's
converter renames them). Fields that must always be sent have no default:
the converter omits fields equal to their default when it serialises.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

# The wire carries the engine's values as they are; protocol/schemas pins them
# (the end-to-end tests validate every message the daemon sends).
from ollama_chatd.events import Decision, StatusState, StopReason, ToolCallStatus
from ollama_chatd.llm import ThinkLevel as ThinkParam
from ollama_chatd.structuring import FieldError

MsgId = int | str

CHAT_START = "chat/start"
CHAT_CANCEL = "chat/cancel"
CHAT_TOKEN = "chat/token"
CHAT_TOOL_CALL = "chat/toolCall"
CHAT_REQUEST_PERMISSION = "chat/requestPermission"
CHAT_STATUS = "chat/status"
CHAT_MODELS = "chat/models"
CHAT_LIST = "chat/list"
CHAT_HISTORY = "chat/history"
CHAT_RENAME = "chat/rename"
CHAT_DELETE = "chat/delete"
CHAT_MCP = "chat/mcp"
CHAT_REVERT = "chat/revert"


def _chat_id(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if not 1 <= len(value) <= 128:
        raise FieldError("chatId", f"must be 1 to 128 characters long, got {len(value)}")


def non_empty(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not value.strip():
        raise FieldError(attribute.name, "must not be empty")


@attrs.define
class ChatStartParams:
    chat_id: str = attrs.field(validator=_chat_id)
    prompt: str
    model: str | None = attrs.field(default=None, validator=non_empty)
    system: str | None = None
    think: ThinkParam | None = None
    options: dict[str, Any] | None = None
    images: list[str] | None = None


@attrs.define
class AssistantMessage:
    role: Literal["assistant"]
    content: str
    thinking: str | None = None


@attrs.define
class TurnUsage:
    prompt_tokens: int
    completion_tokens: int
    total_duration_ms: float
    context_tokens: int
    context_limit: int


@attrs.define
class ChatStartResult:
    chat_id: str
    stop_reason: StopReason
    message: AssistantMessage
    usage: TurnUsage
    rules: str | None  # the rules file the turn followed (AGENTS.md); always sent, null without one


@attrs.define
class ChatCancelParams:
    chat_id: str = attrs.field(validator=_chat_id)


@attrs.define
class ChatCancelResult:
    cancelled: bool


@attrs.define
class StatusParams:
    chat_id: str
    state: StatusState
    message: str


@attrs.define
class ModelsParams:
    refresh: bool = False


@attrs.define
class ModelEntry:
    name: str
    size_bytes: int | None
    family: str | None
    parameter_size: str | None
    quantization: str | None
    capabilities: list[str]
    context_length: int | None


@attrs.define
class ModelsResult:
    models: list[ModelEntry]


def _page_size(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if not 1 <= value <= 200:
        raise FieldError("limit", f"must be between 1 and 200, got {value}")


@attrs.define
class ListParams:
    limit: int = attrs.field(default=50, validator=_page_size)
    before: str | None = None


@attrs.define
class ChatEntry:
    chat_id: str
    title: str | None
    model: str | None
    created_at: str
    updated_at: str
    turns: int
    cursor: str


@attrs.define
class ListResult:
    chats: list[ChatEntry]


@attrs.define
class ChatIdParams:
    chat_id: str = attrs.field(validator=_chat_id)


@attrs.define
class HistoryToolCall:
    name: str
    arguments: dict[str, Any]
    id: str | None = None


@attrs.define
class HistoryMessage:
    role: str
    content: str
    created_at: str
    thinking: str | None = None
    tool_calls: list[HistoryToolCall] | None = None
    tool_name: str | None = None
    status: str | None = None


@attrs.define
class HistoryResult:
    chat_id: str
    title: str | None
    model: str | None
    messages: list[HistoryMessage]


@attrs.define
class RenameParams:
    chat_id: str = attrs.field(validator=_chat_id)
    title: str = attrs.field(validator=non_empty)


@attrs.define
class RenameResult:
    chat_id: str
    title: str


@attrs.define
class DeleteResult:
    deleted: bool


@attrs.define
class ToolCallParams:
    chat_id: str
    call_id: str
    name: str
    arguments: dict[str, Any]
    status: ToolCallStatus
    output: str | None = None
    error: str | None = None
    output_length: int | None = None  # run_command while it runs: characters so far (`output` is their end)


@attrs.define
class RequestPermissionParams:
    chat_id: str
    call_id: str
    name: str
    arguments: dict[str, Any]
    title: str
    diff: str


@attrs.define
class RequestPermissionResult:
    decision: Decision

    @classmethod
    def read(cls, raw: Any) -> RequestPermissionResult:
        """The client's answer. Anything but "allow" or "allow_always" ("no", "Deny",
        null, not even an object) is a denial: never a hang, never a change."""
        decision = raw.get("decision") if isinstance(raw, dict) else None
        return cls(decision if decision in ("allow", "allow_always") else "deny")


def _turn_index(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < 0:
        raise FieldError("turn", f"must be 0 or more (the index of a user message in chat/history), got {value}")


@attrs.define
class RevertParams:
    chat_id: str = attrs.field(validator=_chat_id)
    turn: int = attrs.field(validator=_turn_index)


@attrs.define
class SkippedFile:
    path: str
    reason: str


@attrs.define
class RevertResult:
    restored: list[str]
    skipped: list[SkippedFile]
    commands_not_undone: list[str]


@attrs.define
class McpParams:
    pass


@attrs.define
class McpServerEntry:
    name: str
    transport: Literal["stdio", "http"]
    state: Literal["starting", "ready", "failed"]
    tools: int
    reason: str | None = None


@attrs.define
class McpResult:
    servers: list[McpServerEntry]


# Envelopes: no defaults, so `method` and `jsonrpc` are never dropped.


@attrs.define
class ChatStartRequest:
    id: MsgId
    params: ChatStartParams
    method: str
    jsonrpc: str


@attrs.define
class ChatCancelRequest:
    id: MsgId
    params: ChatCancelParams
    method: str
    jsonrpc: str


@attrs.define
class ModelsRequest:
    id: MsgId
    params: ModelsParams
    method: str
    jsonrpc: str


@attrs.define
class ListRequest:
    id: MsgId
    params: ListParams
    method: str
    jsonrpc: str


@attrs.define
class ChatIdRequest:
    id: MsgId
    params: ChatIdParams
    method: str
    jsonrpc: str


@attrs.define
class RenameRequest:
    id: MsgId
    params: RenameParams
    method: str
    jsonrpc: str


@attrs.define
class RevertRequest:
    id: MsgId
    params: RevertParams
    method: str
    jsonrpc: str


@attrs.define
class McpRequest:
    id: MsgId
    params: McpParams
    method: str
    jsonrpc: str


@attrs.define
class StatusNotification:
    params: StatusParams
    method: str
    jsonrpc: str


@attrs.define
class ToolCallNotification:
    params: ToolCallParams
    method: str
    jsonrpc: str


@attrs.define
class RequestPermissionRequest:
    id: MsgId
    params: RequestPermissionParams
    method: str
    jsonrpc: str


@attrs.define
class RequestPermissionResponse:
    id: MsgId
    # Raw JSON, read by RequestPermissionResult.read: pygls drops an answer that does
    # not structure, which would leave the turn waiting for ever.
    result: Any
    jsonrpc: str


MESSAGE_TYPES: dict[str, type] = {
    CHAT_START: ChatStartRequest,
    CHAT_CANCEL: ChatCancelRequest,
    CHAT_TOOL_CALL: ToolCallNotification,
    CHAT_STATUS: StatusNotification,
    CHAT_MODELS: ModelsRequest,
    CHAT_LIST: ListRequest,
    CHAT_HISTORY: ChatIdRequest,
    CHAT_RENAME: RenameRequest,
    CHAT_DELETE: ChatIdRequest,
    CHAT_MCP: McpRequest,
    CHAT_REVERT: RevertRequest,
    CHAT_REQUEST_PERMISSION: RequestPermissionRequest,
}

RESULT_TYPES: dict[str, type] = {
    CHAT_REQUEST_PERMISSION: RequestPermissionResponse,
}
