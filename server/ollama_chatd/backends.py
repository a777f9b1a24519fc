"""The model servers the daemon can talk to, chosen by `initializationOptions.backend`.

This is the one place that knows them: each is a name, a way to read its address
from the settings, and a module implementing `llm.ChatBackend`: `ollama/`, and
`openai/` for any OpenAI-compatible server (docs/backends.md).

Kept light (no httpx): `initialize` is checked through `address()` before the rest
of the daemon loads (rpc/startup.py), and a backend's client module is imported
only when that backend is built: for a local Ollama (nothing in its settings that
could be refused), at the first call, as a window whose user never chats never
needs it (2.6 MiB of RSS: httpx and the client; issue 15, a small daemon).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import attrs

from ollama_chatd import llm
from ollama_chatd.config import OptionError, Settings
from ollama_chatd.ollama.host import HostChoice, resolve_host

logger = logging.getLogger(__name__)


@attrs.frozen
class _Backend:
    label: str  # how the log and messages name this kind of server
    address: Callable[[Settings, Mapping[str, str]], HostChoice]
    build: Callable[[Settings, HostChoice], llm.ChatBackend]


def address(settings: Settings, environ: Mapping[str, str] = os.environ) -> HostChoice:
    """Where the chosen model server is, and which setting said so.

    Raises OptionError for an unknown backend, ValueError for an unusable address.
    """
    return _chosen(settings).address(settings, environ)


def build_backend(settings: Settings) -> llm.ChatBackend:
    """The client of the chosen model server; `aclose()` it when done."""
    backend = _chosen(settings)
    where = backend.address(settings, os.environ)
    logger.info("%s at %s (from %s)", backend.label, where.url, where.source)
    if _cannot_be_refused(settings):
        return _BuiltOnFirstUse(lambda: backend.build(settings, where))
    return backend.build(settings, where)


def _cannot_be_refused(settings: Settings) -> bool:
    """Whether building the backend can only succeed, so that it may wait for its first
    use: a CA bundle, headers or an API key may be refused, and must be at `initialize`."""
    return (
        settings.backend == "ollama"
        and isinstance(settings.verify, bool)
        and not settings.headers
        and not os.environ.get(OLLAMA_API_KEY_ENV, "").strip()
    )


class _BuiltOnFirstUse:
    """A `llm.ChatBackend` that builds the real one when first called."""

    def __init__(self, build: Callable[[], llm.ChatBackend]) -> None:
        self._build = build
        self._backend: llm.ChatBackend | None = None

    def _built(self) -> llm.ChatBackend:
        if self._backend is None:
            self._backend = self._build()
        return self._backend

    async def version(self) -> str:
        return await self._built().version()

    async def installed_models(self) -> list[llm.ModelInfo]:
        return await self._built().installed_models()

    async def describe_model(self, name: str) -> llm.ModelInfo:
        return await self._built().describe_model(name)

    def stream_chat(self, request: llm.ChatRequest) -> AsyncIterator[llm.ChatChunk]:
        return self._built().stream_chat(request)

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()


def _chosen(settings: Settings) -> _Backend:
    try:
        return _BACKENDS[settings.backend]
    except KeyError:
        known = ", ".join(f'"{name}"' for name in _BACKENDS)
        raise OptionError("backend", f"`backend` must be one of {known}, got {settings.backend!r}") from None


def _ollama_address(settings: Settings, environ: Mapping[str, str]) -> HostChoice:
    return resolve_host(settings.ollama_host, environ)


def _ollama(settings: Settings, where: HostChoice) -> llm.ChatBackend:
    from ollama_chatd.http_backend import with_bearer_token
    from ollama_chatd.ollama.client import OllamaClient

    headers = with_bearer_token(settings.headers, os.environ.get(OLLAMA_API_KEY_ENV, "").strip())
    with _usable_ca_bundle():
        return OllamaClient(where.url, headers=headers, verify=settings.verify, stall_timeout=settings.stall_timeout)


def _openai_address(settings: Settings, environ: Mapping[str, str]) -> HostChoice:
    from ollama_chatd.openai.address import resolve_base_url

    _openai_key(settings, environ)  # checked with the address, so `initialize` names a missing key
    try:
        return resolve_base_url(settings.base_url, environ)
    except ValueError as error:
        if settings.base_url:
            raise OptionError("baseUrl", str(error)) from None
        raise


def _openai_key(settings: Settings, environ: Mapping[str, str]) -> str:
    from ollama_chatd.openai.address import api_key

    try:
        return api_key(settings.api_key_env, environ)
    except ValueError as error:
        raise OptionError("apiKeyEnv", str(error)) from None


def _openai(settings: Settings, where: HostChoice) -> llm.ChatBackend:
    from ollama_chatd.openai.client import OpenAIClient

    key = _openai_key(settings, os.environ)
    with _usable_ca_bundle():
        return OpenAIClient(
            where.url, api_key=key, headers=settings.headers, verify=settings.verify, stall_timeout=settings.stall_timeout
        )


@contextlib.contextmanager
def _usable_ca_bundle() -> Iterator[None]:
    try:
        yield
    except OSError as error:  # an unreadable or invalid caBundle
        raise OptionError("caBundle", f"`caBundle` cannot be used: {error}") from None


OLLAMA_API_KEY_ENV = "OLLAMA_API_KEY"  # sent as a Bearer token unless `headers` has an Authorization

_BACKENDS: dict[str, _Backend] = {
    "ollama": _Backend("Ollama", _ollama_address, _ollama),
    "openai": _Backend("OpenAI-compatible server", _openai_address, _openai),
}
