"""Keeping configured credentials out of what a model server sends back.

A server, or a proxy in front of it, may quote the request's headers in an error
page (a 401 or 502 echoing `Authorization: Bearer ...`). Every backend runs the
error answers it reads through these before they become a message for the
client or a log line: the configured header values (OLLAMA_API_KEY's bearer
token among them, OPENAI_API_KEY for the openai backend) are blanked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from .llm import BackendError

MIN_SECRET_CHARS = 6  # shorter values ("1", "yes") are not credentials, and would garble every text
REDACTED = "***"  # as the openai backend always wrote a key it found


def secret_values(headers: Mapping[str, str] | None) -> tuple[str, ...]:
    """What must never be shown of the configured headers: each value and each word
    of it (the token of "Bearer <token>"), in the forms a server may quote them
    (as is, JSON-escaped), longest first so a value goes before its parts."""
    found: set[str] = set()
    for value in (headers or {}).values():
        for part in (value, *value.split()):
            if len(part) >= MIN_SECRET_CHARS:
                found.update((part, json.dumps(part)[1:-1]))
    return tuple(sorted(found, key=len, reverse=True))


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact_bytes(body: bytes, secrets: Sequence[str]) -> bytes:
    """An answer's body before it is read (and maybe cut short: a cut could keep half a secret)."""
    for secret in secrets:
        body = body.replace(secret.encode("utf-8"), REDACTED.encode())
    return body


def hide_secrets(error: BackendError, secrets: Sequence[str]) -> BackendError:
    """The same error, its message (headers such as Location included) without the secrets."""
    if secrets and error.args:
        error.args = (redact(str(error.args[0]), secrets), *error.args[1:])
    return error
