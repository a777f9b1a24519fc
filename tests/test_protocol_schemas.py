"""The wire contract's own checks: protocol/schemas/ and protocol/README.md agree.

- every schema is a valid draft 2020-12 schema, named and described;
- index.json and the schema files match one to one;
- what the daemon emits is closed (additionalProperties: false), what the
  client sends is open;
- every ```json example in protocol/README.md carries a `<!-- schema: NAME -->`
  marker and validates against that schema, and every schema has an example;
- negative cases fail, and `validate_outgoing` routes messages correctly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError

import protocol_schemas as ps

README = ps.SCHEMA_DIR.parent / "README.md"
SCHEMA_FILES = sorted(p.name for p in ps.SCHEMA_DIR.glob("*.json") if p.name != "index.json")
METHODS: dict[str, dict[str, str]] = ps.index()["methods"]


def _file_to_method() -> dict[str, tuple[str, str]]:
    """schema file name -> (method, "params" | "result")."""
    out = {}
    for method, entry in METHODS.items():
        for part in ("params", "result"):
            if part in entry:
                out[entry[part]] = (method, part)
    return out


FILE_TO_METHOD = _file_to_method()


def _emitted_by_daemon(file_name: str) -> bool:
    if file_name == ps.index()["error"]:
        return True
    if file_name == ps.index()["initializationOptions"]:
        return False
    method, part = FILE_TO_METHOD[file_name]
    sender = METHODS[method]["direction"]
    # params travel with the request/notification; results travel the other way.
    return (sender == "daemon-to-client") == (part == "params")


def _subschemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _subschemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _subschemas(value, f"{path}/{i}")


def _resolve(schema: dict, ref: str) -> dict:
    node: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


# --------------------------------------------------------------------------
# The schemas themselves


@pytest.mark.parametrize("file_name", SCHEMA_FILES)
def test_schema_is_valid_and_described(file_name: str) -> None:
    schema = ps.schema(file_name)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:ollama-chatd:protocol:{file_name.removesuffix('.json')}"
    assert schema["title"].strip()
    assert schema["description"].strip()
    assert schema["type"] == "object"
    # Self-contained: only local references, so any language's validator can load one file.
    for where, node in _subschemas(schema):
        if "$ref" in node:
            assert node["$ref"].startswith("#/"), f"{file_name} {where}: non-local $ref"


def test_index_and_files_match() -> None:
    idx = ps.index()
    referenced = {f for entry in METHODS.values() for k, f in entry.items() if k in ("params", "result")}
    referenced |= {idx["error"], idx["initializationOptions"]}
    assert referenced == set(SCHEMA_FILES)
    for method, entry in METHODS.items():
        assert entry["type"] in ("request", "notification"), method
        assert entry["direction"] in ("client-to-daemon", "daemon-to-client"), method
        assert "params" in entry, method
        assert ("result" in entry) == (entry["type"] == "request"), method


@pytest.mark.parametrize("file_name", SCHEMA_FILES)
def test_daemon_output_is_closed_client_input_is_open(file_name: str) -> None:
    schema = ps.schema(file_name)
    if _emitted_by_daemon(file_name):
        for where, node in _subschemas(schema):
            if "properties" in node and where.split("/")[-1] != "properties":
                # An object shape (not an if/then fragment that only narrows a property).
                is_fragment = "/if" in where or "/then" in where
                if is_fragment or node.get("additionalProperties") is False:
                    continue
                # A discriminated base (error data): closed by the variant each `then` selects.
                branches = node.get("allOf", [])
                assert branches, f"{file_name} {where} is open"
                for branch in branches:
                    target = _resolve(schema, branch["then"]["$ref"])
                    assert target.get("additionalProperties") is False, f"{file_name} {branch['then']} is open"
    else:
        assert "additionalProperties" not in schema, f"{file_name}: client input must tolerate unknown fields"


def test_chat_id_is_the_same_everywhere() -> None:
    def strip(node: dict) -> dict:
        return {k: v for k, v in node.items() if k != "description"}

    reference = strip(ps.schema("chat-start.params")["properties"]["chatId"])
    assert reference == {"type": "string", "minLength": 1, "maxLength": 128}
    seen = 0
    for file_name in SCHEMA_FILES:
        for where, node in _subschemas(ps.schema(file_name)):
            if where.endswith("/properties") and "chatId" in node:
                assert strip(node["chatId"]) == reference, f"{file_name} {where}"
                seen += 1
    assert seen >= 14


# --------------------------------------------------------------------------
# The README's examples

FENCE = re.compile(r"^```json[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*schema:\s*([A-Za-z0-9_./-]+)\s*-->\s*\Z")


def readme_examples() -> list[tuple[int, str | None, str]]:
    """(line, schema name or None when unmarked, json text) for every ```json block."""
    text = README.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        before = text[: m.start()].rstrip()
        marker = MARKER.search(before)
        out.append((line, marker.group(1) if marker else None, m.group(1)))
    return out


EXAMPLES = readme_examples()


def _check_example(name: str, message: Any) -> None:
    if name == "lsp":
        ps.validate_envelope(message)
        return
    file_name = f"{name}.json"
    assert file_name in SCHEMA_FILES, f"unknown schema {name!r}"
    if not (isinstance(message, dict) and "jsonrpc" in message):
        # A bare payload (not a whole message).
        ps._validate(file_name, message)
        return
    ps.validate_envelope(message)
    if file_name == ps.index()["error"]:
        assert "error" in message, "an error example must be an error response"
        ps.validate_error(message["error"])
    elif file_name == ps.index()["initializationOptions"]:
        assert message.get("method") == "initialize"
        ps.validate_params("initialize", message["params"])
        assert "initializationOptions" in message["params"]
    else:
        method, part = FILE_TO_METHOD[file_name]
        if part == "params":
            assert message.get("method") == method, f"a {name} example must be a {method} message"
            expect_id = METHODS[method]["type"] == "request"
            assert ("id" in message) == expect_id
            ps.validate_params(method, message["params"])
        else:
            assert "result" in message, f"a {name} example must be a response with a result"
            ps.validate_result(method, message["result"])


@pytest.mark.parametrize(
    ("line", "name", "body"), EXAMPLES, ids=[f"README:{line}:{name}" for line, name, _ in EXAMPLES]
)
def test_readme_example_validates(line: int, name: str | None, body: str) -> None:
    assert name is not None, f"README.md line {line}: ```json block without a <!-- schema: ... --> marker"
    message = json.loads(body)
    _check_example(name, message)


def test_readme_has_examples() -> None:
    assert len(EXAMPLES) >= 30


def test_every_schema_has_a_readme_example() -> None:
    names = {name for _, name, _ in EXAMPLES}
    missing = {f.removesuffix(".json") for f in SCHEMA_FILES} - names
    assert not missing, f"schemas without an example in protocol/README.md: {sorted(missing)}"


def test_readme_mentions_every_method_kind_and_code() -> None:
    text = README.read_text(encoding="utf-8")
    for method in METHODS:
        assert f"`{method}`" in text, method
    error = ps.schema("error")
    for kind in error["$defs"]["data"]["properties"]["kind"]["enum"]:
        assert f'"{kind}"' in text or f"`{kind}`" in text, kind
    for code in error["properties"]["code"]["enum"]:
        assert f"| {code} |" in text, code
    for reason in ps.schema("chat-start.result")["properties"]["stopReason"]["enum"]:
        assert f'"{reason}"' in text, reason
    for status in ps.schema("chat-toolCall.params")["properties"]["status"]["enum"]:
        assert f"`{status}`" in text or f'"{status}"' in text, status
    for tool in ("read_file", "list_directory", "search_text", "find_files", "write_file", "edit_file"):
        assert f"| `{tool}` |" in text, tool
    for state in ps.schema("chat-status.params")["properties"]["state"]["enum"]:
        assert f'| `"{state}"` |' in text, state
    for option in ps.schema("initializationOptions")["properties"]:
        assert f"| `{option}` |" in text, option
    for field in ps.schema("chat-models.result")["$defs"]["model"]["properties"]:
        assert f"| `{field}` |" in text, field
    for field in ps.schema("chat-start.result")["properties"]["usage"]["properties"]:
        assert f"| `usage.{field}` |" in text, field
    for field in ps.schema("chat-start.params")["properties"]:
        assert f"| `{field}` |" in text, field
    for name in ("chat-list.params", "chat-history.result", "chat-rename.params", "chat-delete.result"):
        for field in ps.schema(name)["properties"]:
            assert f"`{field}`" in text, (name, field)
    for field in ps.schema("chat-list.result")["$defs"]["chat"]["properties"]:
        assert f"| `{field}` |" in text, field
    history_message = ps.schema("chat-history.result")["$defs"]["message"]
    for field in history_message["properties"]:
        assert f"| `{field}` |" in text, field
    for status in history_message["properties"]["status"]["enum"]:
        assert f'| `"{status}"` |' in text, status


def test_a_bad_example_is_caught() -> None:
    # The README check is only worth something if it can fail.
    with pytest.raises(ValidationError):
        _check_example(
            "chat-token.params",
            {"jsonrpc": "2.0", "method": "chat/token", "params": {"chatId": "c", "kind": "content", "text": "x"}},
        )
    with pytest.raises(AssertionError):
        _check_example("chat-start.params", {"jsonrpc": "2.0", "method": "chat/cancel", "params": {"chatId": "c"}})


# --------------------------------------------------------------------------
# Negative cases

GOOD_START = {"chatId": "c1", "prompt": "hi"}
GOOD_TOKEN = {"chatId": "c1", "kind": "content", "text": "x", "seq": 0}
GOOD_RESULT = {
    "chatId": "c1",
    "stopReason": "end_turn",
    "message": {"role": "assistant", "content": "hi"},
    "usage": {"promptTokens": 1, "completionTokens": 2, "totalDurationMs": 3.5, "contextTokens": 3, "contextLimit": 8192},
    "rules": None,
}
GOOD_CALL = {"chatId": "c1", "callId": "k1", "name": "read_file", "arguments": {"path": "a"}, "status": "pending"}
GOOD_STATUS = {"chatId": "c1", "state": "waiting", "message": "waiting for tiny"}
GOOD_MODEL = {
    "name": "qwen3:8b",
    "sizeBytes": 5225388164,
    "family": "qwen3",
    "parameterSize": "8.2B",
    "quantization": "Q4_K_M",
    "capabilities": ["completion", "thinking", "tools"],
    "contextLength": 40960,
}
UNKNOWN_MODEL = {
    "name": "old:latest",
    "sizeBytes": None,
    "family": None,
    "parameterSize": None,
    "quantization": None,
    "capabilities": [],
    "contextLength": None,
}


GOOD_CHAT = {
    "chatId": "c1",
    "title": "Why is the sky blue?",
    "model": "qwen3:8b",
    "createdAt": "2026-11-25T13:40:02.123Z",
    "updatedAt": "2026-11-25T13:40:09.004Z",
    "turns": 1,
    "cursor": "1795614009.004:1",
}
GOOD_HISTORY = {
    "chatId": "c1",
    "title": None,
    "model": None,
    "messages": [
        {"role": "system", "content": "be brief", "createdAt": "2026-11-25T13:40:02.123Z"},
        {"role": "user", "content": "", "createdAt": "2026-11-25T13:40:02.123Z"},
        {
            "role": "assistant",
            "content": "",
            "createdAt": "2026-11-25T13:40:03.000Z",
            "thinking": "t",
            "toolCalls": [{"name": "read_file", "arguments": {"path": "a"}, "id": "call_1"}, {"name": "x", "arguments": {}}],
        },
        {"role": "tool", "content": "1\ta", "createdAt": "2026-11-25T13:40:03.100Z", "toolName": "read_file"},
        {"role": "assistant", "content": "partial", "createdAt": "2026-11-25T13:40:04.000Z", "status": "interrupted"},
    ],
}
USER_MESSAGE = {"role": "user", "content": "hi", "createdAt": "2026-11-25T13:40:02.123Z"}
ASSISTANT_MESSAGE = {"role": "assistant", "content": "hi", "createdAt": "2026-11-25T13:40:02.123Z"}


def _without(d: dict, key: str) -> dict:
    return {k: v for k, v in d.items() if k != key}


def _history_with(message: dict) -> dict:
    return {**GOOD_HISTORY, "messages": [message]}


NEGATIVE = [
    ("chat/start", "params", {**GOOD_START, "chatId": "x" * 129}),
    ("chat/start", "params", {**GOOD_START, "chatId": ""}),
    ("chat/start", "params", _without(GOOD_START, "prompt")),
    ("chat/start", "params", {**GOOD_START, "think": "extreme"}),
    ("chat/start", "params", {**GOOD_START, "think": 1}),
    ("chat/start", "params", {**GOOD_START, "model": ""}),
    ("chat/start", "params", {**GOOD_START, "options": []}),
    ("chat/start", "params", {**GOOD_START, "images": "aGVsbG8="}),
    ("chat/start", "params", {**GOOD_START, "images": [1]}),
    ("chat/token", "params", {**GOOD_TOKEN, "kind": "foo"}),
    ("chat/token", "params", _without(GOOD_TOKEN, "seq")),
    ("chat/token", "params", {**GOOD_TOKEN, "seq": -1}),
    ("chat/token", "params", {**GOOD_TOKEN, "text": ""}),
    ("chat/token", "params", {**GOOD_TOKEN, "extra": 1}),
    ("chat/start", "result", {**GOOD_RESULT, "stopReason": "stop"}),
    ("chat/start", "result", {**GOOD_RESULT, "message": {"role": "user", "content": "hi"}}),
    ("chat/start", "result", {**GOOD_RESULT, "usage": {"promptTokens": -1, "completionTokens": 0, "totalDurationMs": 0}}),
    ("chat/start", "result", {**GOOD_RESULT, "usage": {"promptTokens": 1.5, "completionTokens": 0, "totalDurationMs": 0}}),
    ("chat/start", "result", {**GOOD_RESULT, "done": False}),
    ("chat/start", "result", _without(GOOD_RESULT, "rules")),
    ("chat/start", "result", {**GOOD_RESULT, "rules": 1}),
    ("chat/start", "result", {**GOOD_RESULT, "usage": _without(GOOD_RESULT["usage"], "contextTokens")}),
    ("chat/start", "result", {**GOOD_RESULT, "usage": _without(GOOD_RESULT["usage"], "contextLimit")}),
    ("chat/start", "result", {**GOOD_RESULT, "usage": {**GOOD_RESULT["usage"], "contextLimit": -1}}),
    ("chat/start", "result", {**GOOD_RESULT, "usage": {**GOOD_RESULT["usage"], "contextTokens": None}}),
    ("chat/status", "params", {**GOOD_STATUS, "state": "loading"}),
    ("chat/status", "params", {**GOOD_STATUS, "message": ""}),
    ("chat/status", "params", _without(GOOD_STATUS, "message")),
    ("chat/status", "params", {**GOOD_STATUS, "seq": 0}),
    ("chat/models", "params", {"refresh": "yes"}),
    ("chat/models", "result", {}),
    ("chat/models", "result", {"models": [_without(GOOD_MODEL, "contextLength")]}),
    ("chat/models", "result", {"models": [{**GOOD_MODEL, "capabilities": None}]}),
    ("chat/models", "result", {"models": [{**GOOD_MODEL, "capabilities": ["tools", "tools"]}]}),
    ("chat/models", "result", {"models": [{**GOOD_MODEL, "sizeBytes": -1}]}),
    ("chat/models", "result", {"models": [{**GOOD_MODEL, "name": ""}]}),
    ("chat/models", "result", {"models": [{**GOOD_MODEL, "digest": "sha256:0"}]}),
    ("chat/cancel", "params", {}),
    ("chat/cancel", "result", {"cancelled": "yes"}),
    ("chat/toolCall", "params", {**GOOD_CALL, "status": "done"}),
    ("chat/toolCall", "params", {**GOOD_CALL, "status": "failed"}),
    ("chat/toolCall", "params", {**GOOD_CALL, "output": "too early"}),
    ("chat/toolCall", "params", {**GOOD_CALL, "status": "completed", "output": "x" * 2001}),
    ("chat/toolCall", "params", {**GOOD_CALL, "status": "running", "error": "no"}),
    ("chat/toolCall", "params", {**GOOD_CALL, "arguments": "{\"path\": \"a\"}"}),
    ("chat/requestPermission", "params", {**_without(GOOD_CALL, "status"), "title": "Edit a"}),
    ("chat/requestPermission", "result", {"decision": "maybe"}),
    ("chat/requestPermission", "result", {}),
    ("chat/list", "params", {"limit": 0}),
    ("chat/list", "params", {"limit": 201}),
    ("chat/list", "params", {"limit": 2.5}),
    ("chat/list", "params", {"limit": "5"}),
    ("chat/list", "params", {"before": 5}),
    ("chat/list", "result", {}),
    ("chat/list", "result", {"chats": [_without(GOOD_CHAT, "cursor")]}),
    ("chat/list", "result", {"chats": [_without(GOOD_CHAT, "title")]}),
    ("chat/list", "result", {"chats": [{**GOOD_CHAT, "cursor": ""}]}),
    ("chat/list", "result", {"chats": [{**GOOD_CHAT, "turns": -1}]}),
    ("chat/list", "result", {"chats": [{**GOOD_CHAT, "createdAt": "2026-11-25T13:40:02Z"}]}),
    ("chat/list", "result", {"chats": [{**GOOD_CHAT, "updatedAt": "2026-11-25T13:40:02.123+00:00"}]}),
    ("chat/list", "result", {"chats": [{**GOOD_CHAT, "createdAt": 1795614002.123}]}),
    ("chat/list", "result", {"chats": [{**GOOD_CHAT, "system": "be brief"}]}),
    ("chat/list", "result", {"chats": [GOOD_CHAT], "nextCursor": "x"}),
    ("chat/history", "params", {}),
    ("chat/history", "params", {"chatId": ""}),
    ("chat/history", "result", _without(GOOD_HISTORY, "title")),
    ("chat/history", "result", _without(GOOD_HISTORY, "messages")),
    ("chat/history", "result", _history_with({**USER_MESSAGE, "role": "model"})),
    ("chat/history", "result", _history_with(_without(USER_MESSAGE, "createdAt"))),
    ("chat/history", "result", _history_with({**USER_MESSAGE, "thinking": None})),
    ("chat/history", "result", _history_with({**USER_MESSAGE, "images": ["aGk="]})),
    ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "status": "complete"})),
    ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "status": None})),
    ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "thinking": ""})),
    ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "toolCalls": []})),
    ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "toolCalls": [{"name": "read_file"}]})),
    ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "toolCalls": [{"name": "a", "arguments": "{}"}]})),
    ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "toolCalls": [{"name": "a", "arguments": {}, "callId": "k"}]})),
    ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "toolName": "read_file"})),
    ("chat/history", "result", _history_with({**USER_MESSAGE, "status": "cancelled"})),
    ("chat/history", "result", _history_with({**USER_MESSAGE, "toolCalls": [{"name": "a", "arguments": {}}]})),
    ("chat/history", "result", _history_with({**USER_MESSAGE, "role": "tool", "thinking": "t"})),
    ("chat/rename", "params", {"chatId": "c1"}),
    ("chat/rename", "params", {"chatId": "c1", "title": ""}),
    ("chat/rename", "params", {"chatId": "c1", "title": "   "}),
    ("chat/rename", "params", {"chatId": "c1", "title": None}),
    ("chat/rename", "result", {"chatId": "c1"}),
    ("chat/rename", "result", {"chatId": "c1", "title": "x", "updatedAt": "2026-11-25T13:40:02.123Z"}),
    ("chat/delete", "params", {"chatId": "x" * 129}),
    ("chat/delete", "result", {"deleted": "yes"}),
    ("chat/delete", "result", {}),
]


@pytest.mark.parametrize(("method", "part", "instance"), NEGATIVE)
def test_negative_cases_fail(method: str, part: str, instance: Any) -> None:
    check = ps.validate_params if part == "params" else ps.validate_result
    with pytest.raises(ValidationError):
        check(method, instance)


POSITIVE = [
    ("chat/start", "params", {**GOOD_START, "chatId": "é" * 128, "think": "high", "futureField": [1]}),
    ("chat/start", "params", {**GOOD_START, "prompt": "", "think": False, "options": {}}),
    ("chat/start", "result", {**GOOD_RESULT, "stopReason": "max_tool_rounds"}),
    ("chat/start", "result", {**GOOD_RESULT, "rules": "AGENTS.md"}),
    ("chat/toolCall", "params", {**GOOD_CALL, "status": "failed", "error": "nope"}),
    ("chat/toolCall", "params", {**GOOD_CALL, "status": "denied"}),
    ("chat/toolCall", "params", {**GOOD_CALL, "status": "completed", "output": "x" * 2000}),
    ("chat/requestPermission", "result", {"decision": "allow_always", "remember": True}),
    ("chat/start", "params", {**GOOD_START, "images": ["aGVsbG8="]}),
    ("chat/start", "params", {**GOOD_START, "images": []}),
    ("chat/start", "result", {**GOOD_RESULT, "usage": {**GOOD_RESULT["usage"], "contextTokens": 0, "contextLimit": 0}}),
    ("chat/status", "params", {**GOOD_STATUS, "state": "no_tools"}),
    ("chat/models", "params", {}),
    ("chat/models", "params", {"refresh": False, "futureField": 1}),
    ("chat/models", "result", {"models": []}),
    ("chat/models", "result", {"models": [GOOD_MODEL, UNKNOWN_MODEL]}),
    ("chat/list", "params", {}),
    ("chat/list", "params", {"limit": 1, "before": "1795614009.004:1", "futureField": True}),
    ("chat/list", "params", {"limit": 200}),
    ("chat/list", "result", {"chats": []}),
    ("chat/list", "result", {"chats": [GOOD_CHAT, {**GOOD_CHAT, "chatId": "c2", "title": None, "model": None, "turns": 0}]}),
    ("chat/history", "params", {"chatId": "c1", "futureField": 1}),
    ("chat/history", "result", GOOD_HISTORY),
    ("chat/history", "result", {**GOOD_HISTORY, "messages": []}),
    *[
        ("chat/history", "result", _history_with({**ASSISTANT_MESSAGE, "status": status}))
        for status in ("cancelled", "failed", "interrupted", "streaming")
    ],
    ("chat/rename", "params", {"chatId": "c1", "title": "  Padded  "}),
    ("chat/rename", "result", {"chatId": "c1", "title": "Renamed"}),
    ("chat/delete", "params", {"chatId": "c1"}),
    ("chat/delete", "result", {"deleted": False}),
]


@pytest.mark.parametrize(("method", "part", "instance"), POSITIVE)
def test_positive_cases_pass(method: str, part: str, instance: Any) -> None:
    (ps.validate_params if part == "params" else ps.validate_result)(method, instance)


NEGATIVE_ERRORS = [
    {"code": -32004, "message": "busy", "data": {"kind": "chat_busy"}},
    {"code": -32004, "message": "busy"},
    {"code": -32002, "message": "x", "data": {"kind": "ollama_unreachable", "address": "http://h"}},
    {"code": -32001, "message": "x", "data": {"kind": "ollama_unreachable", "address": "http://h", "port": 1}},
    {"code": -32003, "message": "x", "data": {"kind": "upstream_error"}},
    {"code": -32003, "message": "x", "data": {"kind": "upstream_error", "status": None, "partial": {"thinking": "t"}}},
    {"code": -32602, "message": "x", "data": {"kind": "foo"}},
    {"code": -32602, "message": "x"},
    {"code": -32800, "message": "x", "data": {"kind": "cancelled"}},
    {"code": -32601, "message": "x", "data": {"traceback": []}},
    {"code": -32603, "message": "x", "data": {"kind": "internal_error", "traceback": ["..."]}},
    {"code": -32000, "message": "x"},
    {"code": -32600, "message": ""},
    {"code": -32600, "message": "x", "extra": True},
]


@pytest.mark.parametrize("error", NEGATIVE_ERRORS)
def test_negative_errors_fail(error: dict) -> None:
    with pytest.raises(ValidationError):
        ps.validate_error(error)


@pytest.mark.parametrize(
    "error",
    [
        {"code": -32601, "message": "Method Not Found: x"},
        {"code": -32603, "message": "bug"},
        {"code": -32800, "message": "Request cancelled."},
        {"code": -32602, "message": "x", "data": {"kind": "invalid_params"}},
        {"code": -32003, "message": "x", "data": {"kind": "upstream_error", "status": None, "partial": {"content": ""}}},
    ],
)
def test_errors_pass(error: dict) -> None:
    ps.validate_error(error)


@pytest.mark.parametrize(
    "options",
    [
        {"maxToolRounds": 0},
        {"maxToolRounds": "5"},
        {"autoApprove": "write_file"},
        {"model": ""},
        [],
        {"maxContext": 0},
        {"maxContext": 4096.5},
        {"stallTimeoutSeconds": 0},
        {"stallTimeoutSeconds": "120"},
        {"headers": {"X-Team": 1}},
        {"headers": ["Authorization: Bearer x"]},
        {"caBundle": 5},
        {"stateDir": 5},
        {"stateDir": ""},
    ],
)
def test_negative_initialization_options_fail(options: Any) -> None:
    with pytest.raises(ValidationError):
        ps.validate_initialization_options(options)


def test_initialization_options_tolerate_unknown_keys() -> None:
    ps.validate_initialization_options({"someFutureOption": {"x": 1}, "maxToolRounds": 1})
    ps.validate_initialization_options(
        {"maxContext": 1, "stallTimeoutSeconds": 0.5, "headers": {"Authorization": "Bearer x"}, "caBundle": "/ca.pem"}
    )
    ps.validate_initialization_options({"stallTimeoutSeconds": 300, "headers": {}})
    ps.validate_initialization_options({"stateDir": "~/chats"})
    ps.validate_params("initialize", {"processId": None, "capabilities": {}})
    ps.validate_params("initialize", {"processId": None, "capabilities": {}, "initializationOptions": None})


# --------------------------------------------------------------------------
# validate_outgoing

SENT = {
    1: "chat/start",
    2: "chat/cancel",
    3: "chat/models",
    4: "chat/list",
    5: "chat/history",
    6: "chat/rename",
    7: "chat/delete",
    0: "initialize",
    "s": "shutdown",
}


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "chat/token", "params": GOOD_TOKEN},
        {"jsonrpc": "2.0", "method": "chat/toolCall", "params": GOOD_CALL},
        {
            "jsonrpc": "2.0",
            "id": "p1",
            "method": "chat/requestPermission",
            "params": {**_without(GOOD_CALL, "status"), "title": "Edit a", "diff": ""},
        },
        {"jsonrpc": "2.0", "id": 1, "result": GOOD_RESULT},
        {"jsonrpc": "2.0", "id": 2, "result": {"cancelled": False}},
        {"jsonrpc": "2.0", "method": "chat/status", "params": GOOD_STATUS},
        {"jsonrpc": "2.0", "id": 3, "result": {"models": [GOOD_MODEL, UNKNOWN_MODEL]}},
        {"jsonrpc": "2.0", "id": 4, "result": {"chats": [GOOD_CHAT]}},
        {"jsonrpc": "2.0", "id": 5, "result": GOOD_HISTORY},
        {"jsonrpc": "2.0", "id": 6, "result": {"chatId": "c1", "title": "Renamed"}},
        {"jsonrpc": "2.0", "id": 7, "result": {"deleted": True}},
        {"jsonrpc": "2.0", "id": 7, "error": {"code": -32004, "message": "busy", "data": {"kind": "chat_busy", "chatId": "c1"}}},
        {"jsonrpc": "2.0", "id": 0, "result": {"capabilities": {}, "serverInfo": {"name": "ollama-chatd"}}},
        {"jsonrpc": "2.0", "method": "window/showMessage", "params": {"type": 2, "message": "ollama-chatd: Chat history cannot be saved"}},
        {"jsonrpc": "2.0", "id": "s", "result": None},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32800, "message": "Request cancelled."}},
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error."}},
        {"jsonrpc": "2.0", "id": 77, "error": {"code": -32601, "message": "Method not found: x"}},
        {"jsonrpc": "2.0", "method": "window/logMessage", "params": {"type": 3, "message": "hi"}},
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": "p1"}},
        {"jsonrpc": "2.0", "id": "e1", "method": "workspace/applyEdit", "params": {"edit": {}}},
    ],
)
def test_validate_outgoing_accepts(message: dict) -> None:
    ps.validate_outgoing(message, SENT)


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "chat/token", "params": {**GOOD_TOKEN, "kind": "foo"}},
        {"jsonrpc": "2.0", "method": "chat/token"},
        {"jsonrpc": "2.0", "id": 5, "method": "chat/token", "params": GOOD_TOKEN},
        {"jsonrpc": "2.0", "method": "chat/tokens", "params": GOOD_TOKEN},
        {"jsonrpc": "2.0", "id": 9, "method": "chat/start", "params": GOOD_START},
        {"jsonrpc": "2.0", "method": "chat/requestPermission", "params": {}},
        {"jsonrpc": "2.0", "id": 1, "result": {**GOOD_RESULT, "stopReason": "stop"}},
        {"jsonrpc": "2.0", "id": 2, "result": GOOD_RESULT},
        {"jsonrpc": "2.0", "id": 7, "method": "chat/status", "params": GOOD_STATUS},
        {"jsonrpc": "2.0", "method": "chat/status", "params": {**GOOD_STATUS, "state": "thinking"}},
        {"jsonrpc": "2.0", "id": 8, "method": "chat/models", "params": {}},
        {"jsonrpc": "2.0", "id": 3, "result": {"models": [_without(GOOD_MODEL, "family")]}},
        {"jsonrpc": "2.0", "id": 3, "result": GOOD_RESULT},
        {"jsonrpc": "2.0", "id": 4, "result": {"chats": [_without(GOOD_CHAT, "cursor")]}},
        {"jsonrpc": "2.0", "id": 4, "result": {"models": []}},
        {"jsonrpc": "2.0", "id": 5, "result": _history_with({**ASSISTANT_MESSAGE, "status": "complete"})},
        {"jsonrpc": "2.0", "id": 6, "result": {"chatId": "c1"}},
        {"jsonrpc": "2.0", "id": 7, "result": {"cancelled": True}},
        {"jsonrpc": "2.0", "id": 9, "method": "chat/list", "params": {}},
        {"jsonrpc": "2.0", "method": "chat/history", "params": {"chatId": "c1"}},
        {"jsonrpc": "2.0", "id": 42, "result": GOOD_RESULT},
        {"jsonrpc": "2.0", "id": None, "result": None},
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32602, "message": "x", "data": {"kind": "invalid_params"}}},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32004, "message": "busy"}},
        {"jsonrpc": "2.0", "id": 1, "result": GOOD_RESULT, "error": {"code": -32603, "message": "x"}},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "1.0", "id": 1, "result": GOOD_RESULT},
        {"id": 1, "result": GOOD_RESULT},
        {"jsonrpc": "2.0", "id": True, "result": None},
        {"jsonrpc": "2.0", "id": 1, "result": GOOD_RESULT, "extra": 1},
        [{"jsonrpc": "2.0", "id": 1, "result": GOOD_RESULT}],
    ],
)
def test_validate_outgoing_rejects(message: Any) -> None:
    with pytest.raises(ValidationError):
        ps.validate_outgoing(message, SENT)


@pytest.mark.parametrize(
    "method", sorted(m for m, e in METHODS.items() if "result" in e and e["direction"] == "client-to-daemon")
)
def test_validate_outgoing_checks_the_result_of_every_client_request(method: str) -> None:
    # Adding a method to index.json is enough for the end-to-end tests to check its results.
    with pytest.raises(ValidationError):
        ps.validate_outgoing({"jsonrpc": "2.0", "id": 1, "result": {"surely": "not this"}}, {1: method})


def test_unknown_method_lookups() -> None:
    with pytest.raises(ps.UnknownMethodError):
        ps.validate_params("chat/nope", {})
    with pytest.raises(ps.UnknownMethodError):
        ps.validate_result("chat/token", {})
    assert ps.has_schema("chat/start", "result")
    assert ps.has_schema("chat/models", "result")
    for method in ("chat/list", "chat/history", "chat/rename", "chat/delete"):
        assert ps.has_schema(method, "params") and ps.has_schema(method, "result"), method
    assert not ps.has_schema("chat/token", "result")
    assert not ps.has_schema("chat/status", "result")
    assert not ps.has_schema("initialize")


def test_schemas_load_once() -> None:
    assert ps.validator("chat-start.params") is ps.validator("chat-start.params")
    assert Path(ps.SCHEMA_DIR).is_dir()
