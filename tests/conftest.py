from __future__ import annotations

import socket

import pytest

import tool_call_states
from fake_ollama import FakeOllama
from harness import Daemon


@pytest.fixture(autouse=True)
def private_data_home(tmp_path, monkeypatch):
    """Chats stored by any daemon a test starts land in the test's directory."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="session")
def fake_server():
    with FakeOllama() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeOllama) -> FakeOllama:
    fake_server.reset()
    return fake_server


@pytest.fixture
def closed_port_url() -> str:
    """An address where nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def spawn_daemon(fake: FakeOllama, tmp_path):
    """Start daemons pointed at the fake Ollama; each must have kept stdout clean and
    moved every tool call along the documented status machine."""
    daemons: list[Daemon] = []

    async def spawn(*args: str, env: dict[str, str] | None = None) -> Daemon:
        base_env = {"OLLAMA_HOST": fake.url, "OLLAMA_CHATD_MODEL": ""}
        daemon = await Daemon.spawn(*args, env={**base_env, **(env or {})}, cwd=str(tmp_path))
        daemons.append(daemon)
        return daemon

    yield spawn
    for daemon in daemons:
        daemon.kill()
        await daemon.process.wait()
        assert not daemon.stdout_violations, daemon.stdout_violations
        assert not (broken := tool_call_states.violations(daemon.messages)), broken


@pytest.fixture
async def daemon(spawn_daemon) -> Daemon:
    daemon = await spawn_daemon()
    await daemon.initialize({"model": "tiny"})
    return daemon
