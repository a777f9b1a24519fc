"""Which MCP servers to connect to, read from the shape other MCP hosts use.

    {"<name>": {"command": "...", "args": [...], "env": {...}}}   a server we start (stdio)
    {"<name>": {"url": "https://...", "headers": {...}}}          a running server (streamable HTTP)

Every problem is reported with the path of the offending value
(`mcpServers.github.args`) and what would be right, since the user typed it.
Keys other hosts add (`disabled`, `alwaysAllow`, ...) are logged and ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from ollama_chatd.structuring import FieldError

logger = logging.getLogger(__name__)

_STDIO_KEYS = {"command", "args", "env", "type"}
_HTTP_KEYS = {"url", "headers", "type"}
_HTTP_TYPES = {"http", "streamable-http", "streamableHttp"}


@attrs.frozen
class StdioServer:
    """A server the daemon starts and speaks to over the process's stdin/stdout."""

    name: str
    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class HttpServer:
    """A running server reached over MCP's streamable HTTP transport."""

    name: str
    url: str
    headers: Mapping[str, str] = attrs.field(factory=dict)


ServerConfig = StdioServer | HttpServer


def parse_mcp_servers(raw: Any, where: str = "mcpServers") -> tuple[ServerConfig, ...]:
    """The servers of an `mcpServers` object; raises FieldError naming the bad value."""
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise FieldError(where, 'must be an object of server names to {"command": ...} or {"url": ...}')
    return tuple(_server(str(name), spec, f"{where}.{name}") for name, spec in raw.items())


def read_config_file(path: Path) -> dict[str, Any]:
    """The `mcpServers` object of a JSON file, checked: the file holds
    `{"mcpServers": {...}}` (as Claude Desktop and Cursor write it) or that object
    alone. Raises ValueError naming the file and the problem."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"cannot read the MCP configuration {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ValueError(f"the MCP configuration {path} is not valid JSON: {error}") from None
    if isinstance(data, dict) and "mcpServers" in data:
        data = data["mcpServers"]
    try:
        parse_mcp_servers(data)
    except FieldError as error:
        raise ValueError(f"{path}: {error}") from None
    return data


def _server(name: str, spec: Any, where: str) -> ServerConfig:
    if not name:
        raise FieldError(where, "needs a name: the key becomes the prefix of its tools' names")
    if not isinstance(spec, Mapping):
        raise FieldError(where, 'must be an object: {"command": "...", "args": [...]} or {"url": "..."}')
    kind = spec.get("type")
    if kind == "sse":
        raise FieldError(f"{where}.type", 'is "sse", which is not supported: use the server\'s streamable HTTP endpoint')
    if "url" in spec and kind in (None, *_HTTP_TYPES):
        _ignore_unknown(spec, _HTTP_KEYS, where)
        return HttpServer(name, _url(spec["url"], f"{where}.url"), _strings(spec.get("headers"), f"{where}.headers"))
    if "command" in spec and kind in (None, "stdio"):
        _ignore_unknown(spec, _STDIO_KEYS, where)
        return StdioServer(
            name,
            _text(spec["command"], f"{where}.command"),
            tuple(_args(spec.get("args"), f"{where}.args")),
            _strings(spec.get("env"), f"{where}.env"),
        )
    raise FieldError(where, 'needs "command" (a server to start) or "url" (a running streamable HTTP server)')


def _ignore_unknown(spec: Mapping[str, Any], known: set[str], where: str) -> None:
    if unknown := sorted(set(spec) - known):
        logger.info("%s: ignoring %s", where, ", ".join(unknown))


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError(where, f"must be a non-empty string, got {json.dumps(value)}")
    return value


def _args(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FieldError(where, 'must be a list of strings, e.g. ["-y", "@modelcontextprotocol/server-everything"]')
    return value


def _strings(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise FieldError(where, 'must be an object of names to string values, e.g. {"API_TOKEN": "..."}')
    return dict(value)


def _url(value: Any, where: str) -> str:
    url = _text(value, where)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FieldError(where, f"must be an http:// or https:// address, got {url!r}")
    return url


def from_acp(servers: Any) -> tuple[ServerConfig, ...]:
    """The servers of ACP's `session/new` `mcpServers`: a list of
    `{"name", "command", "args", "env": [{"name", "value"}]}` (stdio) and
    `{"type": "http", "name", "url", "headers": [{"name", "value"}]}`, as JSON."""
    if not isinstance(servers, list):
        raise FieldError("mcpServers", "must be a list of MCP servers")
    by_name = {}
    for index, server in enumerate(servers):
        where = f"mcpServers[{index}]"
        if not isinstance(server, Mapping) or not isinstance(server.get("name"), str):
            raise FieldError(where, 'must be an object with a "name"')
        spec = {key: value for key, value in server.items() if key != "name"}
        for key in ("env", "headers"):
            if key in spec:
                spec[key] = _pairs(spec[key], f"{where}.{key}")
        by_name[server["name"]] = spec
    return parse_mcp_servers(by_name)


def _pairs(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, list) or not all(isinstance(item, Mapping) and "name" in item for item in value):
        raise FieldError(where, 'must be a list of {"name": ..., "value": ...}')
    return {item["name"]: item.get("value") for item in value}
