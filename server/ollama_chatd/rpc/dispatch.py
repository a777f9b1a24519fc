"""From a frame's bytes to pygls: every malformed message gets the JSON-RPC answer
it deserves (an error when there is an id to answer, a log line otherwise) and
never reaches the handlers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import attrs
from lsprotocol import types as lsp
from lsprotocol.types import EXIT
from pygls.exceptions import JsonRpcException

from ollama_chatd.rpc import messages, model_messages
from ollama_chatd.rpc.framing import frame_json
from ollama_chatd.rpc.outbox import Outbox
from ollama_chatd.rpc.protocol import ChatProtocol
from ollama_chatd.structuring import is_message_id

logger = logging.getLogger(__name__)

PARSE_ERROR = lsp.ErrorCodes.ParseError
INVALID_REQUEST = lsp.ErrorCodes.InvalidRequest
METHOD_NOT_FOUND = lsp.ErrorCodes.MethodNotFound
INVALID_PARAMS = lsp.ErrorCodes.InvalidParams


@attrs.frozen
class Rejection:
    code: int
    message: str
    answer_to: int | str | None  # the id to answer, None for `"id": null`
    answer: bool  # False for notifications and responses: nobody awaits an answer


def check_envelope(raw: Any) -> Rejection | None:
    """What is wrong with a decoded message's JSON-RPC envelope, if anything.

    Only requests are answered (with `"id": null` when their id is unusable);
    a broken notification or response is logged, since nobody awaits an answer.
    """
    if isinstance(raw, list):
        return Rejection(INVALID_REQUEST, "batch messages are not supported: send one message per frame", None, True)
    if not isinstance(raw, dict):
        return Rejection(INVALID_REQUEST, "a message must be a JSON object", None, True)
    is_request = "id" in raw and "method" in raw
    answer_to = raw.get("id") if is_message_id(raw.get("id")) else None
    if "id" in raw and answer_to is None:
        return Rejection(INVALID_REQUEST, "`id` must be an integer or a string", None, is_request)
    if raw.get("jsonrpc") != "2.0":
        return Rejection(INVALID_REQUEST, '`jsonrpc` must be "2.0"', answer_to, is_request)
    if "method" not in raw:
        if answer_to is None or ("result" in raw) == ("error" in raw):
            return Rejection(INVALID_REQUEST, "neither a request, a notification nor a response", None, False)
        return None
    if not isinstance(raw["method"], str):
        return Rejection(INVALID_REQUEST, "`method` must be a string", answer_to, is_request)
    params = raw.get("params")
    if params is not None and not isinstance(params, (dict, list)):
        return Rejection(INVALID_PARAMS, "`params` must be an object", answer_to, is_request)
    return None


# Methods that only exist as notifications: sent with an id, nobody would answer them.
_NOTIFICATIONS = frozenset(
    {method for method, (message_type, *_) in lsp.METHOD_TO_TYPES.items() if message_type.__name__.endswith("Notification")}
    | {messages.CHAT_TOKEN, messages.CHAT_STATUS, messages.CHAT_TOOL_CALL, model_messages.MODEL_TOKEN}
)


def check_method(raw: dict[str, Any]) -> Rejection | None:
    """What is wrong with a well-formed message for the method it names, if anything."""
    method = raw.get("method")
    if "id" in raw and method is not None and (method in _NOTIFICATIONS or method.startswith("$/")):
        return Rejection(METHOD_NOT_FOUND, f"{method} is a notification: send it without an id", raw["id"], True)
    params = raw.get("params")
    if method == lsp.CANCEL_REQUEST and not (isinstance(params, dict) and is_message_id(params.get("id"))):
        return Rejection(INVALID_PARAMS, "$/cancelRequest needs the integer or string id of a request", None, False)
    return None


_UNPARSEABLE = object()


class Dispatcher:
    def __init__(self, protocol: ChatProtocol, outbox: Outbox, initialized: Callable[[], bool]):
        self._protocol = protocol
        self._outbox = outbox
        self._initialized = initialized

    def handle(self, body: bytes) -> None:
        """Handle one message. `exit` raises SystemExit carrying the exit code."""
        raw = self._parse(body)
        if raw is _UNPARSEABLE:
            return
        rejection = check_envelope(raw) or check_method(raw) or self._check_session(raw)
        if rejection is not None:
            self._reject(rejection)
            return
        try:
            message = self._protocol.structure_message(raw)
        except JsonRpcException as error:
            self._fail(raw, error)
            return
        self._protocol.handle_message(message)

    def _parse(self, body: bytes) -> Any:
        try:
            # Strictly UTF-8: json.loads(bytes) would also take UTF-16/32 and encoded surrogates.
            return json.loads(body.decode("utf-8"))
        except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
            reason = "nested too deeply" if isinstance(error, RecursionError) else error
            self._reject(Rejection(PARSE_ERROR, f"message body is not valid UTF-8 JSON: {reason}", None, True))
            return _UNPARSEABLE

    def _check_session(self, raw: dict[str, Any]) -> Rejection | None:
        method = raw.get("method")
        if self._protocol._shutdown and method not in (EXIT, None):
            return Rejection(INVALID_REQUEST, "the server is shutting down", raw.get("id"), "id" in raw)
        if method == lsp.INITIALIZE and self._initialized():
            return Rejection(INVALID_REQUEST, "initialize may be sent only once per session", raw.get("id"), "id" in raw)
        return None

    def _fail(self, raw: dict[str, Any], error: JsonRpcException) -> None:
        if "id" in raw and "method" in raw:
            data = error.data
            if error.code == INVALID_PARAMS and not data:
                data = {"kind": "invalid_params"}
            self._send_error(raw["id"], error.code, error.message, data)
        else:
            logger.warning("dropping %s: %s", raw.get("method", "response"), error.message)

    def _reject(self, rejection: Rejection) -> None:
        logger.warning("invalid message: %s", rejection.message)
        if rejection.answer:
            data = {"kind": "invalid_params"} if rejection.code == INVALID_PARAMS else None
            self._send_error(rejection.answer_to, rejection.code, rejection.message, data)

    def _send_error(self, msg_id: int | str | None, code: int, message: str, data: Any) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self._outbox.write(frame_json({"jsonrpc": "2.0", "id": msg_id, "error": error}))
