"""The HTTP side: Chat Completions streamed as server-sent events; implements `llm.ChatBackend`.

Events are read with httpx-sse (a maintained SSE parser); `wire` turns their data
into chunks, `errors` words the failures. Closing the stream (a cancelled turn)
closes the connection at once, which is how llama-server and vLLM learn to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import attrs
import httpx
import httpx_sse

from ..http_backend import (
    ServerConnection,
    StatusError,
    closed_mid_answer,
    describe_failure,
    hiding_secrets,
    read_at_most,
    stalled,
    with_bearer_token,
)
from ..llm import BackendError, ChatChunk, ChatRequest, ModelInfo, UpstreamError, Usage
from ..pacing import paced_reads
from .errors import model_not_served, status_error
from .wire import (
    SERVER,
    ReplyAssembler,
    ServedModel,
    Timings,
    capabilities_from_props,
    chat_payload,
    context_length_from_props,
    parse_models,
)

log = logging.getLogger(__name__)

DEFAULT_STALL_TIMEOUT_S = 120.0
_STREAM_HEADERS = {
    "Accept": "text/event-stream",
    "Cache-Control": "no-store",
    # A compressing proxy would buffer the tokens; ask for the bytes as they are.
    "Accept-Encoding": "identity",
}
_END_OF_STREAM = "[DONE]"


class OpenAIClient:
    """A client of one OpenAI-compatible server (`base_url` ends where `/chat/completions`
    and `/models` begin, usually `/v1`). Create it once, `aclose()` it at shutdown."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        transport: httpx.AsyncBaseTransport | None = None,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT_S,
    ):
        headers = with_bearer_token(headers or {}, api_key)
        self._connection = ServerConnection(base_url, SERVER, headers=headers, verify=verify, transport=transport)
        self.base_url = self._connection.base_url
        self._stall_timeout = stall_timeout
        self._served: dict[str, ServedModel] | None = None

    def __repr__(self) -> str:
        # Deliberately without headers and key.
        return f"OpenAIClient({self.base_url!r})"

    async def aclose(self) -> None:
        await self._connection.aclose()

    # ------------------------------------------------------------ models

    async def installed_models(self) -> list[ModelInfo]:
        """GET /models (asked anew each time, so a model loaded since shows up)."""
        served = await self._list_models()
        return await self._described(list(served.values()), alone=len(served) == 1)

    async def describe_model(self, name: str) -> ModelInfo:
        """The model if the server lists it; llama-server answers any name with its one model,
        so the name is checked here. The list is kept, and asked again for a name not on it."""
        served = self._served if self._served is not None and name in self._served else await self._list_models()
        if name not in served:
            raise model_not_served(name, self.base_url, served=sorted(served))
        (info,) = await self._described([served[name]], alone=len(served) == 1)
        return info

    async def _described(self, models: list[ServedModel], *, alone: bool) -> list[ModelInfo]:
        """What the server says of its models. llama-server's /props (asked once, and only
        where it can tell something) describes the one model it runs: window, tools, vision.
        Where nothing says, abilities are unknown: tools are tried, and dropped for the
        session if the server refuses them."""
        telling = alone or any(model.context_length is None for model in models)
        props = await self._server_props() if telling else {}
        window = context_length_from_props(props)
        abilities = capabilities_from_props(props) if alone else None
        return [ModelInfo(name=m.id, context_length=m.context_length or window, capabilities=abilities) for m in models]

    async def version(self) -> str:
        """What the server says of itself: llama-server's build from /props, else just that it answers."""
        await self._list_models()
        build = (await self._server_props()).get("build_info")
        return f"llama.cpp {build}" if isinstance(build, str) and build else "version not reported"

    async def _list_models(self) -> dict[str, ServedModel]:
        body = await self._connection.request_json("GET", "/models", self._status_error(None))
        self._served = {model.id: model for model in parse_models(body)}
        return self._served

    async def _server_props(self) -> Mapping[str, Any]:
        """llama-server's GET /props (beside /v1, not under it); {} where there is none.
        Not kept: the engine keeps what it learns per session, and a restarted server may
        run another model."""
        root = self.base_url.removesuffix("/v1")
        try:
            return await self._connection.request_json("GET", f"{root}/props", self._status_error(None))
        except BackendError as error:
            log.debug("no /props at %s: %s", root, error)
            return {}

    # ------------------------------------------------------------ chat

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[ChatChunk, None]:
        """Stream /chat/completions; the last chunk has `done=True`. Closing this generator
        (or cancelling its consumer) closes the connection at once."""
        log.debug("POST /chat/completions model=%s messages=%d", request.model, len(request.messages))
        clock = asyncio.get_running_loop().time
        started = clock()
        response = await self._connection.send(
            "POST", "/chat/completions", json=chat_payload(request), headers=_STREAM_HEADERS
        )
        try:
            if not _is_event_stream(response):
                raise self._status_error(request.model)(response, await read_at_most(response))
            reply = ReplyAssembler()
            async with contextlib.aclosing(self._chunks(response, reply)) as chunks:
                async for chunk in chunks:
                    yield chunk
            final = reply.final()
            if not final.usage or not final.usage.total_duration_ns:
                final = _with_duration(final, clock() - started)
            _log_prompt_cache(request.model, reply.timings)
            yield final
        finally:
            await response.aclose()

    async def _chunks(self, response: httpx.Response, reply: ReplyAssembler) -> AsyncGenerator[ChatChunk, None]:
        """The text chunks of the stream until `[DONE]` (or its end after a finish reason)."""
        events = httpx_sse.EventSource(response).aiter_sse()
        said_done = False
        async with contextlib.aclosing(events):
            try:
                # Headers came, so the model is loaded: from here on a long silence means
                # the server is stuck (only the wait for it counts, see pacing.py).
                async with paced_reads(events, self._stall_timeout) as reads:
                    while (event := await reads.next()) is not None:
                        if event.data == _END_OF_STREAM:
                            said_done = True
                            break
                        if event.data and (chunk := reply.feed(event.data)) is not None:
                            yield chunk
            except httpx.RequestError as exc:
                if not reply.finished:
                    raise closed_mid_answer(describe_failure(exc), server=SERVER) from exc
                return  # the answer is complete; a sloppy close after it is harmless
            except TimeoutError:
                raise stalled(self._stall_timeout, server=SERVER) from None
        if not said_done and not reply.finished:
            raise UpstreamError(
                f"{SERVER} ended the answer without a finish reason or [DONE]; the reply may be cut short",
                server=SERVER,
            )

    def _status_error(self, model: str | None) -> StatusError:
        def error(response: httpx.Response, body: bytes) -> BackendError:
            return status_error(
                response.status_code,
                response.reason_phrase,
                response.headers,
                body,
                base_url=self.base_url,
                model=model,
            )

        return hiding_secrets(error, self._connection.secrets)


def _is_event_stream(response: httpx.Response) -> bool:
    return response.is_success and "text/event-stream" in response.headers.get("content-type", "")


def _with_duration(chunk: ChatChunk, seconds: float) -> ChatChunk:
    usage = chunk.usage or Usage()
    return attrs.evolve(chunk, usage=attrs.evolve(usage, total_duration_ns=int(seconds * 1e9)))


def _log_prompt_cache(model: str, timings: Timings | None) -> None:
    """llama-server says how much of the prompt it evaluated and how much came from its
    prompt cache: the measure of whether the history was sent so its prefix is reused."""
    if timings is not None:
        log.info(
            "%s: prompt evaluated %d tokens, %s from the server's prompt cache",
            model,
            timings.prompt_n,
            "?" if timings.cache_n is None else timings.cache_n,
        )
