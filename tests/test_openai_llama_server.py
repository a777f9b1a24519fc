"""The OpenAI-compatible backend against a real llama-server running a real model (SmolLM2),
driven over real stdio with the daemon as a subprocess, as an editor would.

SmolLM2 does not stop by itself on long answers: every turn caps `num_predict` (sent as
`max_tokens`). It cannot call tools, so the tool loop keeps its fake-server tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import Daemon, RpcError
from llama_server import CONTEXT, MODEL, LlamaServer

pytestmark = pytest.mark.timeout(180)

SHORT = {"num_predict": 24, "temperature": 0, "seed": 7}
ENDLESS = {"num_predict": CONTEXT, "temperature": 0, "seed": 7}  # runs until stopped
ANSWERED_WITHIN_S = 1.0  # "at once", with room for a machine shared by many test runs
SLOT_IDLE_WITHIN_S = 1.5


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServer]:
    server = LlamaServer.start()
    yield server
    server.stop()


async def spawn(server: LlamaServer, tmp_path: Path, log: Path | None = None) -> Daemon:
    logging = ("--log-level", "INFO", "--log-file", str(log)) if log else ()
    # The environment must not choose for the test: no key, no other base URL.
    env = {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": "", "OLLAMA_CHATD_MODEL": ""}
    daemon = await Daemon.spawn("--no-store", *logging, env=env, cwd=str(tmp_path))
    await daemon.initialize({"backend": "openai", "baseUrl": server.api_url, "model": MODEL})
    return daemon


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.kill()
        await daemon.process.wait()
        assert not daemon.stdout_violations, daemon.stdout_violations


@pytest.fixture
async def daemon(llama: LlamaServer, tmp_path: Path, daemons: list[Daemon]) -> Daemon:
    daemons.append(await spawn(llama, tmp_path, tmp_path / "daemon.log"))
    return daemons[-1]


async def test_chat_models_lists_the_served_model_with_its_window(daemon: Daemon) -> None:
    result = await daemon.request("chat/models", {})
    assert [(model["name"], model["contextLength"]) for model in result["models"]] == [(MODEL, CONTEXT)]


async def test_a_reply_streams_and_its_tokens_join_to_the_answer_with_usage(daemon: Daemon) -> None:
    start = {"chatId": "c1", "prompt": "Tell me a story about a dragon.", "options": SHORT}
    result = await daemon.request("chat/start", start, timeout=60)
    assert len(daemon.tokens("c1")) > 3  # streamed, not delivered in one piece
    assert daemon.text("c1") == result["message"]["content"] != ""
    assert result["stopReason"] == "max_tokens"
    usage = result["usage"]
    assert usage["completionTokens"] == SHORT["num_predict"]
    assert usage["promptTokens"] > 5 and usage["totalDurationMs"] > 0
    assert usage["contextLimit"] == CONTEXT


async def _generating(daemon: Daemon, llama: LlamaServer) -> tuple[int | str, asyncio.Future[Any]]:
    """A turn that would run for many seconds, once its first token has arrived."""
    start = {"chatId": "c1", "prompt": "Write a very long story about a dragon.", "options": ENDLESS}
    msg_id, answer = daemon.send_request("chat/start", start)
    await daemon.wait_for(lambda: daemon.tokens("c1"), timeout=60)
    assert await asyncio.to_thread(llama.slot_busy)
    return msg_id, answer


async def _slot_goes_idle(llama: LlamaServer, since: float) -> float:
    while await asyncio.to_thread(llama.slot_busy):
        assert time.monotonic() - since < SLOT_IDLE_WITHIN_S, "llama-server still generating after the cancel"
    return time.monotonic() - since


async def test_chat_cancel_answers_at_once_and_the_server_stops_generating(daemon: Daemon, llama: LlamaServer) -> None:
    _, answer = await _generating(daemon, llama)
    asked = time.monotonic()
    cancelled = await daemon.request("chat/cancel", {"chatId": "c1"})
    assert time.monotonic() - asked < ANSWERED_WITHIN_S
    assert cancelled == {"cancelled": True}
    assert (await answer)["stopReason"] == "cancelled"
    await _slot_goes_idle(llama, asked)


async def test_cancel_request_answers_at_once_and_the_server_stops_generating(daemon: Daemon, llama: LlamaServer) -> None:
    msg_id, answer = await _generating(daemon, llama)
    asked = time.monotonic()
    daemon.cancel_request(msg_id)
    with pytest.raises(RpcError) as raised:
        await asyncio.wait_for(answer, ANSWERED_WITHIN_S)
    assert raised.value.code == -32800
    await _slot_goes_idle(llama, asked)


async def test_the_second_turn_is_served_from_the_prompt_cache(daemon: Daemon, tmp_path: Path) -> None:
    system = "You are a patient teacher of geography. " * 30  # a long common prefix
    first = {"chatId": "c1", "prompt": "Name a river.", "system": system, "options": SHORT}
    await daemon.request("chat/start", first, timeout=60)
    second = await daemon.request("chat/start", {"chatId": "c1", "prompt": "Name another.", "options": SHORT}, timeout=60)
    prompt = second["usage"]["promptTokens"]
    evaluated = _prompt_tokens_evaluated((tmp_path / "daemon.log").read_text())
    assert len(evaluated) == 2 and prompt > 200
    assert evaluated[1] < prompt / 4, f"llama-server evaluated {evaluated[1]} of {prompt} prompt tokens"


def _prompt_tokens_evaluated(log: str) -> list[int]:
    return [int(n) for n in re.findall(r"prompt evaluated (\d+) tokens", log)]


async def test_an_unknown_model_is_refused_naming_it_and_what_is_served(daemon: Daemon) -> None:
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi", "model": "llama3.2", "options": SHORT})
    assert raised.value.code == -32002
    assert raised.value.data == {"kind": "model_not_found", "model": "llama3.2", "backend": "openai"}
    assert "'llama3.2'" in raised.value.message and MODEL in raised.value.message
    assert raised.value.message.endswith("Choose one of those.")  # no method name: ACP shares these words


async def test_the_cli_refuses_an_unknown_model_with_its_own_advice(llama: LlamaServer, tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", "chat", "--no-store", "--backend", "openai", "--base-url", llama.api_url,
        "--model", "llama3.2", "hi", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "OPENAI_API_KEY": ""},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert (process.returncode, out) == (1, b"")
    said = err.decode().rstrip()
    assert f"Model 'llama3.2' is not served by the OpenAI-compatible server at {llama.api_url} (it serves {MODEL})" in said
    assert said.endswith("`ollama-chatd models` lists them (with the same --backend and --base-url).")
    assert "chat/models" not in said  # the protocol's words are for editors


async def test_a_stopped_server_is_unreachable_naming_its_address(tmp_path: Path, daemons: list[Daemon]) -> None:
    server = LlamaServer.start()
    try:
        daemons.append(daemon := await spawn(server, tmp_path))
        assert (await daemon.request("chat/models", {}))["models"]
    finally:
        server.stop()
    with pytest.raises(RpcError) as raised:
        await daemon.request("chat/start", {"chatId": "c1", "prompt": "hi", "options": SHORT})
    assert raised.value.code == -32001
    assert raised.value.data["address"] == server.api_url and raised.value.data["backend"] == "openai"
    assert f"Cannot reach the OpenAI-compatible server at {server.api_url}" in raised.value.message


async def test_the_cli_chats_with_llama_server(tmp_path: Path) -> None:
    # The CLI sets no token limit; the server's own default (-n) keeps SmolLM2 short.
    server = LlamaServer.start("--n-predict", "32", "--temp", "0")
    try:
        command = [sys.executable, "-m", "ollama_chatd", "chat", "--no-store", "--json", "--backend", "openai",
                   "--base-url", server.api_url, "--model", MODEL, "Tell me about dragons."]  # fmt: skip
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
            env={**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""},
        )  # fmt: skip
        out, err = await asyncio.wait_for(process.communicate(), 120)
    finally:
        server.stop()
    assert process.returncode == 0, err.decode()
    messages = [json.loads(line) for line in out.decode().splitlines()]
    tokens = [m["params"]["text"] for m in messages if m.get("method") == "chat/token"]
    (answer,) = [m["result"] for m in messages if "result" in m and "stopReason" in (m["result"] or {})]
    assert len(tokens) > 3 and "".join(tokens) == answer["message"]["content"]
    assert answer["usage"]["completionTokens"] == 32


async def test_models_and_doctor_say_which_backend_and_address_they_used(llama: LlamaServer, tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": llama.api_url}
    outputs = []
    for command in (["models", "--backend", "openai"], ["doctor", "--backend", "openai", "--model", MODEL]):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ollama_chatd", *command,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=tmp_path,
        )  # fmt: skip
        out = (await asyncio.wait_for(process.communicate(), 60))[0].decode()
        assert process.returncode == 0, out
        outputs.append(out)
    table, doctor = outputs
    assert table.splitlines()[1].split()[:2] == [MODEL, "?"]
    assert f"openai at {llama.api_url} (from OPENAI_BASE_URL)" in table
    assert f"backend: openai at {llama.api_url} (from OPENAI_BASE_URL)" in doctor
    assert "the OpenAI-compatible server is reachable (llama.cpp" in doctor
    assert f"the default model {MODEL} is installed but cannot use tools" in doctor  # its template ignores tools


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"baseUrl": "localhost:8080"}, "baseUrl"),
        ({"apiKeyEnv": "NO_SUCH_VARIABLE_FOR_THE_KEY"}, "apiKeyEnv"),
        ({"apiKeyEnv": "not a name"}, "apiKeyEnv"),
    ],
)
async def test_unusable_openai_options_are_refused_naming_them(tmp_path: Path, daemons: list[Daemon], options, field) -> None:
    daemons.append(daemon := await Daemon.spawn("--no-store", cwd=str(tmp_path)))
    with pytest.raises(RpcError) as raised:
        await daemon.initialize({"backend": "openai", **options})
    assert raised.value.code == -32602
    assert raised.value.data["field"] == f"initializationOptions.{field}"


async def test_an_editor_passing_no_backend_reaches_it_through_the_environment(
    llama: LlamaServer, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """VS Code passes only its own settings (ollamaHost, model...): the environment chooses."""
    env = {"OLLAMA_CHATD_BACKEND": "openai", "OPENAI_BASE_URL": llama.api_url, "OPENAI_API_KEY": ""}
    daemons.append(daemon := await Daemon.spawn("--no-store", env=env, cwd=str(tmp_path)))
    await daemon.initialize({"model": MODEL, "autoApprove": []})
    assert [model["name"] for model in (await daemon.request("chat/models", {}))["models"]] == [MODEL]
