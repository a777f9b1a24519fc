"""Turn an OLLAMA_HOST-style value into the base URL to connect to.

`parse_host` follows ollama-python's `_parse_host` (scheme-dependent default port,
IPv6 brackets, path kept without its trailing slash). Where ollama-python would crash
or connect somewhere useless, it follows the Go server's `envconfig.Host()` and
`ConnectableHost()` instead, because the server reads the same variable to decide
where it listens:

- whitespace and surrounding quotes are stripped (`OLLAMA_HOST="1.2.3.4"` in a unit file);
- a wildcard listen address (`0.0.0.0`, `[::]`) becomes the loopback address of its family;
- an unbracketed IPv6 address (`::1`) is bracketed;
- an invalid port (`:66000`, `:-1`) falls back to the scheme's default port;
- the bare value `ollama.com` means `https://ollama.com:443`.
"""

from __future__ import annotations

import ipaddress
import urllib.parse
from collections.abc import Mapping
from typing import Literal

import attrs

DEFAULT_PORT = 11434
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"

_SCHEME_DEFAULT_PORTS = {"http": 80, "https": 443}

HostSource = Literal["initializationOptions.ollamaHost", "OLLAMA_HOST", "default"]


class InvalidHost(ValueError):
    """The value cannot be read as an Ollama address."""


@attrs.frozen
class HostChoice:
    """The URL to use and where it came from (so errors can say what to fix)."""

    url: str
    source: HostSource


def parse_host(value: str | None) -> str:
    """Return `scheme://host:port[/path]` for an OLLAMA_HOST-style value.

    >>> parse_host(None)
    'http://127.0.0.1:11434'
    >>> parse_host(':56789')
    'http://127.0.0.1:56789'
    >>> parse_host('https://example.com:56789/path/')
    'https://example.com:56789/path'
    >>> parse_host('0.0.0.0')
    'http://127.0.0.1:11434'
    """
    text = _clean(value)
    if not text:
        return DEFAULT_URL
    if text == "ollama.com":
        return "https://ollama.com:443"

    scheme, default_port, hostport = _split_scheme(text)
    try:
        parts = urllib.parse.urlsplit(f"{scheme}://{_bracket_bare_ipv6(hostport)}")
    except ValueError as exc:  # e.g. "[::1" (unbalanced bracket)
        raise InvalidHost(f"cannot read {value!r} as an Ollama address: {exc}") from None

    host = _connectable(parts.hostname or "127.0.0.1")
    port = _port_or_none(parts) or default_port
    path = parts.path.strip("/")
    return f"{scheme}://{host}:{port}/{path}" if path else f"{scheme}://{host}:{port}"


def resolve_host(option: str | None, environ: Mapping[str, str]) -> HostChoice:
    """Pick the Ollama URL: the client's initialization option, then OLLAMA_HOST, then the default.

    A value that is empty once whitespace and quotes are stripped counts as unset.
    """
    candidates: tuple[tuple[str | None, HostSource], ...] = (
        (option, "initializationOptions.ollamaHost"),
        (environ.get("OLLAMA_HOST"), "OLLAMA_HOST"),
    )
    for value, source in candidates:
        if _clean(value):
            try:
                return HostChoice(parse_host(value), source)
            except InvalidHost as exc:
                raise InvalidHost(f"{source}: {exc}") from None
    return HostChoice(DEFAULT_URL, "default")


def _clean(value: str | None) -> str:
    # Same order as Go's envconfig.Var + Host(): trim spaces, trim quotes, trim spaces.
    return (value or "").strip().strip("\"'").strip()


def _split_scheme(text: str) -> tuple[str, int, str]:
    """Return (scheme, default port, the rest) for "scheme://rest" or a bare "rest"."""
    scheme, separator, hostport = text.partition("://")
    if not separator:
        return "http", DEFAULT_PORT, text
    scheme = scheme.lower()
    if scheme not in _SCHEME_DEFAULT_PORTS:
        raise InvalidHost(f"unsupported scheme {scheme!r} in Ollama address {text!r} (use http or https)")
    return scheme, _SCHEME_DEFAULT_PORTS[scheme], hostport


def _bracket_bare_ipv6(hostport: str) -> str:
    # urlsplit cannot tell "::1" from "host:port"; Go's Host() accepts it as an address.
    authority, slash, path = hostport.partition("/")
    try:
        ipaddress.IPv6Address(authority)
    except ValueError:
        return hostport
    return f"[{authority}]{slash}{path}"


def _connectable(hostname: str) -> str:
    """Rewrite a wildcard listen address to loopback and put IPv6 back in brackets."""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        return hostname  # a name, not an address
    if address.is_unspecified:
        hostname = "127.0.0.1" if address.version == 4 else "::1"
    return f"[{hostname}]" if address.version == 6 else hostname


def _port_or_none(parts: urllib.parse.SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:  # out of range or not a number: Go warns and uses the default
        return None
