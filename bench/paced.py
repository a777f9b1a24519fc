"""Per-token CPU at a real model's pace: the figure that matters (issue 13 / 15).

A model server produces tens of tokens a second on a CPU and a few hundred on a GPU. The fake
streams one chat at 50, 500 and 1000 tokens/s (each token its own NDJSON line and HTTP
chunk, as Ollama sends them) for a few seconds, and the relay's CPU time over the turn is
read from /proc/<pid>/task/*/schedstat (nanoseconds, every thread: the store's writer and
the worker threads count too), after a first turn that warms the relay up. Reported: CPU µs
per token (the turn's own start and end included), and the share of one core the relay used
while streaming at that pace. At a slow pace every token is an event-loop wake-up, a socket
read and a pipe write of its own, which costs far more than parsing it.
"""

from __future__ import annotations

import os
import statistics
from typing import Any

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
    b.fake.reset()
    # A first turn opens the connection to the fake and loads what a turn loads lazily:
    # an editor's daemon has done so long before, so it is not counted.
    b.fake.script({"kind": "text", "tokens": ["warm", "up"]})
    proc.wait(proc.request("chat/start", {"chatId": "w", "prompt": "go", "model": model})[1], 30)
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


def bench_paced(b: Any, relays: list[str], model: str, log: Any) -> dict[str, Any]:
    seconds = 3.0 if b.cfg.get("runs", 5) < 5 else SECONDS
    runs = 1 if b.cfg.get("runs", 5) < 5 else 3
    out: dict[str, Any] = {"rates": list(RATES), "seconds": seconds, "relays": {}}
    for relay in relays:
        per_rate = {}
        for rate in RATES:
            samples = [paced_run(b, relay, rate, seconds, model) for _ in range(runs)]
            summary = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
            per_rate[str(rate)] = summary
            log(f"paced {relay:13s} {rate:5d} tok/s asked, {summary['achieved_tokens_per_s']:6.0f} achieved: "
                f"{summary['cpu_us_per_token']:6.1f} us CPU/token, {summary['core_share']:.2%} of a core")
        out["relays"][relay] = per_rate
    return out
