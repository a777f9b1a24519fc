"""Validate ollama-chatd wire messages against the JSON Schemas in protocol/schemas/.

The schemas are the language-neutral contract (protocol/README.md); this module
is the Python way to check messages against them in tests:

    from protocol_schemas import validate_outgoing
    validate_outgoing(message, requests_sent)   # every message the daemon wrote

(pytest puts tests/ on sys.path, so test modules import it as `protocol_schemas`.)

Every check raises `jsonschema.ValidationError` on failure, including the
JSON-RPC envelope checks of `validate_outgoing`. Asking for a schema a method
does not have (`validate_params("initialize", ...)`) raises `UnknownMethodError`.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "protocol" / "schemas"
INDEX_FILE = SCHEMA_DIR / "index.json"

__all__ = [
    "SCHEMA_DIR",
    "UnknownMethodError",
    "has_schema",
    "index",
    "schema",
    "validate_envelope",
    "validate_error",
    "validate_initialization_options",
    "validate_outgoing",
    "validate_params",
    "validate_result",
    "validator",
]


class UnknownMethodError(LookupError):
    """The method has no schema of the asked kind (params or result)."""


@cache
def index() -> dict[str, Any]:
    """protocol/schemas/index.json, loaded once."""
    return json.loads(INDEX_FILE.read_text(encoding="utf-8"))


def _file_name(name: str) -> str:
    return name if name.endswith(".json") else f"{name}.json"


def schema(name: str) -> dict[str, Any]:
    """A schema by file name, with or without `.json` ("chat-start.params")."""
    return _load_schema(_file_name(name))


@cache
def _load_schema(file_name: str) -> dict[str, Any]:
    path = SCHEMA_DIR / file_name
    if path == INDEX_FILE or path.parent != SCHEMA_DIR or not path.is_file():
        raise UnknownMethodError(f"no schema file {file_name!r} in {SCHEMA_DIR}")
    return json.loads(path.read_text(encoding="utf-8"))


def validator(name: str) -> Draft202012Validator:
    """A checked Draft 2020-12 validator for a schema file, built once."""
    return _build_validator(_file_name(name))


@cache
def _build_validator(file_name: str) -> Draft202012Validator:
    s = _load_schema(file_name)
    Draft202012Validator.check_schema(s)
    return Draft202012Validator(s)


def _schema_file(method: str, part: str) -> str:
    entry = index()["methods"].get(method)
    if entry is None or part not in entry:
        raise UnknownMethodError(f"no {part} schema for method {method!r}")
    return entry[part]


def has_schema(method: str, part: str = "params") -> bool:
    """Whether `method` has a `part` ("params" or "result") schema."""
    entry = index()["methods"].get(method)
    return entry is not None and part in entry


def _validate(name: str, instance: Any) -> None:
    # best_match picks the most relevant error of a oneOf/if-then tree.
    error = best_match(validator(name).iter_errors(instance))
    if error is not None:
        raise error


def validate_params(method: str, params: Any) -> None:
    """Validate a request's or notification's params against its method's schema.

    "initialize" validates `params["initializationOptions"]` (when present and
    not null) against initializationOptions.json; the rest of initialize's
    params is standard LSP and not checked.
    """
    if method == "initialize":
        if not isinstance(params, Mapping):
            raise ValidationError(f"initialize params must be an object, got {params!r}")
        options = params.get("initializationOptions")
        if options is not None:
            validate_initialization_options(options)
        return
    _validate(_schema_file(method, "params"), params)


def validate_result(method: str, result: Any) -> None:
    """Validate a request's result against its method's result schema."""
    _validate(_schema_file(method, "result"), result)


def validate_error(error: Any) -> None:
    """Validate the `error` member of an error response against error.json."""
    _validate(index()["error"], error)


def validate_initialization_options(options: Any) -> None:
    """Validate initialize's `initializationOptions`."""
    _validate(index()["initializationOptions"], options)


def _is_id(value: Any) -> bool:
    # JSON-RPC ids are strings or integers (LSP: integer | string); never bools.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def validate_envelope(message: Any) -> None:
    """Check the JSON-RPC 2.0 envelope of one message (request, notification or response)."""
    if not isinstance(message, Mapping):
        raise ValidationError(f"a JSON-RPC message must be an object, got {message!r}")
    if message.get("jsonrpc") != "2.0":
        raise ValidationError(f'"jsonrpc" must be "2.0": {message!r}')
    if "method" in message:
        if not isinstance(message["method"], str):
            raise ValidationError(f'"method" must be a string: {message!r}')
        if "result" in message or "error" in message:
            raise ValidationError(f'a request or notification has no "result"/"error": {message!r}')
        if "id" in message and not _is_id(message["id"]):
            raise ValidationError(f'a request\'s "id" must be an integer or a string: {message!r}')
        if "params" in message and not isinstance(message["params"], (Mapping, list)):
            raise ValidationError(f'"params" must be an object or an array: {message!r}')
        extra = set(message) - {"jsonrpc", "method", "id", "params"}
    else:
        if "id" not in message:
            raise ValidationError(f'a response must have an "id": {message!r}')
        if ("result" in message) == ("error" in message):
            raise ValidationError(f'a response has exactly one of "result" and "error": {message!r}')
        if message["id"] is None:
            if "error" not in message:
                raise ValidationError(f"only an error response may have a null id: {message!r}")
        elif not _is_id(message["id"]):
            raise ValidationError(f'a response\'s "id" must be an integer, a string or null: {message!r}')
        extra = set(message) - {"jsonrpc", "id", "result", "error"}
    if extra:
        raise ValidationError(f"unexpected members {sorted(extra)} in {message!r}")


def validate_outgoing(message: Any, requests_sent: Mapping[Hashable, str]) -> None:
    """Validate one message the daemon wrote to its stdout.

    - Notifications and daemon->client requests are checked by method; a
      chat/* method must be one the index lists as sent by the daemon, other
      methods (window/logMessage, $/cancelRequest, workspace/applyEdit...) are
      standard LSP: only their envelope is checked.
    - A result is checked with the result schema of the method of the request
      the client sent with that id (`requests_sent` maps id -> method); a
      result for an id the client never sent is an error, a result of a
      method without a result schema (initialize, shutdown...) is skipped.
    - An error response is checked with error.json (its id need not be in
      `requests_sent`: it may answer a malformed request); a null id is only
      allowed for -32700 and -32600.
    """
    validate_envelope(message)
    if "method" in message:
        method = message["method"]
        entry = index()["methods"].get(method)
        if entry is None:
            if method.startswith("chat/"):
                raise ValidationError(f"the daemon sent an unknown method {method!r}")
            return
        is_request = "id" in message
        expected = "request" if is_request else "notification"
        if entry["type"] != expected:
            raise ValidationError(f"{method} is a {entry['type']}, but the daemon sent it as a {expected}")
        if entry["direction"] != "daemon-to-client":
            raise ValidationError(f"{method} is sent by the client, never by the daemon")
        if "params" not in message:
            raise ValidationError(f"{method} without params: {message!r}")
        validate_params(method, message["params"])
        return

    msg_id = message["id"]
    if "error" in message:
        validate_error(message["error"])
        if msg_id is None and message["error"]["code"] not in (-32700, -32600):
            raise ValidationError(f"error {message['error']['code']} with a null id: {message!r}")
        return

    if msg_id not in requests_sent:
        raise ValidationError(f"response to id {msg_id!r}, which the client never sent")
    method = requests_sent[msg_id]
    if has_schema(method, "result"):
        if index()["methods"][method]["direction"] != "client-to-daemon":
            raise ValidationError(f"the daemon answered {method}, which only the daemon sends")
        validate_result(method, message["result"])
