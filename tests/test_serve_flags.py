"""`serve` takes the flags language clients add to a server's command line
(vscode-languageclient appends `--stdio`; several clients pass `--clientProcessId`)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from fake_ollama import FakeOllama


@pytest.mark.parametrize("flags", [("--stdio",), ()])
async def test_stdio_is_accepted_and_changes_nothing(spawn_daemon, fake: FakeOllama, flags: tuple[str, ...]):
    daemon = await spawn_daemon(*flags)
    await daemon.initialize({"model": "tiny"})
    models = await daemon.request("chat/models", {})
    assert sorted(m["name"] for m in models["models"]) == sorted(fake.models)
    assert await daemon.shutdown() == 0


@pytest.mark.parametrize("spelling", ["--clientProcessId={pid}", "--clientProcessId {pid}"])
async def test_the_daemon_exits_soon_after_the_client_process(spawn_daemon, spelling: str):
    editor = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        daemon = await spawn_daemon("--stdio", *spelling.format(pid=editor.pid).split())
        # initialize names no process: only the command line tells the daemon whom to watch
        await daemon.initialize({"model": "tiny"}, processId=None)
        assert (await daemon.request("chat/models", {}))["models"]
        editor.kill()
        await editor.wait()
        # stdin stays open: only the watch on the client's process can end the daemon
        await daemon.wait_exit(timeout=10)
    finally:
        if editor.returncode is None:
            editor.kill()
            await editor.wait()


async def test_a_client_process_id_that_is_not_a_number_is_refused_plainly(tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ollama_chatd", "serve", "--clientProcessId=abc",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 2 and stdout == b""
    assert b"--clientProcessId: invalid int value: 'abc'" in stderr
