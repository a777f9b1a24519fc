"""OLLAMA_HOST parsing: ollama-python's `_parse_host` doctests, Go's envconfig table, and our extras."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ollama_chatd.ollama.host import DEFAULT_URL, HostChoice, InvalidHost, parse_host, resolve_host

V6 = "[0001:002:003:0004::1]"

# ollama-python ollama/_client.py `_parse_host` doctests, in their order.
OLLAMA_PYTHON_CASES = [
    (None, "http://127.0.0.1:11434"),
    ("", "http://127.0.0.1:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    (":56789", "http://127.0.0.1:56789"),
    ("1.2.3.4:56789", "http://1.2.3.4:56789"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://1.2.3.4:56789", "https://1.2.3.4:56789"),
    ("example.com", "http://example.com:11434"),
    ("example.com:56789", "http://example.com:56789"),
    ("http://example.com", "http://example.com:80"),
    ("https://example.com", "https://example.com:443"),
    ("https://example.com:56789", "https://example.com:56789"),
    ("example.com/", "http://example.com:11434"),
    ("example.com:56789/", "http://example.com:56789"),
    ("example.com/path", "http://example.com:11434/path"),
    ("example.com:56789/path", "http://example.com:56789/path"),
    ("https://example.com:56789/path", "https://example.com:56789/path"),
    ("example.com:56789/path/", "http://example.com:56789/path"),
    (V6, f"http://{V6}:11434"),
    (f"{V6}:56789", f"http://{V6}:56789"),
    (f"http://{V6}", f"http://{V6}:80"),
    (f"https://{V6}", f"https://{V6}:443"),
    (f"https://{V6}:56789", f"https://{V6}:56789"),
    (f"{V6}/", f"http://{V6}:11434"),
    (f"{V6}:56789/", f"http://{V6}:56789"),
    (f"{V6}/path", f"http://{V6}:11434/path"),
    (f"{V6}:56789/path", f"http://{V6}:56789/path"),
    (f"https://{V6}:56789/path", f"https://{V6}:56789/path"),
    (f"{V6}:56789/path/", f"http://{V6}:56789/path"),
]

# Go envconfig.Host() + ConnectableHost() table, as a client must connect.
# Where Go yields "http://:1234" we follow ollama-python (127.0.0.1), as the brief asks.
GO_CASES = [
    ("", "http://127.0.0.1:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    (":1234", "http://127.0.0.1:1234"),
    ("example.com:1234", "http://example.com:1234"),
    (":66000", "http://127.0.0.1:11434"),  # invalid port -> default port, like Go
    (":-1", "http://127.0.0.1:11434"),
    ("[::1]", "http://[::1]:11434"),
    ("::1", "http://[::1]:11434"),
    ("[::1]:1337", "http://[::1]:1337"),
    ('  "1.2.3.4"  ', "http://1.2.3.4:11434"),
    ("'1.2.3.4'", "http://1.2.3.4:11434"),
    (" 1.2.3.4 ", "http://1.2.3.4:11434"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://example.com/ollama", "https://example.com:443/ollama"),
    ("ollama.com", "https://ollama.com:443"),
]

# Wildcard listen addresses are rewritten to loopback (Go's ConnectableHost).
CONNECTABLE_CASES = [
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("0.0.0.0:4321", "http://127.0.0.1:4321"),
    ("https://0.0.0.0:4321", "https://127.0.0.1:4321"),
    ("[::]", "http://[::1]:11434"),
    ("[::]:4321", "http://[::1]:4321"),
    ("http://[::]:4321/base/", "http://[::1]:4321/base"),
    ("::", "http://[::1]:11434"),
]

OTHER_CASES = [
    ("   ", "http://127.0.0.1:11434"),
    ('""', "http://127.0.0.1:11434"),
    ("HTTPS://Example.COM", "https://example.com:443"),
    ("localhost", "http://localhost:11434"),
    ("http://", "http://127.0.0.1:80"),
    ("example.com:0", "http://example.com:11434"),
]


def _ids(cases: Sequence[tuple[str | None, str]]) -> list[str]:
    return [repr(value) for value, _ in cases]


@pytest.mark.parametrize(("value", "expected"), OLLAMA_PYTHON_CASES, ids=_ids(OLLAMA_PYTHON_CASES))
def test_matches_ollama_python(value: str | None, expected: str) -> None:
    assert parse_host(value) == expected


@pytest.mark.parametrize(("value", "expected"), GO_CASES, ids=_ids(GO_CASES))
def test_matches_go_envconfig(value: str, expected: str) -> None:
    assert parse_host(value) == expected


@pytest.mark.parametrize(("value", "expected"), CONNECTABLE_CASES, ids=_ids(CONNECTABLE_CASES))
def test_wildcard_addresses_become_loopback(value: str, expected: str) -> None:
    assert parse_host(value) == expected


@pytest.mark.parametrize(("value", "expected"), OTHER_CASES, ids=_ids(OTHER_CASES))
def test_other_inputs(value: str, expected: str) -> None:
    assert parse_host(value) == expected


@pytest.mark.parametrize("value", ["ftp://1.2.3.4", "[::1", "http://[::1/path"])
def test_unusable_values_raise_invalid_host(value: str) -> None:
    with pytest.raises(InvalidHost, match="Ollama address"):
        parse_host(value)


def test_invalid_host_is_a_value_error() -> None:
    assert issubclass(InvalidHost, ValueError)


# ---------------------------------------------------------------- resolve_host


def test_option_wins_over_environment() -> None:
    choice = resolve_host("example.com:1", {"OLLAMA_HOST": "1.2.3.4"})
    assert choice == HostChoice("http://example.com:1", "initializationOptions.ollamaHost")


def test_environment_used_when_option_missing() -> None:
    choice = resolve_host(None, {"OLLAMA_HOST": "0.0.0.0:9999"})
    assert choice == HostChoice("http://127.0.0.1:9999", "OLLAMA_HOST")


@pytest.mark.parametrize("option", ["", "   ", '""', "''"])
def test_blank_option_counts_as_unset(option: str) -> None:
    assert resolve_host(option, {"OLLAMA_HOST": "1.2.3.4"}) == HostChoice("http://1.2.3.4:11434", "OLLAMA_HOST")


@pytest.mark.parametrize("environ", [{}, {"OLLAMA_HOST": ""}, {"OLLAMA_HOST": "  "}, {"OLLAMA_HOST": '" "'}])
def test_default_when_nothing_set(environ: dict[str, str]) -> None:
    assert resolve_host(None, environ) == HostChoice(DEFAULT_URL, "default")
    assert resolve_host("  ", environ).source == "default"


def test_invalid_value_error_names_its_source() -> None:
    with pytest.raises(InvalidHost, match=r"^OLLAMA_HOST: "):
        resolve_host(None, {"OLLAMA_HOST": "ftp://x"})
    with pytest.raises(InvalidHost, match=r"^initializationOptions\.ollamaHost: "):
        resolve_host("[::1", {})
