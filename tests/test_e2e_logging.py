"""Logs: where they go, what they hold, and what reaches the editor."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pygls.exceptions import FeatureNotificationError, JsonRpcInternalError

from fake_ollama import FakeOllama, Reply
from harness import Daemon, RpcError
from ollama_chatd.rpc.errors import log_server_error


async def test_log_options_from_the_editor(spawn_daemon, fake: FakeOllama, tmp_path: Path):
    log_file = tmp_path / "chatd.log"
    daemon = await spawn_daemon()
    await daemon.initialize({"model": "tiny", "logLevel": "INFO", "logFile": str(log_file)})
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi"})
    await daemon.shutdown()
    assert f"Ollama at {fake.url}" in log_file.read_text()


async def test_prompts_file_contents_and_keys_stay_out_of_the_log(spawn_daemon, fake: FakeOllama, tmp_path: Path):
    (tmp_path / "secret.py").write_text("PASSWORD = 'file-content-hunter2'\n")
    log_file = tmp_path / "chatd.log"
    daemon = await spawn_daemon("--log-level", "INFO", "--log-file", str(log_file), env={"OLLAMA_API_KEY": "sk-key-hunter2"})
    await daemon.initialize({"model": "tiny", "headers": {"X-Api-Token": "header-hunter2"}}, rootUri=tmp_path.as_uri())
    fake.script(
        Reply.text([], tool_calls=[{"function": {"name": "read_file", "arguments": {"path": "secret.py"}}}]),
        Reply.text(["answer-hunter2"]),
    )
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "prompt-hunter2"})
    fake.script(Reply.error(401, "unauthorized"))
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "again-hunter2"})
    assert "hunter2" not in raised.value.message
    await daemon.shutdown()
    assert "hunter2" not in log_file.read_text() + daemon.stderr()


async def test_the_daemons_warnings_reach_the_editor_log(daemon: Daemon):
    daemon.send_raw(b"Content-Length: 9\r\n\r\n{not json")
    logged = await daemon.wait_for(lambda: daemon.notifications("window/logMessage"))
    assert logged[0]["type"] == 2
    assert "not valid UTF-8 JSON" in logged[0]["message"]


def _failing_handler() -> None:
    raise KeyError("a bug in a handler")


@pytest.mark.parametrize("wrapped", [False, True], ids=["raw", "wrapped by pygls"])
def test_a_bug_pygls_reports_leaves_its_traceback_in_the_log(caplog, wrapped: bool):
    """What pygls catches outside our handlers' error map (a notification handler, or
    a request pygls answers -32603 itself) reaches `report_server_error`, raw or as a
    JsonRpcInternalError holding the traceback's frames; the log must keep them."""
    try:
        _failing_handler()
    except KeyError as error:
        reported = JsonRpcInternalError.of(sys.exc_info()) if wrapped else error
    log_server_error(reported, FeatureNotificationError)
    assert "Traceback (most recent call last)" in caplog.text
    assert "_failing_handler" in caplog.text and "a bug in a handler" in caplog.text
    assert caplog.records[-1].levelname == "ERROR"
