"""Where the OpenAI-compatible server is, and its API key: read from the options and
the environment without loading httpx (the daemon checks them before it answers
`initialize`)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from ..ollama.host import HostChoice

DEFAULT_BASE_URL = "http://127.0.0.1:8080/v1"  # llama-server's default port
BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"


def resolve_base_url(option: str | None, environ: Mapping[str, str]) -> HostChoice:
    """The `baseUrl` option, else OPENAI_BASE_URL, else llama-server's default address.

    Raises ValueError naming the setting when its value is not an http(s) URL.
    """
    candidates = ((option, "initializationOptions.baseUrl"), (environ.get(BASE_URL_ENV), BASE_URL_ENV))
    for value, source in candidates:
        if value and value.strip():
            try:
                return HostChoice(checked_base_url(value), source)  # type: ignore[arg-type]
            except ValueError as error:
                raise ValueError(f"{source}: {error}") from None
    return HostChoice(DEFAULT_BASE_URL, "default")


def api_key(variable: str | None, environ: Mapping[str, str]) -> str:
    """The key from the variable `apiKeyEnv` names, else OPENAI_API_KEY ('' for none).

    Raises ValueError when `apiKeyEnv` names a variable that is not set: the user meant a key.
    """
    if variable:
        if not environ.get(variable, "").strip():
            raise ValueError(
                f"`apiKeyEnv` names the environment variable {variable}, which is not set where the daemon runs; "
                "set it in the environment the editor starts the daemon in"
            )
        return environ[variable].strip()
    return environ.get(API_KEY_ENV, "").strip()


def checked_base_url(url: str) -> str:
    """`url` without surrounding spaces and trailing slash; ValueError if it is not http(s)."""
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL; give the server's API base, e.g. {DEFAULT_BASE_URL}")
    return url.rstrip("/")
