"""Reading MCP server configurations: the shape other hosts write, and ACP's."""

from __future__ import annotations

import json

import pytest

from ollama_chatd.config import OptionError, parse_initialization_options
from ollama_chatd.mcp.config import HttpServer, StdioServer, from_acp, read_config_file
from ollama_chatd.mcp.host import exposed_name


def test_stdio_and_http_servers_are_read_in_order():
    options = parse_initialization_options({"mcpServers": {
        "git": {"command": "uvx", "args": ["mcp-server-git"], "env": {"GIT_DIR": "/r"}, "disabled": False},
        "tracker": {"type": "http", "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer t"}},
    }})
    assert options.mcp_servers == (
        StdioServer("git", "uvx", ("mcp-server-git",), {"GIT_DIR": "/r"}),
        HttpServer("tracker", "https://mcp.example.com/mcp", {"Authorization": "Bearer t"}),
    )


@pytest.mark.parametrize(("servers", "field", "says"), [
    ({"a": {"command": ""}}, "mcpServers.a.command", "non-empty string"),
    ({"a": {"command": "x", "env": {"K": 1}}}, "mcpServers.a.env", "string values"),
    ({"a": {"url": "ftp://host"}}, "mcpServers.a.url", "http:// or https://"),
    ({"a": {"type": "sse", "url": "http://h/sse"}}, "mcpServers.a.type", "not supported"),
    ({"a": {"args": []}}, "mcpServers.a", 'needs "command"'),
    (["a"], "mcpServers", "must be an object"),
])
def test_a_bad_server_fails_initialize_naming_it(servers, field, says):
    with pytest.raises(OptionError) as raised:
        parse_initialization_options({"mcpServers": servers})
    assert raised.value.field == field
    assert says in str(raised.value)


def test_acp_servers_become_the_same_configuration():
    servers = from_acp([
        {"name": "git", "command": "uvx", "args": ["mcp-server-git"], "env": [{"name": "K", "value": "v"}]},
        {"type": "http", "name": "tracker", "url": "http://127.0.0.1:9/mcp", "headers": [{"name": "X", "value": "1"}]},
    ])
    assert servers == (
        StdioServer("git", "uvx", ("mcp-server-git",), {"K": "v"}),
        HttpServer("tracker", "http://127.0.0.1:9/mcp", {"X": "1"}),
    )


def test_a_file_holds_a_claude_desktop_config_or_the_servers_alone(tmp_path):
    servers = {"time": {"command": "uvx", "args": ["mcp-server-time"]}}
    wrapped, bare = tmp_path / "a.json", tmp_path / "b.json"
    wrapped.write_text(json.dumps({"mcpServers": servers, "globalShortcut": ""}))
    bare.write_text(json.dumps(servers))
    assert read_config_file(wrapped) == read_config_file(bare) == servers


def test_an_unreadable_file_is_named(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        read_config_file(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="cannot read the MCP configuration"):
        read_config_file(tmp_path / "missing.json")


def test_tool_names_keep_only_what_every_model_server_accepts():
    assert exposed_name("time server", "get.current/time") == "time_server__get_current_time"
    assert exposed_name("everything", "get-sum") == "everything__get-sum"
    long_a, long_b = exposed_name("s", "x" * 80 + "a"), exposed_name("s", "x" * 80 + "b")
    assert len(long_a) == len(long_b) == 64 and long_a != long_b
