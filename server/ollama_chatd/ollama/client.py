"""The HTTP side: one long-lived httpx client, Ollama's statuses mapped to `BackendError`s.

Layering: `wire` builds and reads JSON, `ndjson` cuts the byte stream into lines,
`errors` words the failures, this module only moves bytes, all through httpx. The
per-token path of /api/chat is `aiter_raw()` -> `LineSplitter.feed()` -> `parse_chat_line()`,
about 10 µs a token; `pacing.paced_reads` reads it in batches, so that a fast model costs
an event-loop wake-up per batch instead of per token (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx

from ..http_backend import ServerConnection, StatusError, describe_failure, excerpt, hiding_secrets, read_at_most
from ..llm import (
    BackendError,
    ChatChunk,
    ChatRequest,
    ModelInfo,
    UpstreamError,
)
from ..pacing import paced_reads
from .errors import (
    closed_mid_answer,
    ended_without_done,
    is_chat_stream,
    stalled,
    status_error,
)
from .ndjson import DEFAULT_MAX_LINE_BYTES, LineSplitter, LineTooLong
from .wire import (
    ModelDetails,
    ModelSummary,
    chat_payload,
    parse_chat_line,
    parse_show,
    parse_tags,
    parse_version,
)

log = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT_S = 120.0
DRAIN_TIMEOUT_S = 1.0  # for the end of the body after the final chunk; see _drain

_STREAM_HEADERS = {
    "Accept": "application/x-ndjson",
    # A compressing proxy would buffer the tokens; ask for the bytes as they are.
    "Accept-Encoding": "identity",
}

T = TypeVar("T")


class OllamaClient:
    """A small async client for Ollama's native API; implements `llm.ChatBackend`.

    One connection pool for the client's whole life: create it once, `aclose()` it
    at shutdown (or use `async with`).
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        transport: httpx.AsyncBaseTransport | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
    ):
        self._connection = ServerConnection(base_url, "Ollama", headers=headers, verify=verify, transport=transport)
        self.base_url = self._connection.base_url
        self._max_line_bytes = max_line_bytes
        self._stall_timeout = stall_timeout
        self._http = self._connection.http

    def __repr__(self) -> str:
        # Deliberately without headers: they may carry an Authorization token.
        return f"OllamaClient({self.base_url!r})"

    async def __aenter__(self) -> OllamaClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ chat

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """Stream /api/chat; the last chunk has `done=True`.

        Closing this generator (`aclose()`, or `contextlib.aclosing` around an
        `async for` that breaks) or cancelling the consuming task closes the HTTP
        connection right away, which is how Ollama learns to stop generating.
        Not reading it (a front-end whose client lags) leaves the socket unread, so
        TCP slows Ollama down.
        """
        log.debug("POST /api/chat model=%s messages=%d", request.model, len(request.messages))
        response = await self._send("POST", "/api/chat", json=chat_payload(request), headers=_STREAM_HEADERS)
        try:
            if not is_chat_stream(response.status_code, response.headers):
                raise await self._status_error(response, model=request.model)
            splitter = LineSplitter(self._max_line_bytes)
            body = _body_chunks(response)
            done = False
            try:
                # Headers come with the first chunk, so the model is loaded: from here on a
                # long silence means Ollama is stuck, not busy loading.
                async with paced_reads(body, self._stall_timeout) as reads:
                    while (raw := await reads.next()) is not None:
                        for line in splitter.feed(raw):
                            chunk = parse_chat_line(line)
                            yield chunk
                            if chunk.done:
                                done = True
                                break
                        if done:
                            break
                if done:
                    await _drain(body)
                elif (tail := splitter.flush()) is not None:
                    chunk = parse_chat_line(tail)  # a last line without its newline
                    yield chunk
                    done = chunk.done
            except httpx.RequestError as exc:
                if done:
                    return  # the answer is complete; a sloppy close after it is harmless
                raise closed_mid_answer(describe_failure(exc)) from exc
            except LineTooLong as exc:
                raise UpstreamError(str(exc)) from exc
            except TimeoutError:
                raise stalled(self._stall_timeout) from None
            if not done:
                raise ended_without_done()
        finally:
            await response.aclose()

    # ------------------------------------------------------------ other endpoints

    async def list_models(self) -> list[ModelSummary]:
        """The installed models (/api/tags)."""
        body = await self._request_json("GET", "/api/tags")
        return _parse(parse_tags, body, "/api/tags")

    async def show(self, model: str) -> ModelDetails:
        """Capabilities and context length of one model (/api/show)."""
        body = await self._request_json("POST", "/api/show", json={"model": model}, model=model)
        return _parse(parse_show, body, "/api/show")

    async def installed_models(self) -> list[ModelInfo]:
        """/api/tags, completed by /api/show of each model (asked concurrently)."""
        summaries = await self.list_models()
        details = await asyncio.gather(*(self._details_if_known(s.name) for s in summaries))
        return [_model_info(summary.name, summary, detail) for summary, detail in zip(summaries, details, strict=True)]

    async def describe_model(self, name: str) -> ModelInfo:
        return _model_info(name, None, await self.show(name))

    async def _details_if_known(self, name: str) -> ModelDetails | None:
        try:
            return await self.show(name)
        except BackendError as error:
            log.info("no details for %s: %s", name, error)
            return None

    async def version(self) -> str:
        """The server's version string (/api/version), e.g. "0.12.10"."""
        body = await self._request_json("GET", "/api/version")
        return _parse(parse_version, body, "/api/version")

    # ------------------------------------------------------------ plumbing

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send and wait for the status line; anything failing before it means unreachable."""
        return await self._connection.send(method, path, json=json, headers=headers)

    async def _request_json(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        model: str | None = None,
    ) -> Mapping[str, Any]:
        return await self._connection.request_json(method, path, self._status_error_for(model), json=json)

    def _status_error_for(self, model: str | None) -> StatusError:
        """Turn a non-2xx answer (and what could be read of its body) into the error to raise."""

        def error(response: httpx.Response, body: bytes) -> BackendError:
            return status_error(
                response.status_code, response.reason_phrase, response.headers, body, base_url=self.base_url, model=model
            )

        return hiding_secrets(error, self._connection.secrets)

    async def _status_error(self, response: httpx.Response, *, model: str | None) -> BackendError:
        return self._status_error_for(model)(response, await read_at_most(response))


def _body_chunks(response: httpx.Response) -> AsyncIterator[bytes]:
    # Raw bytes are the fast path. Only if something in between compressed the body
    # anyway (we asked for identity) let httpx decode it.
    encoding = response.headers.get("content-encoding", "")
    if encoding in ("", "identity"):
        return response.aiter_raw()
    return response.aiter_bytes()


async def _drain(body: AsyncIterator[bytes]) -> None:
    """Read what follows the final chunk (normally just the end of the chunked body).

    A response read to its end lets httpx put the connection back in the pool; one
    closed early costs a new connection next time. Bounded in time, because the
    caller already has its answer and must not wait on a server that lingers.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_TIMEOUT_S):
            async for _ in body:
                pass


def _model_info(name: str, summary: ModelSummary | None, details: ModelDetails | None) -> ModelInfo:
    return ModelInfo(
        name=name,
        size_bytes=summary.size_bytes if summary else None,
        family=(summary.family if summary else None) or (details.family if details else None),
        parameter_size=(summary.parameter_size if summary else None) or (details.parameter_size if details else None),
        quantization=(summary.quantization if summary else None) or (details.quantization if details else None),
        # Servers older than v0.6.4 report no capabilities: unknown, not "none".
        capabilities=frozenset(details.capabilities) if details and details.capabilities else None,
        context_length=details.context_length if details else None,
    )


def _parse(parser: Callable[[Mapping[str, Any]], T], body: Mapping[str, Any], path: str) -> T:
    try:
        return parser(body)
    except (AttributeError, TypeError) as exc:  # a field of the wrong JSON type
        raise UpstreamError(f"Ollama answered {path} with JSON of an unexpected shape: {excerpt(body)}") from exc


