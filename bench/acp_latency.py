#!/usr/bin/env python3
"""`ollama-chatd acp`: spawn to `initialize` answered, and how fast `session/cancel` stops a
streaming turn (the fake Ollama sees its connection dropped; the prompt answers `cancelled`).

    .venv/bin/python bench/acp_latency.py [--runs N]

The client is the ACP Python SDK's own (`spawn_agent_process`); the agent is the work
tree's `.venv/bin/ollama-chatd acp`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import acp
from acp import schema

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from fake_ollama import FakeOllama, Reply  # noqa: E402


class QuietClient:
    async def session_update(self, session_id: str, update: object, **_: object) -> None:
        pass

    def on_connect(self, conn: object) -> None:
        pass


async def one_run(fake: FakeOllama, workspace: str) -> tuple[float, float, float]:
    started = time.monotonic()
    command = str(ROOT / ".venv/bin/ollama-chatd")
    env = {"OLLAMA_HOST": fake.url, "PATH": "/usr/bin:/bin"}
    async with acp.spawn_agent_process(QuietClient(), command, "acp", "--model", "tiny", "--no-store", env=env) as (
        conn,
        _,
    ):
        await conn.initialize(protocol_version=1)
        to_initialize = time.monotonic() - started
        session = await conn.new_session(cwd=workspace, mcp_servers=[])
        fake.script(Reply.endless("tok "), model="tiny")
        before = len(fake.requests)
        text = [schema.TextContentBlock(type="text", text="go")]
        answer = asyncio.create_task(conn.prompt(session_id=session.session_id, prompt=text))
        request = (await fake.wait_for_requests_async(before + 1))[-1]
        await asyncio.sleep(0.3)  # streaming by now
        cancelled_at = time.monotonic()
        await conn.cancel(session_id=session.session_id)
        assert (await answer).stop_reason == "cancelled"
        to_answer = time.monotonic() - cancelled_at
        assert await request.wait_closed_async()
        assert request.closed_at is not None
        return to_initialize, request.closed_at - cancelled_at, to_answer


async def main(runs: int) -> None:
    results = []
    with FakeOllama() as fake, tempfile.TemporaryDirectory() as workspace:
        for _ in range(runs):
            results.append(await one_run(fake, workspace))
    for label, values in zip(
        ("spawn -> initialize answered", "session/cancel -> Ollama stream dropped", "session/cancel -> prompt answered"),
        zip(*results),
    ):
        ms = [value * 1000 for value in values]
        print(f"{label}: median {statistics.median(ms):.0f} ms (min {min(ms):.0f}, max {max(ms):.0f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
