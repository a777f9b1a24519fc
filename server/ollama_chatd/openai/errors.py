"""What an OpenAI-compatible server's failures mean, in words for a person.

Servers word their errors differently: OpenAI and llama-server `{"error": {"message"}}`,
vLLM a top-level `{"message"}`, FastAPI-based gateways `{"detail"}`. (The client hides
the API key from all of it: `http_backend.hiding_secrets`.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from ..http_backend import error_field, readable_text, retry_after_seconds
from ..llm import BUSY_STATUSES, BackendError, FeatureNotSupported, ModelNotFound, UpstreamError
from .wire import SERVER

_MODEL_MISSING = re.compile(r"model.*(not found|does not exist)|invalid model", re.I)
_TOOLS_REFUSED = re.compile(r"tool.*(not supported|unsupported|requires|--jinja|enable-auto-tool-choice)|not support.*tool", re.I)


def status_error(
    status: int,
    reason_phrase: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    base_url: str,
    model: str | None,
) -> BackendError:
    """Turn an answer that is not an event stream into the error to raise (the caller raises it)."""
    said = _server_text(body)
    text = said or readable_text(body, headers.get("content-type", ""))
    if status in (401, 403):
        return UpstreamError(
            f"{SERVER} at {base_url} refused the API key ({status}: {text or 'unauthorized'}); set OPENAI_API_KEY, "
            "or the environment variable that the `apiKeyEnv` option names, to a key it accepts",
            status,
            server=SERVER,
        )
    if model is not None and said is not None and (status == 404 or _MODEL_MISSING.search(said)):
        return model_not_served(model, base_url, detail=text)
    if status == 400 and said is not None and _TOOLS_REFUSED.search(said):
        return FeatureNotSupported(text, status, "tools", server=SERVER)
    retry_after = retry_after_seconds(headers) if status in BUSY_STATUSES else None
    if said is None:
        text = _describe_odd_body(status, reason_phrase, headers, text, base_url)
    return UpstreamError(text, status, server=SERVER, retry_after=retry_after)


def model_not_served(model: str, base_url: str, *, served: list[str] | None = None, detail: str = "") -> ModelNotFound:
    if served is not None:
        which = f"it serves {', '.join(served)}" if served else "it serves no model at all"
        sentence = f"Model '{model}' is not served by {SERVER} at {base_url} ({which}). Choose one of those"
    else:
        sentence = f"Model '{model}' is not served by {SERVER} at {base_url} ({detail}). Choose one it serves"
    return ModelNotFound(model, f"{sentence}.", server=SERVER)


def _describe_odd_body(status: int, reason_phrase: str, headers: Mapping[str, str], text: str, base_url: str) -> str:
    status_line = f"HTTP {status} {reason_phrase}".rstrip()
    if 300 <= status <= 399:
        return f"{SERVER} answered {status_line}, a redirect to {headers.get('location', '?')}; use that address instead of {base_url}"
    if 200 <= status <= 299:
        kind = headers.get("content-type", "no content type")
        return f"{SERVER} at {base_url} answered {status_line} with {kind}, not a stream of server-sent events: {text}"
    if status == 404:
        return (
            f"{SERVER} answered {status_line} for {base_url}/chat/completions: is {base_url} the API's base URL? "
            "(it usually ends in /v1)"
        )
    return f"{SERVER} at {base_url} answered {status_line}" + (f": {text}" if text else " with an empty body")


def _server_text(body: bytes) -> str | None:
    """The server's own error text, however it shapes it; None when the body has none."""
    said = error_field(body)
    if said is not None:
        return said
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for field in ("message", "detail"):
        if isinstance(data.get(field), str):
            return data[field]
    return None
