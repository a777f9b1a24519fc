"""From a frame's bytes to pygls: every malformed message gets the JSON-RPC answer
it deserves (an error when there is an id to answer, a log line otherwise) and
never reaches the handlers.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import attrs
from lsprotocol.types import EXIT
from pygls.exceptions import JsonRpcException

from ollama_chatd.rpc.outbox import Outbox, frame_json
from ollama_chatd.rpc.protocol import ChatProtocol

logger = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602


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
    answer_to = raw.get("id") if _is_valid_id(raw.get("id")) else None
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


def _is_valid_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class Dispatcher:
    def __init__(self, protocol: ChatProtocol, outbox: Outbox):
        self._protocol = protocol
        self._outbox = outbox

    def handle(self, body: bytes) -> None:
        """Handle one message. `exit` raises SystemExit carrying the exit code."""
        try:
            raw = json.loads(body)
        except ValueError as error:  # UnicodeDecodeError included
            self._reject(Rejection(PARSE_ERROR, f"message body is not valid UTF-8 JSON: {error}", None, True))
            return
        rejection = check_envelope(raw)
        if rejection is None and self._protocol._shutdown and raw.get("method") not in (EXIT, None):
            rejection = Rejection(INVALID_REQUEST, "the server is shutting down", raw.get("id"), "id" in raw)
        if rejection is not None:
            self._reject(rejection)
            return
        try:
            message = self._protocol.structure_message(raw)
        except JsonRpcException as error:
            self._fail(raw, error)
            return
        self._protocol.handle_message(message)

    def _fail(self, raw: dict[str, Any], error: JsonRpcException) -> None:
        if "id" in raw and "method" in raw:
            self._send_error(raw["id"], error.code, error.message, error.data)
        else:
            logger.warning("dropping %s: %s", raw.get("method", "response"), error.message)

    def _reject(self, rejection: Rejection) -> None:
        logger.warning("invalid message: %s", rejection.message)
        if rejection.answer:
            self._send_error(rejection.answer_to, rejection.code, rejection.message, None)

    def _send_error(self, msg_id: int | str | None, code: int, message: str, data: Any) -> None:
        error: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            error["data"] = data
        self._outbox.write(frame_json({"jsonrpc": "2.0", "id": msg_id, "error": error}))
