"""JSON-RPC errors of the wire contract, and the mapping from engine failures to them."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcException, JsonRpcInternalError, JsonRpcInvalidParams

from ollama_chatd import llm
from ollama_chatd.engine.engine import ChatBusy, ImagesNotSupported, NoModelChosen, TurnFailed, TurnOutOfRange
from ollama_chatd.engine.model_call import CallBusy
from ollama_chatd.store import InvalidCursor

logger = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")

OLLAMA_UNREACHABLE = -32001
MODEL_NOT_FOUND = -32002
UPSTREAM_ERROR = -32003
CHAT_BUSY = -32004


class ChatError(JsonRpcException):
    """An error response with a person-readable message and `data.kind` for programs."""

    def __init__(self, code: int, message: str, kind: str, **details: Any):
        super().__init__(message=message, code=code, data={"kind": kind, **details})


def invalid_params(message: str, field: str | None = None) -> JsonRpcInvalidParams:
    data: dict[str, Any] = {"kind": "invalid_params"}
    if field:
        data["field"] = field
    return JsonRpcInvalidParams(message=message, data=data)


def in_contract_terms(handler: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Make whatever `handler` raises an error of the wire contract."""

    @functools.wraps(handler)
    async def answer(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await handler(*args, **kwargs)
        except Exception as error:
            raise to_rpc_error(error) from error

    return answer


def to_rpc_error(error: Exception) -> JsonRpcException:
    """Translate what the engine raised into the contract's error."""
    if isinstance(error, NoModelChosen):
        return JsonRpcInvalidParams(message=str(error), data={"kind": "no_model"})
    if isinstance(error, ImagesNotSupported):
        return invalid_params(f"chat/start: `images`: {error}", "images")
    if isinstance(error, InvalidCursor):
        return invalid_params("chat/list: `before` must be the `cursor` of a chat from an earlier chat/list", "before")
    if isinstance(error, TurnOutOfRange):
        return invalid_params(f"chat/revert: {error}", "turn")
    if isinstance(error, ChatBusy):
        return ChatError(CHAT_BUSY, str(error), "chat_busy", chatId=error.chat_id)
    if isinstance(error, CallBusy):
        return invalid_params(f"model/chat: {error}", "requestId")
    if isinstance(error, TurnFailed):
        return _backend_error(error.error, error.partial)
    if isinstance(error, llm.BackendError):
        return _backend_error(error, None)
    if isinstance(error, JsonRpcException):
        return error
    logger.error("internal error", exc_info=error)
    return ChatError(
        lsp.ErrorCodes.InternalError,
        f"internal error in ollama-chatd ({type(error).__name__}: {error}); "
        "please report it with the daemon's log (--log-file)",
        "internal_error",
    )


def log_server_error(error: Exception, source: object) -> None:
    """Log what pygls reports: a bug with its traceback, an error answer in one line.

    pygls' own `json_rpc` logger stays muted (it logs every error answer with a
    traceback); a failure that is not one of ours arrives here instead, either
    raw or wrapped by pygls in a JsonRpcInternalError that carries its traceback.
    """
    where = getattr(source, "__name__", source)
    if isinstance(error, JsonRpcInternalError):
        frames = "".join((error.data or {}).get("traceback") or ["(no traceback)\n"])
        logger.error("internal error (%s): %s\nTraceback (most recent call last):\n%s", where, error.message, frames)
    elif isinstance(error, JsonRpcException):
        logger.info("answered with an error: %s", error)  # the client was told
    else:
        logger.error("internal error (%s): %s", where, error, exc_info=error)


def _backend_error(error: llm.BackendError, partial: llm.Message | None) -> JsonRpcException:
    # Which backend answered: a client words its own advice for it (start Ollama, or the server).
    backend = "ollama" if _is_ollama(error) else "openai"
    if isinstance(error, llm.BackendUnreachable):
        return ChatError(OLLAMA_UNREACHABLE, _unreachable(error), "ollama_unreachable", address=error.address,
                         backend=backend)
    if isinstance(error, llm.ModelNotFound):
        return ChatError(MODEL_NOT_FOUND, _model_not_found(error), "model_not_found", model=error.model,
                         backend=backend)
    details: dict[str, Any] = {"status": getattr(error, "status", None)}
    if partial is not None:
        details["partial"] = _partial(partial)
    return ChatError(UPSTREAM_ERROR, f"{error.server_title} reported an error: {error}", "upstream_error", **details)


def _unreachable(error: llm.BackendUnreachable) -> str:
    if "CERTIFICATE" in error.reason.upper():
        return (
            f"Cannot reach {error.server} at {error.address}: its certificate is not trusted ({error.reason}). "
            "If it comes from a private CA, point the `caBundle` initialization option at that CA's PEM file."
        )
    if _is_ollama(error):
        return (
            f"Cannot reach Ollama at {error.address} ({error.reason}). Start it with `ollama serve`, or point "
            "the daemon at it with the OLLAMA_HOST environment variable or the `ollamaHost` initialization option."
        )
    return (
        f"Cannot reach {error.server} at {error.address} ({error.reason}). Start it, or point the daemon at it "
        "with the OPENAI_BASE_URL environment variable or the `baseUrl` initialization option."
    )


def _model_not_found(error: llm.ModelNotFound) -> str:
    if _is_ollama(error):
        return (
            f"Model '{error.model}' is not installed in Ollama. Download it with "
            f"`ollama pull {error.model}`, or choose another (`ollama list`)."
        )
    return str(error)  # the backend's own sentence, naming the models it serves


def _is_ollama(error: llm.BackendError) -> bool:
    # Ollama's fixes name its own commands and options; any other server gets the
    # words of the OpenAI-compatible backend, the only other one there is.
    return error.server == llm.BackendError.server


def _partial(message: llm.Message) -> dict[str, str]:
    partial = {"content": message.content}
    if message.thinking:
        partial["thinking"] = message.thinking
    return partial
