"""The model-server contract the chat engine is written against.

The engine talks to any backend through `ChatBackend`; the Ollama client is one
implementation. Nothing here knows about JSON-RPC, editors or conversations: a
request is a list of messages, a reply is a stream of chunks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

import attrs

Role = Literal["system", "user", "assistant", "tool"]
ThinkEffort = Literal["low", "medium", "high"]
ThinkLevel = bool | ThinkEffort


@attrs.frozen
class ToolCall:
    """A function call the model asked for; `arguments` is always an object.

    `unreadable_arguments` keeps what the model sent when it was not a JSON object
    (`arguments` is then empty), so the tool can answer the model with that mistake.
    """

    name: str
    arguments: dict[str, Any]
    id: str | None = None
    unreadable_arguments: str | None = None


@attrs.frozen
class Message:
    role: Role
    content: str
    thinking: str | None = None
    images: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_name: str | None = None
    tool_call_id: str | None = None


@attrs.frozen
class ToolSpec:
    """A function the model may call, described by a JSON Schema for its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@attrs.frozen
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    think: ThinkLevel | None = None
    options: dict[str, Any] | None = None


@attrs.frozen
class ModelInfo:
    """What the server says about a model; None where it does not say."""

    name: str
    size_bytes: int | None = None
    family: str | None = None
    parameter_size: str | None = None
    quantization: str | None = None
    capabilities: frozenset[str] | None = None  # e.g. completion, tools, thinking, vision
    context_length: int | None = None

    def can(self, capability: str) -> bool:
        """Whether the model has `capability`; assumed so when the server cannot tell."""
        return self.capabilities is None or capability in self.capabilities


@attrs.frozen
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_duration_ns: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_duration_ns + other.total_duration_ns,
        )


DoneReason = Literal["stop", "length", "other"]


@attrs.frozen
class ChatChunk:
    """One piece of a streamed reply. Empty `content` and `thinking` are normal."""

    content: str = ""
    thinking: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    done: bool = False
    done_reason: DoneReason | None = None
    usage: Usage | None = None


class BackendError(Exception):
    """Base of every failure a backend reports; `str()` is meant for a person.

    `server` names the model server in words for a person ("Ollama", "the
    OpenAI-compatible server"), so the front-ends' messages can say who failed.
    """

    server: str = "Ollama"

    def _from(self, server: str | None) -> None:
        if server is not None:
            self.server = server

    @property
    def server_title(self) -> str:
        """`server` at the start of a sentence."""
        return sentence_start(self.server)


def sentence_start(text: str) -> str:
    return text[:1].upper() + text[1:]


class BackendUnreachable(BackendError):
    """No connection could be made (or it broke before any reply)."""

    def __init__(self, address: str, reason: str, *, server: str | None = None):
        self._from(server)
        super().__init__(f"cannot reach {self.server} at {address}: {reason}")
        self.address = address
        self.reason = reason


class ModelNotFound(BackendError):
    def __init__(self, model: str, detail: str = "", *, server: str | None = None):
        self._from(server)
        super().__init__(detail or f"model '{model}' not found")
        self.model = model


BUSY_STATUSES = (429, 503)  # too many requests, unavailable: worth trying again after a pause


class UpstreamError(BackendError):
    """The server answered with an error, as an HTTP status or mid-stream.

    `status` is the HTTP status, or None for an error line inside a 200 stream;
    `retry_after` the seconds the server asked to wait before trying again
    (its Retry-After header), if it said.
    """

    def __init__(
        self,
        message: str,
        status: int | None = None,
        *,
        server: str | None = None,
        retry_after: float | None = None,
    ):
        self._from(server)
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after

    @property
    def server_busy(self) -> bool:
        return self.status in BUSY_STATUSES


class FeatureNotSupported(UpstreamError):
    """The model refused a feature of the request (`tools` or `think`)."""

    def __init__(
        self, message: str, status: int | None, feature: Literal["tools", "think"], *, server: str | None = None
    ):
        super().__init__(message, status, server=server)
        self.feature = feature


class ChatBackend(Protocol):
    """What the engine needs from a model server."""

    async def version(self) -> str:
        """The server's version as it reports it: the cheapest call that proves it answers."""
        ...

    async def installed_models(self) -> list[ModelInfo]:
        """Every model the server has, with what it can do."""
        ...

    async def describe_model(self, name: str) -> ModelInfo:
        """One model; raises ModelNotFound when the server does not have it."""
        ...

    def stream_chat(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        """Yield the reply chunk by chunk; the last one has `done=True`.

        Closing the iterator early (or cancelling the task consuming it) must drop
        the upstream connection at once so the server stops generating.
        Raises `BackendError` subclasses.
        """
        ...

    async def aclose(self) -> None:
        """Release the connections; the backend is not used afterwards."""
        ...
