"""`initialize` is answered before pygls is loaded (rpc.startup), and that early
answer is the one pygls' own path gives: same params accepted, same result, same
position encoding in effect, and never a second answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fake_ollama import FakeOllama, Reply
from harness import Daemon
from ollama_chatd.app import open_workspace
from ollama_chatd.config import ServeOptions
from ollama_chatd.rpc import startup
from ollama_chatd.rpc.dispatch import Dispatcher
from ollama_chatd.rpc.server import create_server

# ---------------------------------------------------------------- the two paths, in process


class _Collected:
    """Stands for stdout: pygls and the dispatcher write framed bytes here."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def messages(self) -> list[dict[str, Any]]:
        found, rest = [], self.data
        while rest:
            head, _, rest = rest.partition(b"\r\n\r\n")
            length = int(head.split(b"\r\n")[0].split(b":")[1])
            found.append(json.loads(rest[:length]))
            rest = rest[length:]
        return found


def _request(params: Any, msg_id: int | str = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "initialize", "params": params}


def early(message: dict[str, Any]) -> dict[str, Any] | None:
    answer = startup.early_answer(message)
    return None if answer is None else _Collected.messages(_with(answer))[0]


def _with(data: bytes) -> _Collected:
    collected = _Collected()
    collected.write(data)
    return collected


async def _through_pygls(message: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """pygls' answer to `message`, and the position encoding its workspace then uses."""
    server = create_server(ServeOptions(in_memory=True), open_workspace)
    out = _Collected()
    server.protocol.set_writer(out)
    Dispatcher(server.protocol, out, lambda: server.initialized).handle(json.dumps(message).encode())
    try:
        [answer] = out.messages()
        encoding = server.workspace.position_encoding if "result" in answer else None
        return answer, encoding
    finally:
        await server.close()


def through_pygls(message: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    return asyncio.run(_through_pygls(message))


junk = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=4), st.lists(st.integers(), max_size=2))
encodings = st.lists(st.one_of(st.sampled_from(["utf-8", "utf-16", "utf-32", "utf-7", "UTF-8"]), junk), max_size=4)
general = st.one_of(
    junk,
    st.fixed_dictionaries({}, optional={
        "positionEncodings": st.one_of(encodings, junk),
        "markdown": st.one_of(junk, st.fixed_dictionaries({"parser": st.one_of(st.text(max_size=4), junk)})),
    }),
)
workspace = st.one_of(
    junk,
    st.fixed_dictionaries({}, optional={
        "applyEdit": st.one_of(st.booleans(), junk),
        "workspaceEdit": st.one_of(junk, st.fixed_dictionaries({}, optional={
            "documentChanges": st.one_of(st.booleans(), junk),
            "resourceOperations": st.lists(st.sampled_from(["create", "rename", "bogus"]), max_size=2),
        })),
    }),
)
capabilities = st.fixed_dictionaries({}, optional={
    "general": general,
    "workspace": workspace,
    "textDocument": st.one_of(junk, st.fixed_dictionaries({}, optional={
        "synchronization": st.fixed_dictionaries({}, optional={"willSave": st.one_of(st.booleans(), junk)}),
    })),
    "experimental": junk,
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(capabilities=capabilities, msg_id=st.one_of(st.integers(-5, 10**12), st.text(max_size=8)))
def test_any_capabilities_get_the_same_answer_at_once_as_from_pygls(capabilities: dict[str, Any], msg_id: int | str):
    message = _request({"processId": None, "rootUri": None, "capabilities": capabilities}, msg_id)
    answer_at_once = early(message)
    answer, encoding = through_pygls(message)
    assert answer_at_once is not None, "capabilities alone never delay the answer"
    assert answer == answer_at_once
    assert encoding == answer["result"]["capabilities"]["positionEncoding"]


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [(None, "utf-16"), ([], "utf-16"), (["utf-32", "utf-8"], "utf-32"), (["utf-7", "utf-8"], "utf-8"), (["utf-7"], "utf-16")],
)
def test_the_clients_first_supported_encoding_is_chosen(offered: list[str] | None, chosen: str):
    general = {} if offered is None else {"general": {"positionEncodings": offered}}
    answer = early(_request({"processId": None, "capabilities": general}))
    assert answer is not None
    assert answer["result"] == {
        "capabilities": {"positionEncoding": chosen, "textDocumentSync": {"openClose": True, "change": 2}},
        "serverInfo": {"name": "ollama-chatd", "version": answer["result"]["serverInfo"]["version"]},
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"processId": "1", "capabilities": {}}, "processId"),
        ({"processId": True, "capabilities": {}}, "processId"),
        ({"processId": 1.5, "capabilities": {}}, "processId"),
        ({"rootUri": 5, "capabilities": {}}, "rootUri"),
        ({"capabilities": {}, "trace": "loud"}, "trace"),
        ({"capabilities": {}, "workspaceFolders": [{"uri": "file:///tmp"}]}, "workspaceFolders.0.name"),
        ({"capabilities": {}, "clientInfo": {"version": "1"}}, "clientInfo.name"),
        ({"capabilities": {}, "workDoneToken": 1.5}, "workDoneToken"),
        ({"processId": None}, "capabilities"),
        ({"capabilities": 3}, "capabilities"),
        ([], "params"),
        ({"capabilities": {}, "initializationOptions": {"maxContext": "big"}}, "initializationOptions.maxContext"),
        ({"capabilities": {}, "initializationOptions": {"ollamaHost": "http://[::1"}}, "initializationOptions"),
    ],
)
def test_params_to_refuse_are_left_to_pygls_which_names_the_field(params: Any, field: str):
    message = _request(params)
    assert early(message) is None
    answer, _ = through_pygls(message)
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"]["field"] == field
    assert answer["error"]["message"].startswith("initialize")


def test_a_ca_bundle_waits_for_the_general_path_and_is_answered_the_same():
    bundle = ssl.get_default_verify_paths().cafile or ssl.get_default_verify_paths().openssl_cafile
    plain = _request({"processId": None, "capabilities": {"general": {"positionEncodings": ["utf-8"]}}})
    with_bundle = _request({**plain["params"], "initializationOptions": {"caBundle": bundle}})
    assert early(with_bundle) is None
    assert through_pygls(with_bundle)[0] == early(plain)


# ---------------------------------------------------------------- the real daemon


async def test_messages_sent_before_the_answer_are_all_handled_once(spawn_daemon, fake: FakeOllama):
    """An editor that does not wait (initialize, initialized and a chat in one write)."""
    fake.script(Reply.text(["Hel", "lo"]))
    daemon: Daemon = await spawn_daemon()
    messages = [
        _request({"processId": None, "capabilities": {}, "initializationOptions": {"model": "tiny"}}, "init"),
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "chat/start", "params": {"chatId": "c1", "prompt": "hi"}},
    ]
    daemon.requests_sent.update({"init": "initialize", 2: "chat/start"})
    daemon.send_raw(b"".join(_frame(message) for message in messages))
    await daemon.wait_for(lambda: any(m.get("id") == 2 for m in daemon.messages))
    assert await daemon.shutdown() == 0
    answers = [m for m in daemon.messages if "method" not in m]
    assert [m["id"] for m in answers].count("init") == 1
    assert "result" in next(m for m in answers if m["id"] == "init")
    assert next(m for m in answers if m["id"] == 2)["result"]["message"]["content"] == "Hello"
    assert daemon.text("c1") == "Hello"


@pytest.mark.parametrize("how", ["byte by byte", "LF-only headers", "after a stray blank line", "after a decoy header"])
async def test_an_initialize_sent_oddly_is_answered(spawn_daemon, how: str):
    daemon: Daemon = await spawn_daemon()
    body = json.dumps(_request({"processId": None, "capabilities": {}}, 7)).encode()
    daemon.requests_sent[7] = "initialize"
    if how == "byte by byte":
        for byte in _frame(json.loads(body)):
            daemon.send_raw(bytes([byte]))
            await asyncio.sleep(0.001)
    elif how == "LF-only headers":
        daemon.send_raw(b"Content-Length: %d\n\n%s" % (len(body), body))
    elif how == "after a decoy header":  # its name ends in Content-Length: not the length
        daemon.send_raw(b"Content-Length: %d\r\nX-Original-Content-Length: 5\r\n\r\n%s" % (len(body), body))
    else:
        daemon.send_raw(b"\r\n" + _frame(json.loads(body)))
    await daemon.wait_for(lambda: any(m.get("id") == 7 for m in daemon.messages))
    assert await daemon.shutdown() == 0
    assert [m["id"] for m in daemon.messages if "method" not in m].count(7) == 1
    assert next(m for m in daemon.messages if m.get("id") == 7)["result"]["serverInfo"]["name"] == "ollama-chatd"


async def test_a_stop_before_any_message_ends_quietly(spawn_daemon):
    daemon: Daemon = await spawn_daemon("--log-level", "DEBUG")
    while "waiting for the client's first message" not in daemon.stderr():  # its handlers are in place
        assert daemon.process.returncode is None, daemon.stderr()
        await asyncio.sleep(0.02)
    daemon.process.send_signal(signal.SIGTERM)
    assert await daemon.wait_exit() == 0
    assert "Traceback" not in daemon.stderr()
    assert daemon.messages == []


def test_stdin_from_dev_null_is_an_empty_session(tmp_path):
    """epoll cannot watch /dev/null: the daemon must still see the end of input."""
    done = subprocess.run(
        [sys.executable, "-m", "ollama_chatd", "serve", "--no-store"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=10, cwd=tmp_path,
    )
    assert done.returncode == 0
    assert done.stdout == b""
    assert b"Traceback" not in done.stderr


@pytest.mark.parametrize("closed", ["stdin", "stdout"])
def test_a_closed_stdin_or_stdout_is_said_plainly(tmp_path, closed: str):
    fd = 0 if closed == "stdin" else 1
    done = subprocess.run(
        [sys.executable, "-m", "ollama_chatd", "serve", "--no-store"],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10, cwd=tmp_path,
        preexec_fn=lambda: os.close(fd),
    )
    assert done.returncode == 1
    assert f"{closed} is closed".encode() in done.stderr
    assert b"Traceback" not in done.stderr


def test_an_editor_gone_before_the_answer_ends_the_daemon_quietly(tmp_path):
    daemon = subprocess.Popen(
        [sys.executable, "-m", "ollama_chatd", "serve", "--no-store"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
    )
    daemon.stdout.close()  # nobody will read the answer
    _, stderr = daemon.communicate(_frame(_request({"processId": None, "capabilities": {}})), timeout=10)
    assert daemon.returncode == 0
    assert b"Traceback" not in stderr


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
