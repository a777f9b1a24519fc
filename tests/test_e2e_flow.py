"""A client that reads slowly, or not at all, never costs the daemon its memory,
its text, or its ability to stop."""

from __future__ import annotations

import asyncio

from fake_ollama import FakeOllama, Reply
from harness import Daemon


def rss_mib(daemon: Daemon) -> float:
    status = open(f"/proc/{daemon.process.pid}/status").read()
    kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kib / 1024


async def test_a_client_that_reads_nothing_does_not_grow_the_daemon(daemon: Daemon, fake: FakeOllama):
    fake.script(Reply.endless(token="x" * 200, delay=0))
    msg_id, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "flood"})
    await daemon.wait_for(lambda: daemon.tokens("c1"))
    before = rss_mib(daemon)
    daemon.pause_reading()
    # Once the editor's pipe is full the daemon must stop reading Ollama, whose writes then wait.
    assert await fake.requests[0].wait_pushed_back(10), "the daemon kept reading Ollama for nobody"
    grown = rss_mib(daemon) - before

    daemon.cancel_request(msg_id)  # still heard while nobody reads
    assert await asyncio.to_thread(fake.requests[0].wait_closed, 2.0)
    daemon.resume_reading()
    await asyncio.wait([answer], timeout=10)
    assert grown < 15, f"RSS grew {grown:.1f} MiB while the client read nothing"
    tokens = daemon.tokens("c1")
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    assert set(daemon.text("c1")) == {"x"}


async def test_merged_tokens_keep_the_text_exact(daemon: Daemon, fake: FakeOllama):
    words = [f"w{i} é🦙 " for i in range(3000)]
    fake.script(Reply.text(words))
    daemon.pause_reading()
    msg_id, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": "many"})
    # The daemon merges while the client does not read: until it has the whole reply, or
    # its pipe to the client is full and it stops reading Ollama.
    [reply] = await fake.wait_for_requests_async(1)
    assert await reply.wait_pushed_back(20, or_completed=True)
    daemon.resume_reading()
    result = await asyncio.wait_for(answer, 20)
    tokens = daemon.tokens("c1")
    assert daemon.text("c1") == "".join(words) == result["message"]["content"]
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    assert len(tokens) < len(words)  # fewer, larger notifications


async def test_a_fast_model_streams_in_batches_to_a_client_that_keeps_up(daemon: Daemon, fake: FakeOllama):
    # 300 tokens a millisecond apart, each its own write, as Ollama sends them: the daemon reads
    # them in batches (pacing.py) instead of one wake-up and one notification per token.
    words = [f"t{i} " for i in range(300)]
    fake.script(Reply.text(words, delay=0.001))
    result = await asyncio.wait_for(daemon.request("chat/start", {"chatId": "c1", "prompt": "fast"}), 30)
    tokens = daemon.tokens("c1")
    assert daemon.text("c1") == "".join(words) == result["message"]["content"]
    assert [t["seq"] for t in tokens] == list(range(len(tokens)))
    assert len(tokens) < len(words) / 3, f"{len(tokens)} notifications for {len(words)} tokens"
