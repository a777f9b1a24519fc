"""What every HTTP model-server backend (`ollama/`, `openai/`) shares: the httpx
client's headers and TLS settings, failures and error bodies in words for a person,
and the server's Retry-After.

Imported by the backends only, so httpx loads with the backend that needs it.
"""

from __future__ import annotations

import email.utils
import json
import os
import re
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from . import __version__
from .llm import BackendError, BackendUnreachable, UpstreamError, sentence_start
from .redaction import hide_secrets, redact_bytes, secret_values

CONNECT_TIMEOUT_S = 10.0
ERROR_BODY_READ_LIMIT = 64 * 1024  # enough for any real error; a proxy page gets cut
_REASON_CHARS = 200
_ERROR_TEXT_CHARS = 500
_EXCERPT_CHARS = 200


# ---------------------------------------------------------------- the client


def default_headers(extra: Mapping[str, str] | None) -> httpx.Headers:
    headers = httpx.Headers({"Accept": "application/json", "User-Agent": f"ollama-chatd/{__version__}"})
    headers.update(extra or {})  # the caller's headers win, e.g. Authorization for a remote server
    return headers


def with_bearer_token(headers: Mapping[str, str], key: str) -> dict[str, str]:
    """`headers`, plus `key` as `Authorization: Bearer` unless they carry an Authorization."""
    merged = dict(headers)
    if key and not any(name.lower() == "authorization" for name in merged):
        merged["Authorization"] = f"Bearer {key}"
    return merged


def ssl_verify(verify: bool | str, base_url: str) -> bool | ssl.SSLContext:
    if verify is True and base_url.startswith("http://"):
        # Plain HTTP needs no certificates, and loading the system's trust store would
        # hold 3 MiB for the daemon's whole life. A context trusting nothing makes any
        # TLS connection (an https proxy) fail verification instead of going unchecked.
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # httpx 0.28 deprecates a CA path string; build the context it wants instead.
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return verify


# ---------------------------------------------------------------- failures


def describe_failure(exc: httpx.RequestError) -> str:
    """A short reason for a transport failure, never empty."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"no connection within {CONNECT_TIMEOUT_S:g} s"
    text = str(exc).strip() or type(exc).__name__
    if text == _ANYIO_GAVE_UP:
        text = _socket_error(exc) or text
    return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS] + "…"


_ANYIO_GAVE_UP = "All connection attempts failed"


def _socket_error(exc: BaseException) -> str | None:
    """The socket's own words ("Connection refused") beneath anyio's "All connection attempts failed"."""
    cause = exc.__cause__ or exc.__context__
    for _ in range(8):  # httpx -> httpcore -> anyio -> the socket's error
        if cause is None:
            return None
        if isinstance(cause, OSError) and not isinstance(cause, ssl.SSLError) and (cause.errno or 0) > 0:
            return os.strerror(cause.errno)
        cause = cause.__cause__ or cause.__context__
    return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The wait a 429 or 503 asks for: Retry-After in seconds or as an HTTP date; None if absent or unreadable."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def closed_mid_answer(reason: str, *, server: str) -> UpstreamError:
    return UpstreamError(f"the connection to {server} closed in the middle of the answer ({reason})", server=server)


def stalled(stall_timeout: float, *, server: str) -> UpstreamError:
    return UpstreamError(
        f"{sentence_start(server)} stalled: nothing arrived for {stall_timeout:g} s in the middle of the "
        f"answer (what came is kept); try again, or check {server}'s log",
        server=server,
    )


# ---------------------------------------------------------------- error bodies


async def read_at_most(response: httpx.Response, limit: int = ERROR_BODY_READ_LIMIT) -> bytes:
    """Read an error body, stopping at `limit` bytes; a failure mid-way keeps what came."""
    parts: list[bytes] = []
    size = 0
    try:
        async for part in response.aiter_bytes():
            parts.append(part)
            size += len(part)
            if size >= limit:
                break
    except httpx.RequestError:
        pass  # the status already says what went wrong; the text is a bonus
    return b"".join(parts)[:limit]


def error_field(body: bytes) -> str | None:
    """The text of a body's `{"error": ...}` (a string, or an object with a message); None when not shaped so."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and "error" in data:
        return error_text(data["error"])
    return None


def error_text(error: Any) -> str:
    """The human text of an `error` field: Ollama's string, or an OpenAI-style object."""
    if isinstance(error, str):
        return error
    message = error.get("message") if isinstance(error, dict) else None
    if isinstance(message, str):
        return message
    return json.dumps(error, ensure_ascii=False)


def looks_like_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


_TAG = re.compile(rb"<[^>]*>")
_SPACES = re.compile(r"\s+")


def readable_text(body: bytes, content_type: str) -> str:
    """A one-line, trimmed version of a body for an error message (HTML tags removed)."""
    if "html" in content_type or body.lstrip()[:1] == b"<":
        body = _TAG.sub(b" ", body)
    text = _SPACES.sub(" ", body.decode("utf-8", errors="replace")).strip()
    return text if len(text) <= _ERROR_TEXT_CHARS else text[:_ERROR_TEXT_CHARS] + "…"


def excerpt(value: bytes | str | Any, limit: int = _EXCERPT_CHARS) -> str:
    """A short, printable quote of something a server sent, for error messages."""
    if isinstance(value, bytes | bytearray):
        text = bytes(value[: limit * 4]).decode("utf-8", errors="replace")
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    text = text.strip()
    return repr(text) if len(text) <= limit else repr(text[:limit]) + "…"


# ---------------------------------------------------------------- one server's connection pool


# No read timeout: a server sends nothing, not even headers, until the first token,
# and queueing plus loading a model can take minutes; a short read timeout would
# also abort the load on the server's side.
TIMEOUT = httpx.Timeout(connect=CONNECT_TIMEOUT_S, read=None, write=30.0, pool=None)

StatusError = Callable[[httpx.Response, bytes], BackendError]


def hiding_secrets(status_error: StatusError, secrets: tuple[str, ...]) -> StatusError:
    """`status_error` reading a body with the secrets blanked, its message blanked too."""

    def error(response: httpx.Response, body: bytes) -> BackendError:
        return hide_secrets(status_error(response, redact_bytes(body, secrets)), secrets)

    return error


class ServerConnection:
    """The httpx client of one model server, failing in the words every backend uses:
    a request that gets no status line means the server is unreachable."""

    def __init__(
        self,
        base_url: str,
        server: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.server = server
        self.secrets = secret_values(headers)  # blanked out of every error answer
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=default_headers(headers),
            verify=ssl_verify(verify, self.base_url),
            transport=transport,
            timeout=TIMEOUT,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def send(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Send and wait for the status line (the body is left to stream)."""
        request = self.http.build_request(method, path, json=json, headers=headers)
        try:
            return await self.http.send(request, stream=True)
        except httpx.RequestError as exc:
            raise BackendUnreachable(self.base_url, describe_failure(exc), server=self.server) from exc

    async def request_json(
        self, method: str, path: str, status_error: StatusError, *, json: Any = None
    ) -> Mapping[str, Any]:
        """A JSON object from `path`; a non-2xx answer becomes `status_error(response, body)`."""
        response = await self.send(method, path, json=json)
        try:
            if not response.is_success:
                raise status_error(response, await read_at_most(response))
            try:
                body = await response.aread()
            except httpx.RequestError as exc:
                raise UpstreamError(
                    f"the connection to {self.server} closed while reading {path} ({describe_failure(exc)})",
                    response.status_code,
                    server=self.server,
                ) from exc
        finally:
            await response.aclose()
        return json_object(body, path, response.status_code, server=self.server)


def json_object(body: bytes, path: str, status: int, *, server: str) -> Mapping[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        raise UpstreamError(
            f"{sentence_start(server)} answered {path} with a body that is not JSON: {excerpt(body)}", status, server=server
        ) from None
    if not isinstance(data, dict):
        raise UpstreamError(
            f"{sentence_start(server)} answered {path} with JSON that is not an object: {excerpt(body)}",
            status,
            server=server,
        )
    return data
