"""Per-token CPU at a real model's pace: the figure that matters (issue 13 / 15).

A model server produces tens of tokens a second on a CPU and a few hundred on a GPU. The fake
streams one chat at 50, 500 and 1000 tokens/s (each token its own NDJSON line and HTTP
chunk, as Ollama sends them) for a few seconds, and the relay's CPU time over the turn is
read from /proc/<pid>/task/*/schedstat (nanoseconds, every thread: the store's writer and
the worker threads count too), after a first turn that warms the relay up. Reported: CPU µs
per token (the turn's own start and end included), and the share of one core the relay used
while streaming at that pace. At a slow pace every token is an event-loop wake-up, a socket
read and a pipe write of its own, which costs far more than parsing it. Beside them, the
floor of the HTTP path: the same stream read by httpx and `json` alone, batched as the
daemon batches (httpx_reader.py), and the whole stream read at once from a full socket.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from common import MODEL, goal, log

RATES = (50, 500, 1000)  # tokens per second the fake sends
SECONDS = 4.0  # of streaming per rate (3 in a quick run)


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of `pid`, in nanoseconds."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # a thread that ended meanwhile
    return total


def paced_run(b: Any, relay: str, rate: int, seconds: float, model: str) -> dict[str, Any]:
    n = int(rate * seconds)
    proc, _ = b.start(relay)
    b.warm_up(proc)
    b.fake.script({"kind": "text", "tokens": ["x"] * n, "delay": 1 / rate})
    b.wait_quiet()
    cpu0 = cpu_ns(proc.pid)
    _, waiter = proc.request("chat/start", {"chatId": "p", "prompt": "go", "model": model})
    answer = proc.wait(waiter, seconds * 10 + 30)
    cpu = (cpu_ns(proc.pid) - cpu0) / 1e9
    elapsed = answer.at - waiter.sent_at
    chat = proc.chats["p"]
    if chat.text() != "x" * n or chat.violations:
        b.problem(f"{relay} paced {rate}/s: delivered text not intact ({chat.chars} of {n} chars)")
    b.finish(relay, proc, f"paced {rate}/s")
    return {"tokens": n, "elapsed_s": elapsed, "achieved_tokens_per_s": n / elapsed,
            "cpu_us_per_token": cpu / n * 1e6, "core_share": cpu / elapsed, "notifications": chat.notifications}


READER = Path(__file__).with_name("httpx_reader.py")
DAEMON_HOLD_S = 0.02  # the daemon's READ_INTERVAL_S (server/ollama_chatd/pacing.py)


def reader_run(b: Any, rate: int, seconds: float) -> dict[str, Any]:
    """The same paced stream read by httpx and `json` alone, batched as the daemon batches
    (bench/httpx_reader.py): what any relay on the required HTTP path pays at this pace,
    before it sends anything."""
    n = int(rate * seconds)
    b.fake.reset()
    b.fake.script({"kind": "text", "tokens": ["x"] * n, "delay": 1 / rate})
    b.wait_quiet()
    done = subprocess.run([sys.executable, str(READER), b.fake.url, MODEL, "--hold", str(DAEMON_HOLD_S)],
                          capture_output=True, text=True, env=b.env, timeout=seconds * 10 + 30)
    if done.returncode:
        b.problem(f"httpx reader at {rate}/s failed: {done.stderr.strip()[-500:]}")
        return {"tokens": n, "achieved_tokens_per_s": 0.0, "cpu_us_per_token": float("nan"), "core_share": float("nan")}
    read = json.loads(done.stdout)
    if read["tokens"] != n:
        b.problem(f"httpx reader at {rate}/s: read {read['tokens']} of {n} tokens")
    return {"tokens": n, "achieved_tokens_per_s": n / read["elapsed_s"], "cpu_us_per_token": read["cpu_s"] / n * 1e6,
            "core_share": read["cpu_s"] / read["elapsed_s"]}


READER_ROW = "httpx + json alone"


CHATS, CHATS_RATE = 32, 100  # concurrent chats at a model's pace: a busy vLLM batch


def many_paced_run(b: Any, relay: str, seconds: float) -> dict[str, Any]:
    """32 chats started at once, each streamed at 100 tokens/s: when does each get its
    first token, and what does relaying them all cost? (The flood in throughput.py asks
    the same under a load no model server makes.)"""
    per_chat = int(CHATS_RATE * seconds)
    proc, _ = b.start(relay)
    b.warm_up(proc)
    b.fake.script(*[{"kind": "text", "tokens": ["x"] * per_chat, "delay": 1 / CHATS_RATE} for _ in range(CHATS)])
    b.wait_quiet()
    cpu0 = cpu_ns(proc.pid)
    sent, waiters = proc.start_chats([{"chatId": f"m{i}", "prompt": "go", "model": MODEL} for i in range(CHATS)])
    answers = [proc.wait(waiter, seconds * 10 + 30) for _, waiter in waiters]
    elapsed = max(answer.at for answer in answers) - sent
    cpu = (cpu_ns(proc.pid) - cpu0) / 1e9
    chats = [proc.chats[f"m{i}"] for i in range(CHATS)]
    if any(chat.text() != "x" * per_chat or chat.violations for chat in chats):
        b.problem(f"{relay} {CHATS} paced chats: delivered text not intact")
    first_tokens = sorted((chat.first_at - sent) * 1e3 for chat in chats if chat.first_at)
    b.finish(relay, proc, f"{CHATS} paced chats")
    return {"first_token_median_ms": statistics.median(first_tokens), "first_token_max_ms": first_tokens[-1],
            "core_share": cpu / elapsed}


FLOOR_TOKENS = 1_000  # about 110 KB: all of it fits in the loopback socket's buffers


def library_floor(tokens: int = FLOOR_TOKENS, rounds: int = 20) -> float:
    """CPU µs per token that httpx and `json` alone spend on Ollama's stream, read at
    once from a socket that already holds all of it: the least any relay built on them
    can spend per token, however it batches (issue 13 has every request go through
    httpx; one HTTP chunk per token is Ollama's wire format). The best of `rounds`."""
    line = json.dumps({"model": MODEL, "created_at": "2026-12-07T01:00:00.000000Z",
                       "message": {"role": "assistant", "content": "x"}, "done": False},
                      separators=(",", ":")).encode() + b"\n"
    body = b"%x\r\n%s\r\n" % (len(line), line) * tokens + b"0\r\n\r\n"

    async def read_all() -> float:
        sent = asyncio.Event()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            await writer.drain()
            sent.set()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api/chat"
        async with server, httpx.AsyncClient() as client:
            best = float("inf")
            for _ in range(rounds):
                async with client.stream("POST", url, content=b"{}") as response:
                    await sent.wait()
                    sent.clear()
                    started = time.process_time()
                    partial = b""  # a read can end inside a chunk
                    async for piece in response.aiter_raw():
                        *lines, partial = (partial + piece).split(b"\n")
                        for line in lines:
                            json.loads(line)
                    best = min(best, time.process_time() - started)
            return best / tokens * 1e6

    return asyncio.run(read_all())


def measure(b: Any) -> dict[str, Any]:
    seconds = 3.0 if b.quick else SECONDS
    runs = 1 if b.quick else 3
    out: dict[str, Any] = {"rates": list(RATES), "seconds": seconds, "relays": {}}
    out["library_floor_us_per_token"] = floor = library_floor()
    log(f"paced: httpx + json alone, all chunks buffered: {floor:.1f} us CPU/token "
        f"({floor * max(RATES) / 1e6:.2%} of a core at {max(RATES)} tokens/s)")
    for relay in b.relays:
        out["relays"][relay] = _at_each_rate(relay, lambda rate: paced_run(b, relay, rate, seconds, MODEL), runs)
    out["reader"] = _at_each_rate(READER_ROW, lambda rate: reader_run(b, rate, seconds), runs)
    out["many"] = {"chats": CHATS, "rate": CHATS_RATE, "relays": {}}
    for relay in b.relays:
        samples = [many_paced_run(b, relay, seconds) for _ in range(runs)]
        out["many"]["relays"][relay] = summary = _medians(samples)
        log(f"paced {relay:13s} {CHATS} chats at {CHATS_RATE} tok/s: first token median "
            f"{summary['first_token_median_ms']:.0f} ms, slowest {summary['first_token_max_ms']:.0f} ms, "
            f"{summary['core_share']:.1%} of a core")
    return out


def _at_each_rate(name: str, run: Callable[[int], dict[str, Any]], runs: int) -> dict[str, Any]:
    """`run` at each rate, `runs` times: the medians, by rate."""
    per_rate = {}
    for rate in RATES:
        per_rate[str(rate)] = summary = _medians([run(rate) for _ in range(runs)])
        log(f"paced {name:13s} {rate:5d} tok/s asked, {summary['achieved_tokens_per_s']:6.0f} achieved: "
            f"{summary['cpu_us_per_token']:6.1f} us CPU/token, {summary['core_share']:.2%} of a core")
    return per_rate


def _medians(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over repeated runs."""
    return {key: statistics.median(sample[key] for sample in samples) for key in samples[0]}


# ----------------------------------------------------------------------------- report

GOAL_CORE_SHARE = 0.01  # of one core, at 1,000 tokens/s (issue 15, part 4)


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    relays = r["paced"]["relays"]
    fastest = str(max(r["paced"]["rates"]))
    share = relays.get("daemon", {}).get(fastest, {}).get("core_share")
    anchors = [f"{relay} {per_rate[fastest]['core_share']:.1%}" for relay, per_rate in relays.items() if relay != "daemon"]
    if reader := r["paced"].get("reader"):
        anchors.append(f"{READER_ROW} at the same pace, batched as the daemon, {reader[fastest]['core_share']:.1%}")
    if (floor := r["paced"].get("library_floor_us_per_token")) is not None:
        anchors.append(f"{READER_ROW} with the whole stream already buffered {floor * int(fastest) / 1e6:.1%}")
    return [goal(4, "n/a" if share is None else f"{share:.1%} of a core", ", ".join(anchors) or "n/a",
                 None if share is None else share <= GOAL_CORE_SHARE)]


def _floor(paced: dict[str, Any]) -> list[str]:
    """What the HTTP path issue 13 requires costs by itself, measured in the same run."""
    fastest, slowest = str(max(paced["rates"])), str(min(paced["rates"]))
    reader, floor = paced.get("reader"), paced.get("library_floor_us_per_token")
    daemon = paced["relays"].get("daemon")
    if not (reader and daemon and floor is not None):
        return []
    buffered = floor * int(fastest) / 1e6
    below = reader[fastest]["core_share"] > GOAL_CORE_SHARE and buffered > GOAL_CORE_SHARE
    return [
        "**The floor under the goal.** Two readers that do nothing but read the stream bound what any relay "
        "on the HTTP path issue 13 requires (every request through httpx) can spend. httpx and `json` alone, "
        "reading the same paced stream and batched as the daemon batches (bench/httpx_reader.py, nothing sent "
        f"anywhere; the last row below), use {reader[fastest]['core_share']:.1%} of a core at {int(fastest):,} "
        f"tokens/s, against the daemon's {daemon[fastest]['core_share']:.1%}, and "
        f"{reader[slowest]['core_share']:.1%} at {slowest} tokens/s, against {daemon[slowest]['core_share']:.1%}: "
        "at a model's pace a token costs what its socket read costs (the event loop's wake-up, anyio's, "
        "httpcore's and h11's read path), and the daemon's own work (events, notifications, their framing "
        "and writing) is the difference between the two rows. With the whole stream already buffered in the "
        f"socket, so that no read waits, httpx and `json` still spend {floor:.1f} µs per token "
        f"(`library_floor` in bench/paced.py): {buffered:.1%} of a core at {int(fastest):,} tokens/s however "
        "long the batches. "
        + (f"So the {GOAL_CORE_SHARE:.0%} goal is below what that path can reach on this machine." if below else ""),
        ""]


def section(r: dict[str, Any]) -> list[str]:
    """CPU per token at a model's pace (bench/paced.py): the figure that matters."""
    paced = r.get("paced")
    if not paced:
        return []
    rates = paced["rates"]
    L = ["## CPU at a model's pace", "",
         f"One chat streamed by the fake at {', '.join(str(x) for x in rates)} tokens/s (a model on a CPU makes "
         "tens a second, on a GPU a few hundred), each token its own NDJSON line and HTTP chunk, for "
         f"{paced['seconds']:g} s, after a warm-up turn. CPU of every thread of the relay over the turn "
         "(/proc/<pid>/task/*/schedstat). At such a pace every token is an event-loop wake-up, a socket read "
         "and a pipe write of its own in the baselines: that, not parsing, is what a token costs. "
         "The daemon holds each socket read's pieces 20 ms "
         "(server/ollama_chatd/pacing.py), so one wake-up, socket read and notification carries the "
         "tokens that arrived meanwhile: one notification per 20 ms (it was two: a wait placed before the "
         "next read sent each batch's first token alone). A read that waited 10 ms or more for its token is "
         "not held: tokens that far apart would not batch, and the hold cost each a second wake-up (at 50 "
         "tokens/s, 3.3% of a core with it, 2.4% without, in paired runs). What a 20 ms cycle still costs, from py-spy (`record "
         "--native -r 500`) on the daemon at 1,000 tokens/s before that change: of the event loop's busy "
         "samples, httpx/httpcore/h11 handing out each token as its own HTTP chunk 35% (h11 `next_event` "
         "alone 19%), the pipe write of the notification 12% and its framing 7%, parsing the NDJSON lines "
         "9%, turning chunks into events and notifications 10%; the store's writer thread under 1%. Most "
         "of it is per token in libraries (one HTTP chunk per token is Ollama's wire format), which "
         "pacing does not reduce.", ""]
    L += _floor(paced)
    L += [
         "| Relay | " + " | ".join(f"{x}/s: achieved | µs/token | share of a core" for x in rates) + " |",
         "|---|" + "---:|---:|---:|" * len(rates)]
    rows = dict(paced["relays"])
    if reader := paced.get("reader"):
        rows[f"{READER_ROW} (reads only, batched as the daemon)"] = reader
    for relay, per_rate in rows.items():
        cells = []
        for x in rates:
            v = per_rate[str(x)]
            cells += [f"{v['achieved_tokens_per_s']:,.0f}", f"{v['cpu_us_per_token']:,.0f}", f"{v['core_share']:.1%}"]
        L.append(f"| {relay} | " + " | ".join(cells) + " |")
    L.append("")
    if many := paced.get("many"):
        L += [f"**{many['chats']} chats at once, each at {many['rate']} tokens/s** (a busy batch on a vLLM server; "
              "the flood of the relay section asks the same under a load no model server makes): when each chat's "
              "first token arrived, counted from the write of all the `chat/start`s, and the relay's CPU while they "
              "streamed.", "",
              "| Relay | first token, median (ms) | slowest first token (ms) | share of a core |",
              "|---|---:|---:|---:|"]
        for relay, v in many["relays"].items():
            L.append(f"| {relay} | {v['first_token_median_ms']:.0f} | {v['first_token_max_ms']:.0f} | {v['core_share']:.1%} |")
        L.append("")
    return L

