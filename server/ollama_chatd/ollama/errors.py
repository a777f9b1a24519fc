"""What Ollama's failures mean, in words for a person: one place for both HTTP paths.

`client` (httpx) and `stream` (the raw /api/chat fast path) read an error answer
their own way, then hand status, headers and body bytes to `status_error`, so the
same answer always becomes the same `BackendError` with the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from .. import http_backend
from ..http_backend import error_field, looks_like_json, readable_text, retry_after_seconds
from ..llm import BUSY_STATUSES, BackendError, FeatureNotSupported, ModelNotFound, UpstreamError

_EMPTY_BODY_HINTS = {
    403: " (Ollama refuses requests whose Host header is not local when it listens on loopback; "
    "check OLLAMA_ORIGINS/OLLAMA_HOST or the proxy in between)",
}


def is_chat_stream(status: int, headers: Mapping[str, str]) -> bool:
    """A 2xx answer that is not a web page: an HTML 200 comes from a proxy or a
    login portal, not from Ollama, and deserves the same description as an error."""
    return 200 <= status <= 299 and "html" not in headers.get("content-type", "").lower()


def status_error(
    status: int,
    reason_phrase: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    base_url: str,
    model: str | None,
) -> BackendError:
    """Turn an answer that is not a chat stream into the error to raise (the caller raises it).

    `headers` must answer lower-case names (httpx.Headers, or a dict built that way);
    `body` is what could be read of it, at most http_backend.ERROR_BODY_READ_LIMIT bytes.
    """
    error = error_field(body)
    # Only a JSON 404 is Ollama's "model not found"; a plain 404 means the URL
    # does not lead to Ollama at all (wrong path, another server).
    if status == 404 and model is not None and error is not None:
        return ModelNotFound(model, detail=error)
    if status == 400 and error is not None and (feature := _unsupported_feature(error)):
        return FeatureNotSupported(error, status, feature)
    # An empty 403 is Ollama's own Host-header check (see _EMPTY_BODY_HINTS), not credentials.
    if status == 401 or (status == 403 and body.strip()):
        return UpstreamError(
            f"Ollama at {base_url} refused the request ({status}: {error or readable_text(body, '') or 'unauthorized'}). "
            "If it needs credentials, set OLLAMA_API_KEY (sent as a Bearer token) or the `headers` "
            "initialization option",
            status,
        )
    retry_after = retry_after_seconds(headers) if status in BUSY_STATUSES else None
    if error is not None:
        return UpstreamError(error, status, retry_after=retry_after)
    return UpstreamError(_describe_odd_body(status, reason_phrase, headers, body, base_url), status, retry_after=retry_after)


def _describe_odd_body(status: int, reason_phrase: str, headers: Mapping[str, str], body: bytes, base_url: str) -> str:
    status_line = f"HTTP {status} {reason_phrase}".rstrip()
    if 300 <= status <= 399:  # httpx's `is_redirect`; httpx follows none, neither does `stream`
        location = headers.get("location", "?")
        return f"Ollama answered {status_line}, a redirect to {location}; use that address instead of {base_url}"
    if not body.strip():
        hint = _EMPTY_BODY_HINTS.get(status, "")
        return f"Ollama answered {status_line} with an empty body{hint}"
    text = readable_text(body, headers.get("content-type", ""))
    if looks_like_json(body):
        return f"Ollama answered {status_line}: {text}"
    return (
        f"Ollama answered {status_line} with a body that is not JSON (is {base_url} really Ollama, or a proxy?): {text}"
    )


# ---------------------------------------------------------------- failures inside a 200 stream


def closed_mid_answer(reason: str) -> UpstreamError:
    return http_backend.closed_mid_answer(reason, server="Ollama")


def stalled(stall_timeout: float) -> UpstreamError:
    return http_backend.stalled(stall_timeout, server="Ollama")


def ended_without_done() -> UpstreamError:
    return UpstreamError('Ollama ended the answer without its final chunk ("done": true); the reply may be cut short')


# ---------------------------------------------------------------- reading error bodies


def _unsupported_feature(error: str) -> Literal["tools", "think"] | None:
    """Ollama's 400s for a model lacking a capability: "... does not support tools"."""
    if error.endswith("does not support tools"):
        return "tools"
    if error.endswith("does not support thinking"):
        return "think"
    return None
