"""Long life: an editor daemon runs for days. Many start/cancel cycles leak nothing, many
chats stream side by side without starving, and the daemon goes away promptly (keeping what
was streamed) when its editor does. Sized for CI: the whole file takes a minute or two.

Resources are read from outside the daemon with psutil: open file descriptors, threads,
TCP connections to the fake Ollama, resident memory.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter

import psutil
import pytest

from fake_ollama import FakeModel, FakeOllama, Reply
from harness import Daemon, RpcError

MIB = 1024 * 1024
DEFAULT_THREAD_POOL_SIZE = min(32, (os.cpu_count() or 1) + 4)  # concurrent.futures.ThreadPoolExecutor's default
CHAT_MODELS = {"a": "tiny", "b": "thinker", "c": "vision", "d": "plain"}  # one model per chat: scripts pair exactly


class Tally:
    """chat/token notifications per chat, counted incrementally (the message list grows long)."""

    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        self.seen = 0
        self.tokens: Counter[str] = Counter()

    def update(self) -> Tally:
        messages = self.daemon.messages
        for message in messages[self.seen:]:
            if message.get("method") == "chat/token":
                self.tokens[message["params"]["chatId"]] += 1
        self.seen = len(messages)
        return self


def usage(daemon: Daemon, fake: FakeOllama) -> dict[str, int]:
    process = psutil.Process(daemon.process.pid)
    to_fake = [
        c for c in process.net_connections(kind="tcp")
        if c.raddr and c.raddr.port == fake.port and c.status == psutil.CONN_ESTABLISHED
    ]
    return {
        "fds": process.num_fds(),
        "threads": process.num_threads(),
        "connections": len(to_fake),
        "rss": process.memory_info().rss,
    }


def describe(numbers: dict[str, int]) -> str:
    return ", ".join(f"{k}={v / MIB:.1f} MiB" if k == "rss" else f"{k}={v}" for k, v in numbers.items())


async def warm_chats(daemon: Daemon) -> None:
    """One finished turn per chat, so each chat (and its model) is known before measuring."""
    for chat, model in CHAT_MODELS.items():
        await daemon.request("chat/start", {"chatId": chat, "prompt": "warm up", "model": model})


# -- 1,000 start/cancel cycles -----------------------------------------------------------------------


class Cycler:
    """Start a turn, cancel it at a random moment, check both answers; one chat per worker."""

    def __init__(self, daemon: Daemon, fake: FakeOllama, rng: random.Random):
        self.daemon, self.fake, self.rng = daemon, fake, rng
        self.tally = Tally(daemon)
        self.outcomes: Counter[str] = Counter()
        self.numbers = iter(range(10**9))

    async def wait_tokens(self, chat: str, at_least: int) -> None:
        await self.daemon.wait_for(lambda: self.tally.update().tokens[chat] >= at_least, timeout=10)

    async def wait_request(self, prompt: str) -> None:
        """Until the fake has the request (so the scripted reply is taken, never left over)."""
        deadline = time.monotonic() + 10
        while not any(r.body and r.body["messages"][-1]["content"] == prompt for r in reversed(self.fake.requests)):
            assert time.monotonic() < deadline, f"no request for {prompt!r}"
            await asyncio.sleep(0.002)

    async def cycle(self, chat: str) -> None:
        """`chat` "new" means a chat the daemon has never seen (it looks it up in its store)."""
        if chat == "new":
            chat, model = f"new-{next(self.numbers)}", "fresh"
            moment = self.rng.choice(["at once", "after the end"])  # no scripts: the default echo answers
        else:
            model = CHAT_MODELS[chat]
            moment = self.rng.choice(["at once", "before the first byte", "mid-stream", "after the end"])
        if moment == "at once":
            # Such a request may reach the fake after the turn is gone, and would take the
            # next cycle's scripted reply: it goes to a model that is never scripted.
            model = "fresh"
        how = self.rng.choice(["chat/cancel", "$/cancelRequest"])
        prompt = f"{chat} #{next(self.numbers)}"
        if moment == "before the first byte":
            self.fake.script(Reply.endless(first_byte_delay=self.rng.uniform(0.01, 0.1)), model=model)
        elif moment == "mid-stream":
            self.fake.script(Reply.endless(delay=self.rng.uniform(0.001, 0.005)), model=model)
        elif moment == "after the end" and not chat.startswith("new-"):
            self.fake.script(Reply.text(["short", " answer"]), model=model)
        # "at once" has no script: if the turn gets to Ollama at all, the fake echoes.
        before = self.tally.update().tokens[chat]
        start_id, started = self.daemon.send_request("chat/start", {"chatId": chat, "prompt": prompt, "model": model})
        started.add_done_callback(lambda f: f.cancelled() or f.exception())
        if moment == "before the first byte":
            await self.wait_request(prompt)
        elif moment == "mid-stream":
            await self.wait_tokens(chat, before + self.rng.randint(1, 15))
        elif moment == "after the end":
            await asyncio.wait_for(asyncio.shield(started), 10)

        cancelled = None
        if how == "chat/cancel":
            cancelled = self.daemon.send_request("chat/cancel", {"chatId": chat})[1]
        else:
            self.daemon.cancel_request(start_id)
        try:
            result = await asyncio.wait_for(asyncio.shield(started), 10)
            outcome = result["stopReason"]
        except RpcError as error:
            outcome = str(error.code)
        if cancelled is not None:
            outcome += f" / cancelled:{(await asyncio.wait_for(cancelled, 10))['cancelled']}"
        self.outcomes[f"{'new chat, ' if chat.startswith('new-') else ''}{moment}, {how}: {outcome}"] += 1
        allowed = {
            "chat/cancel": {"cancelled / cancelled:True", "end_turn / cancelled:False"},
            "$/cancelRequest": {"-32800", "end_turn"},
        }[how]
        assert outcome in allowed, (moment, how, outcome)
        if moment == "after the end":
            assert outcome.startswith("end_turn")
        if moment == "mid-stream":
            assert not outcome.startswith("end_turn"), "an endless reply cannot end by itself"

    async def run(self, chat: str, cycles: int) -> None:
        for _ in range(cycles):
            await self.cycle(chat)


async def test_a_thousand_start_cancel_cycles_leak_nothing(spawn_daemon, fake: FakeOllama):
    fake.models["fresh:latest"] = FakeModel("fresh", capabilities=["completion", "tools"])  # never scripted: echoes
    daemon = await spawn_daemon()
    await daemon.initialize({"model": "tiny"})
    await warm_chats(daemon)
    cycler = Cycler(daemon, fake, random.Random(20261125))
    await asyncio.gather(*(cycler.run(chat, 10) for chat in [*CHAT_MODELS, "new"]))  # pools and thread pools filled
    await asyncio.sleep(0.5)
    start = usage(daemon, fake)

    began = time.monotonic()  # four chats the daemon knows, and chats it has never seen
    await asyncio.gather(*(cycler.run(chat, 200) for chat in [*CHAT_MODELS, "new"]))
    elapsed = time.monotonic() - began

    deadline = time.monotonic() + 5
    while True:  # closed streams are reaped asynchronously: give them a moment
        end = usage(daemon, fake)
        settled = end["fds"] - end["connections"] <= start["fds"] - start["connections"] + 2 and end["connections"] <= len(CHAT_MODELS) + 1
        if settled or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    report = f"before: {describe(start)}\nafter {elapsed:.1f} s: {describe(end)}\n{dict(cycler.outcomes)}"
    assert sum(cycler.outcomes.values()) == 1050
    assert end["fds"] - end["connections"] <= start["fds"] - start["connections"] + 2, report
    assert end["connections"] <= len(CHAT_MODELS) + 1, report  # pooled keep-alive connections, at most one per worker
    # asyncio's default thread pool (fit_window, diffs, tool runs) starts workers lazily, up to its
    # fixed size, whenever every worker is busy: a leak grows with the cycles, the pool does not.
    assert end["threads"] <= start["threads"] + DEFAULT_THREAD_POOL_SIZE, report
    assert end["rss"] - start["rss"] < 30 * MIB, report
    for request in fake.requests:  # every stream to Ollama was read to its end or dropped
        assert request.response_completed or request.client_dropped, request
    result = await daemon.request("chat/start", {"chatId": "after", "prompt": "still fine?"})
    assert result["message"]["content"] == "echo: still fine?"
    print(report)


async def test_cancelling_turns_of_chats_not_in_memory_keeps_the_store_alive(daemon: Daemon):
    """Regression: cancelling a turn while it loaded its chat from the store (the first turn
    of a chat not in memory) cancelled the store barrier's concurrent Future; the writer thread
    then died on set_result (InvalidStateError), and every later chat/start, chat/history and
    chat/list waited for ever."""
    for burst in range(3):
        answers = []
        for n in range(40):  # chats the daemon has never seen, started and cancelled at once
            answers.append(daemon.send_request("chat/start", {"chatId": f"new-{burst}-{n}", "prompt": "q"})[1])
            answers.append(daemon.send_request("chat/cancel", {"chatId": f"new-{burst}-{n}"})[1])
        for answer in answers:
            answer.add_done_callback(lambda f: f.cancelled() or f.exception())
        await asyncio.wait_for(asyncio.wait(answers), 10)
    assert "Exception in thread" not in daemon.stderr(), daemon.stderr()[-2000:]
    assert (await daemon.request("chat/list", {}, timeout=5))["chats"] is not None
    result = await daemon.request("chat/start", {"chatId": "after", "prompt": "hello"}, timeout=5)
    assert result["message"]["content"] == "echo: hello"


# -- 50 chats at once ------------------------------------------------------------------------------------


async def test_fifty_chats_stream_side_by_side_without_starving(daemon: Daemon, fake: FakeOllama):
    chats, tokens, delay = 50, 200, 0.1  # each turn streams for about 20 s
    await daemon.request("chat/start", {"chatId": "warm", "prompt": "hi"})
    for _ in range(chats):
        fake.script(Reply.text([f"w{i} " for i in range(tokens)], delay=delay))
    baseline = usage(daemon, fake)
    first_message = len(daemon.messages)
    sent_at = time.monotonic()
    answers = [daemon.send_request("chat/start", {"chatId": f"chat-{n}", "prompt": f"talk {n}"})[1] for n in range(chats)]

    peak = baseline["rss"]
    pending = set(answers)
    while pending:
        done, pending = await asyncio.wait(pending, timeout=1.0)
        peak = max(peak, usage(daemon, fake)["rss"])
        assert time.monotonic() - sent_at < 60, f"{len(pending)} chats still running after 60 s"
    results = [answer.result() for answer in answers]
    elapsed = time.monotonic() - sent_at

    arrivals: dict[str, list[float]] = {f"chat-{n}": [] for n in range(chats)}
    for message, at in zip(daemon.messages[first_message:], daemon.received_at[first_message:], strict=True):
        if message.get("method") == "chat/token":
            arrivals[message["params"]["chatId"]].append(at)
    expected = "".join(f"w{i} " for i in range(tokens))
    for n, result in enumerate(results):
        chat = f"chat-{n}"
        assert result["stopReason"] == "end_turn" and result["message"]["content"] == expected, chat
        assert daemon.text(chat) == expected
        times = arrivals[chat]
        assert times[0] - sent_at < 3.0, f"{chat} waited {times[0] - sent_at:.1f} s for its first token"
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert max(gaps) < 2.0, f"{chat} starved for {max(gaps):.1f} s"
        assert times[-1] - times[0] > 0.8 * tokens * delay - 2, f"{chat} got its tokens in a burst, not throughout"
    assert elapsed < 0.8 * 60, f"50 turns of ~{tokens * delay:.0f} s took {elapsed:.0f} s"
    assert peak - baseline["rss"] < 50 * MIB, f"RSS grew by {(peak - baseline['rss']) / MIB:.1f} MiB"
    print(f"50 chats in {elapsed:.1f} s, RSS {baseline['rss'] / MIB:.1f} -> peak {peak / MIB:.1f} MiB")


# -- the daemon goes away with its editor ----------------------------------------------------------------


async def start_streaming(daemon: Daemon, fake: FakeOllama, chats: list[str]) -> None:
    for chat in chats:
        fake.script(Reply.endless(token=f"{chat} ", delay=0.01), model="tiny")
        daemon.send_request("chat/start", {"chatId": chat, "prompt": f"go {chat}"})[1].add_done_callback(
            lambda f: f.cancelled() or f.exception())
    await daemon.wait_for(lambda: all(len(daemon.tokens(c)) >= 5 for c in chats))
    await asyncio.sleep(0.3)


async def assert_streamed_text_was_saved(spawn_daemon, fake: FakeOllama, first: Daemon, chats: list[str]) -> None:
    assert all(r.response_completed or r.client_dropped for r in fake.requests)
    second = await spawn_daemon()
    await second.initialize({"model": "tiny"})
    for chat in chats:
        history = await second.request("chat/history", {"chatId": chat})
        [user, partial] = history["messages"]
        assert (user["role"], user["content"]) == ("user", f"go {chat}")
        assert partial["role"] == "assistant"
        assert partial.get("status") in ("cancelled", "interrupted"), partial
        streamed = first.text(chat)
        assert partial["content"] == streamed, (len(partial["content"]), len(streamed))


async def test_end_of_input_ends_the_daemon_within_2_seconds_and_keeps_what_streamed(spawn_daemon, fake: FakeOllama):
    daemon = await spawn_daemon()
    await daemon.initialize({"model": "tiny"})
    chats = ["one", "two", "three"]
    await start_streaming(daemon, fake, chats)
    closed_at = time.monotonic()
    daemon.process.stdin.close()
    assert await daemon.wait_exit(timeout=2.0) == 0
    assert time.monotonic() - closed_at < 2.0
    for request in fake.requests:
        assert await asyncio.to_thread(request.wait_closed, 1.0)
    await assert_streamed_text_was_saved(spawn_daemon, fake, daemon, chats)


async def test_the_editor_dying_ends_the_daemon_within_2_seconds_and_keeps_what_streamed(spawn_daemon, fake: FakeOllama):
    editor = await asyncio.create_subprocess_exec("sleep", "60")
    try:
        daemon = await spawn_daemon()
        await daemon.initialize({"model": "tiny"}, processId=editor.pid)
        chats = ["one", "two", "three"]
        await start_streaming(daemon, fake, chats)
        editor.kill()
        await editor.wait()
        died_at = time.monotonic()
        await daemon.wait_exit(timeout=2.0)
        assert time.monotonic() - died_at < 2.0
    finally:
        if editor.returncode is None:
            editor.kill()
            await editor.wait()
    for request in fake.requests:
        assert await asyncio.to_thread(request.wait_closed, 1.0)
    await assert_streamed_text_was_saved(spawn_daemon, fake, daemon, chats)


@pytest.mark.parametrize("moment", ["before the first byte", "mid-stream"])
async def test_two_cancels_of_one_turn_leak_nothing(daemon: Daemon, fake: FakeOllama, moment: str):
    """Regression: two chat/cancel for one turn (Stop clicked twice) cancelled its task twice; the
    second CancelledError interrupted the clean-up of the first and left the stream to Ollama open."""
    await daemon.request("chat/start", {"chatId": "c1", "prompt": "warm up"})
    start = usage(daemon, fake)
    open_streams = []
    for trial in range(6):
        fake.script(Reply.endless(first_byte_delay=0.5 if moment == "before the first byte" else 0))
        seen = len(fake.requests)
        _, answer = daemon.send_request("chat/start", {"chatId": "c1", "prompt": f"go {trial}"})
        answer.add_done_callback(lambda f: f.cancelled() or f.exception())
        [*_, request] = await fake.wait_for_requests_async(seen + 1)
        if moment == "mid-stream":
            await daemon.wait_for(lambda trial=trial: daemon.text("c1").count("tok") >= 3 * (trial + 1))
        cancels = [daemon.send_request("chat/cancel", {"chatId": "c1"})[1] for _ in range(2)]
        await asyncio.wait_for(asyncio.wait([answer, *cancels]), 5)
        if not await asyncio.to_thread(request.wait_closed, 1.0):
            open_streams.append(trial)
    end = usage(daemon, fake)
    assert open_streams == [], f"streams left open in trials {open_streams}: before {describe(start)}, after {describe(end)}"
