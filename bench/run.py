#!/usr/bin/env python3
"""The ollama-chatd performance benchmark (issue #7).

    .venv/bin/python bench/run.py                    # full run (about 4-5 minutes on 2 cores)
    .venv/bin/python bench/run.py --quick            # a smoke run (about a minute), smaller and fewer
    .venv/bin/python bench/run.py --daemon-rev HEAD  # measure a committed revision, not the work tree
    .venv/bin/python bench/report.py                 # re-render the docs from bench/results/latest.json

It spawns the fake Ollama (tests/fake_ollama.py) in its own process and, in the same run,
three relays, each as a subprocess spoken to over its real stdio by bench/client.py:

- `daemon`: `python -m ollama_chatd serve`;
- `naive`: bench/naive_relay.py (httpx `aiter_lines` -> `json.loads` -> one framed
  `chat/token` per token, `write` + `flush`);
- `ollama-python`: bench/ollama_python_relay.py (the official `ollama` AsyncClient).

It measures the relay's CPU per token at a model's pace (50, 500, 1000 tokens/s: the figure
that matters, bench/paced.py), relay throughput against a fake that floods (1 chat and 32
concurrent chats: a stress test, no target), first-token latency over the
upstream's own, cancel latencies (to the answer and to the fake seeing the connection close,
also while the client has stopped reading stdout), spawn-to-`initialize`-result time and RSS,
writes bench/results/latest.json, and renders docs/performance.md and docs/performance.png
(bench/report.py). Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import http.client
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from client import RelayProcess  # noqa: E402
from fakeproc import FakeProcess, bulk, endless, text  # noqa: E402
from paced import bench_paced  # noqa: E402
from tools_scale import bench_tools_scale  # noqa: E402

PY = sys.executable
MODEL = "tiny"
RELAYS: dict[str, list[str]] = {
    "daemon": [PY, "-m", "ollama_chatd", "serve"],
    "naive": [PY, str(HERE / "naive_relay.py")],
    "ollama-python": [PY, str(HERE / "ollama_python_relay.py")],
}
BASELINE = "naive"
LOG_DIR = HERE / "results" / "logs"


# ----------------------------------------------------------------------------- settings


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return dict(runs=2, tokens=20_000, chats=32, spawns=3, first_token_turns=15, cancels=30,
                    baseline_cancels=10, pause_hold_s=0.05, pause_memory_s=0.5)
    return dict(runs=5, tokens=100_000, chats=32, spawns=10, first_token_turns=50, cancels=200,
                baseline_cancels=40, pause_hold_s=0.05, pause_memory_s=2.0)


# ----------------------------------------------------------------------------- helpers


def pct(values: list[float], q: float) -> float | None:
    """Percentile with linear interpolation (q in 0..100)."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def daemon_source(rev: str | None) -> Path:
    """The `server/` folder whose daemon is measured: the work tree's, or `rev`'s (extracted
    with `git archive` into a temporary folder, so edits in progress do not disturb a run)."""
    if rev is None:
        return ROOT / "server"
    import tempfile
    dest = Path(tempfile.mkdtemp(prefix="chatd-bench-"))
    archive = subprocess.run(["git", "archive", rev, "server"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "server"


CLK_TCK = os.sysconf("SC_CLK_TCK")
QUIET_CORES = 0.15  # other processes may use this much CPU before a measurement starts
QUIET_BUDGET_S = 90.0  # total time a run may spend waiting for the machine to be quiet


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def process_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class LoadMeter:
    """How much CPU *other* processes (not the benchmark, its fake or its relays) took."""

    def __init__(self, bench: Bench, pids: list[int]) -> None:
        self.bench = bench
        self.pids = pids

    def _ours(self) -> float:
        t = os.times()
        return t.user + t.system + sum(process_cpu_seconds(p) for p in [self.bench.fake.pid, *self.pids])

    def __enter__(self) -> LoadMeter:
        self.t0, self.busy0, self.ours0 = time.monotonic(), busy_seconds(), self._ours()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        foreign = (busy_seconds() - self.busy0) - (self._ours() - self.ours0)
        self.foreign_cores = max(foreign, 0.0) / wall if wall > 0 else 0.0
        self.bench.foreign.append(self.foreign_cores)


class Bench:
    def __init__(self, cfg: dict[str, Any], server_dir: Path | None = None) -> None:
        import tempfile
        self.cfg = cfg
        self.fake = FakeProcess()
        server_dir = server_dir or ROOT / "server"
        # The relays run in a scratch workspace, and the daemon keeps its chat store there
        # too: a benchmark must not fill the user's own chat history.
        self.scratch = Path(tempfile.mkdtemp(prefix="chatd-bench-"))
        self.workspace = self.scratch / "workspace"
        self.state_dir = self.scratch / "state"
        self.workspace.mkdir()
        self.env = {**os.environ, "OLLAMA_HOST": self.fake.url, "OLLAMA_CHATD_MODEL": MODEL,
                    "XDG_DATA_HOME": str(self.scratch / "data"), "XDG_STATE_HOME": str(self.scratch / "xdg-state"),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(server_dir), os.environ.get("PYTHONPATH")]))}
        # Byte-compiled as an installed package is (pip compiles at install): with
        # PYTHONDONTWRITEBYTECODE set, as on some machines, every spawn would compile them again.
        for source in (server_dir / "ollama_chatd", HERE):
            compileall.compile_dir(source, quiet=1)
        self.problems: list[str] = []  # integrity failures: any of these makes the run invalid
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._spawned = 0
        self.foreign: list[float] = []  # other processes' CPU (cores) during each measurement
        self.quiet_waited = 0.0

    def wait_quiet(self) -> None:
        """Before a measurement: wait (within a budget) until other processes leave the CPU alone."""
        while self.quiet_waited < QUIET_BUDGET_S:
            b0, o0, t0 = busy_seconds(), self._own_cpu(), time.monotonic()
            time.sleep(0.25)
            wall = time.monotonic() - t0
            other = ((busy_seconds() - b0) - (self._own_cpu() - o0)) / wall
            if other < QUIET_CORES:
                return
            self.quiet_waited += wall
            time.sleep(0.25)
            self.quiet_waited += 0.25

    def _own_cpu(self) -> float:
        t = os.times()
        return t.user + t.system + process_cpu_seconds(self.fake.pid)

    def load(self, *procs: RelayProcess) -> LoadMeter:
        return LoadMeter(self, [p.pid for p in procs])

    def spawn(self, relay: str) -> RelayProcess:
        self._spawned += 1
        return RelayProcess(RELAYS[relay], env=self.env, cwd=str(self.workspace),
                            stderr_path=str(LOG_DIR / f"{relay}-{self._spawned}.stderr"))

    def start(self, relay: str, settle: bool = True) -> tuple[RelayProcess, float]:
        """Spawn and initialize; return the process and spawn-to-initialize-result seconds.

        With `settle`, return once the relay has finished starting: the daemon answers
        `initialize` before it has loaded, and a measurement must not count the loading.
        """
        proc = self.spawn(relay)
        answer = proc.initialize({"ollamaHost": self.fake.url, "model": MODEL, "stateDir": str(self.state_dir)})
        answer.result  # noqa: B018 - raises on an error answer
        if settle:
            proc.wait_idle()
        return proc, answer.at - proc.spawned_at

    def finish(self, relay: str, proc: RelayProcess, what: str) -> None:
        self.check_process(relay, proc, what)
        proc.close()

    def check_process(self, relay: str, proc: RelayProcess, what: str) -> None:
        for v in proc.violations:
            self.problem(f"{relay} {what}: {v}")
        for chat in proc.chats.values():
            for v in chat.violations[:3]:
                self.problem(f"{relay} {what} chat {chat.chat_id}: {v}")

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)
        log(f"INTEGRITY PROBLEM: {text}")

    def stop(self) -> None:
        import shutil
        self.fake.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)


# ----------------------------------------------------------------------------- 1. spawn


def bench_spawn(b: Bench) -> dict[str, Any]:
    """Spawn -> `initialize` result, spawn -> first token of a chat sent right after, and RSS then."""
    out: dict[str, Any] = {}
    samples: dict[str, list[float]] = {r: [] for r in RELAYS}
    to_token: dict[str, list[float]] = {r: [] for r in RELAYS}
    rss: dict[str, list[int]] = {r: [] for r in RELAYS}
    for _ in range(b.cfg["spawns"]):
        for relay in RELAYS:
            b.fake.reset()
            b.fake.script(text(TINY))
            b.wait_quiet()
            proc, dt = b.start(relay, settle=False)  # an editor does not wait either
            samples[relay].append(dt)
            # an editor that asks at once: the first chat/start right after initialize
            _, waiter = proc.request("chat/start", {"chatId": "s", "prompt": "hi", "model": MODEL})
            proc.wait(waiter, 30)
            rss[relay].append(proc.rss_kib()["VmRSS"])  # all loaded by now
            first = proc.chats["s"].first_at
            if first is None:
                b.problem(f"{relay} spawn: no token for the first chat")
            else:
                to_token[relay].append(first - proc.spawned_at)
            b.finish(relay, proc, "spawn")
    for relay in RELAYS:
        out[relay] = {"spawn_to_initialize_ms": {"median": ms(median(samples[relay])),
                                                 "min": ms(min(samples[relay])), "max": ms(max(samples[relay])),
                                                 "samples": [ms(x) for x in samples[relay]]},
                      "spawn_to_first_token_ms": ms(median(to_token[relay])),
                      "rss_after_first_chat_kib": median(rss[relay])}
        log(f"spawn {relay}: median {out[relay]['spawn_to_initialize_ms']['median']:.0f} ms "
            f"(first token of a chat sent right after: {out[relay]['spawn_to_first_token_ms']:.0f} ms), "
            f"RSS then {out[relay]['rss_after_first_chat_kib'] / 1024:.1f} MiB")
    return out


# ----------------------------------------------------------------------------- 2. throughput


def one_chat_run(b: Bench, relay: str, n: int) -> dict[str, Any]:
    proc, _ = b.start(relay)
    b.fake.reset()
    b.fake.script(bulk(n, "x"))
    b.wait_quiet()
    cpu0 = proc.cpu_seconds()
    bench_cpu0 = time.process_time()
    with b.load(proc) as meter:
        _, waiter = proc.request("chat/start", {"chatId": "c1", "prompt": "go", "model": MODEL})
        answer = proc.wait(waiter, 600)
    elapsed = answer.at - waiter.sent_at
    cpu = proc.cpu_seconds() - cpu0
    bench_cpu = time.process_time() - bench_cpu0
    chat = proc.chats["c1"]
    intact = chat.text() == "x" * n and chat.next_seq == chat.notifications and not chat.violations
    if not intact:
        b.problem(f"{relay} 1-chat: delivered text not intact ({chat.chars} of {n} chars, "
                  f"{chat.notifications} notifications, next seq {chat.next_seq})")
    if answer.error or (answer.msg["result"]["message"]["content"] != "x" * n):
        b.problem(f"{relay} 1-chat: bad answer {str(answer.msg)[:200]}")
    mem = proc.rss_kib()
    b.finish(relay, proc, "1-chat")
    return {"tokens_per_s": n / elapsed, "streaming_tokens_per_s": streaming_rate([chat]),
            "elapsed_s": elapsed, "notifications": chat.notifications,
            "tokens_per_notification": n / max(chat.notifications, 1), "relay_cpu_s": cpu,
            "relay_cpu_us_per_token": cpu / n * 1e6, "client_cpu_us_per_notification": bench_cpu / max(chat.notifications, 1) * 1e6,
            "rss_kib": mem["VmRSS"], "hwm_kib": mem["VmHWM"], "intact": intact,
            "other_load_cores": meter.foreign_cores}


def many_chats_run(b: Bench, relay: str, n_chats: int, per_chat: int) -> dict[str, Any]:
    proc, _ = b.start(relay)
    b.fake.reset()
    b.fake.script(*[bulk(per_chat, "x") for _ in range(n_chats)])
    params = [{"chatId": f"m{i}", "prompt": "go", "model": MODEL} for i in range(n_chats)]
    b.wait_quiet()
    cpu0 = proc.cpu_seconds()
    with b.load(proc) as meter:
        sent, waiters = proc.start_chats(params)
        answers = [proc.wait(w, 600) for _, w in waiters]
    cpu = proc.cpu_seconds() - cpu0
    end = max(a.at for a in answers)
    total = n_chats * per_chat
    chats = [proc.chats[p["chatId"]] for p in params]
    intact = True
    for chat, answer in zip(chats, answers, strict=True):
        ok = (chat.text() == "x" * per_chat and chat.next_seq == chat.notifications and not chat.violations
              and not answer.error)
        if not ok:
            intact = False
            b.problem(f"{relay} {n_chats}-chats: chat {chat.chat_id} not intact ({chat.chars}/{per_chat} chars)")
    done_at = [a.at - sent for a in answers]
    first_done = min(done_at)
    first_token = [(c.first_at - sent) if c.first_at else None for c in chats]

    def progress_at(chat, t_abs: float) -> float:
        return _chars_at(chat, t_abs) / per_chat

    progress_first_done = [progress_at(c, sent + first_done) for c in chats]
    silences = []
    for chat, answer in zip(chats, answers, strict=True):
        times = [sent] + [at for at, _ in chat.progress] + [answer.at]
        silences.append(max(b2 - a2 for a2, b2 in itertools.pairwise(times)))
    rates = [per_chat / d for d in done_at]
    jain = sum(rates) ** 2 / (len(rates) * sum(r * r for r in rates))
    b.finish(relay, proc, f"{n_chats}-chats")
    return {
        "aggregate_tokens_per_s": total / (end - sent), "streaming_tokens_per_s": streaming_rate(chats),
        "elapsed_s": end - sent,
        "notifications": sum(c.notifications for c in chats), "relay_cpu_us_per_token": cpu / total * 1e6,
        "first_token_max_ms": ms(max(x for x in first_token if x is not None)) if all(first_token) else None,
        "chats_without_token_at_first_done": sum(1 for p in progress_first_done if p == 0),
        "min_progress_at_first_done": min(progress_first_done),
        "first_done_ms": ms(first_done), "last_done_ms": ms(max(done_at)),
        "longest_silence_ms": ms(max(silences)), "jain_fairness": jain, "intact": intact,
        "other_load_cores": meter.foreign_cores,
    }


def streaming_rate(chats: list[Any]) -> float | None:
    """Characters (one per token here) per second while every one of `chats` streams:
    from the last first token to the first last token. The start and end of turns
    are left out: what remains is how fast the relay moves tokens, alone or shared."""
    start, end = max(c.first_at for c in chats), min(c.last_at for c in chats)
    if end <= start:
        return None
    return sum(_chars_at(c, end) - _chars_at(c, start) for c in chats) / (end - start)


def _chars_at(chat: Any, moment: float) -> int:
    got = 0
    for at, chars in chat.progress:
        if at > moment:
            break
        got = chars
    return got


def bench_throughput(b: Bench) -> dict[str, Any]:
    n, n_chats = b.cfg["tokens"], b.cfg["chats"]
    per_chat = n // n_chats
    one: dict[str, list] = {r: [] for r in RELAYS}
    many: dict[str, list] = {r: [] for r in RELAYS}
    for run in range(b.cfg["runs"]):
        order = list(RELAYS)
        random.shuffle(order)  # no relay always runs first (or last) in a round
        for relay in order:
            r1 = one_chat_run(b, relay, n)
            one[relay].append(r1)
            log(f"run {run + 1} {relay:13s} 1 chat: {r1['tokens_per_s']:9,.0f} tok/s "
                f"({r1['notifications']} notifications, {r1['relay_cpu_us_per_token']:.1f} us CPU/token, "
                f"RSS {r1['rss_kib'] / 1024:.1f} MiB)")
        for relay in order:
            rm = many_chats_run(b, relay, n_chats, per_chat)
            many[relay].append(rm)
            log(f"run {run + 1} {relay:13s} {n_chats} chats: {rm['aggregate_tokens_per_s']:9,.0f} tok/s aggregate "
                f"(first done {rm['first_done_ms']:.0f} ms, last {rm['last_done_ms']:.0f} ms, "
                f"min progress at first done {rm['min_progress_at_first_done']:.0%}, "
                f"longest silence {rm['longest_silence_ms']:.0f} ms)")

    def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
        keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        out = {k: median([r[k] for r in runs if r[k] is not None]) for k in keys}
        out["runs"] = runs
        out["intact"] = all(r["intact"] for r in runs)
        return out

    return {"tokens": n, "chats": n_chats, "tokens_per_chat": per_chat,
            "one_chat": {r: summarize(one[r]) for r in RELAYS},
            "many_chats": {r: summarize(many[r]) for r in RELAYS}}


# ----------------------------------------------------------------------------- 3. first token


class DirectClient:
    """The upstream's own first-token latency: a direct HTTP/1.1 keep-alive client in this
    process, timing from writing the POST to reading the first NDJSON chunk."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def first_token(self, prompt: str) -> tuple[float, float, bytes]:
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True})
        t0 = time.monotonic()
        self.conn.request("POST", "/api/chat", body=body, headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        first = resp.read1(65536)
        t1 = time.monotonic()
        rest = resp.read()
        return t0, t1, first + rest

    def close(self) -> None:
        self.conn.close()


TINY = ["Hi", " there", "!"]


def bench_first_token(b: Bench) -> dict[str, Any]:
    turns = b.cfg["first_token_turns"]
    out: dict[str, Any] = {}
    # The upstream's own, measured in between so both see the same machine state.
    direct = DirectClient(b.fake.url)
    direct_lat, direct_in = [], []
    b.fake.reset()
    b.wait_quiet()
    for i in range(5):  # warm-up
        b.fake.script(text(TINY))
        direct.first_token(f"warm {i}")
    for i in range(turns):
        b.fake.reset()
        b.fake.script(text(TINY))
        t0, t1, data = direct.first_token(f"direct {i}")
        rec = b.fake.requests()[0]
        direct_lat.append(t1 - t0)
        direct_in.append(rec["received_at"] - t0)
        if b'"Hi"' not in data:
            b.problem(f"direct client: unexpected reply {data[:120]!r}")
    direct.close()
    out["direct"] = {"first_token_ms": {"median": ms(median(direct_lat)), "p90": ms(pct(direct_lat, 90))},
                     "request_leg_ms": ms(median(direct_in)), "samples": [ms(x) for x in direct_lat]}
    log(f"first token, direct HTTP client: median {ms(median(direct_lat)):.3f} ms")

    for relay in RELAYS:
        proc, _ = b.start(relay)
        b.wait_quiet()
        lat, inbound, outbound, cold = [], [], [], None
        for i in range(turns + 1):
            b.fake.reset()
            b.fake.script(text(TINY))
            chat_id = f"ft{i}"
            _, waiter = proc.request("chat/start", {"chatId": chat_id, "prompt": f"turn {i}", "model": MODEL})
            answer = proc.wait(waiter, 30)
            chat = proc.chats[chat_id]
            if chat.text() != "".join(TINY) or answer.error:
                b.problem(f"{relay} first-token turn {i}: got {chat.text()!r} / {str(answer.msg)[:120]}")
                continue
            rec = b.fake.requests()[0]
            t = chat.first_at - waiter.sent_at
            if i == 0:
                cold = t  # first turn: the relay opens its upstream connection
                continue
            lat.append(t)
            inbound.append(rec["received_at"] - waiter.sent_at)
            outbound.append(chat.first_at - rec["received_at"])
        b.finish(relay, proc, "first-token")
        over = median(lat) - median(direct_lat)
        out[relay] = {
            "first_token_ms": {"median": ms(median(lat)), "p90": ms(pct(lat, 90)), "cold_first_turn": ms(cold)},
            "overhead_over_upstream_ms": ms(over),
            "request_leg_ms": ms(median(inbound)), "response_leg_ms": ms(median(outbound)),
            "samples": [ms(x) for x in lat],
        }
        log(f"first token, {relay}: median {ms(median(lat)):.3f} ms, over upstream {ms(over):.3f} ms "
            f"(request leg {ms(median(inbound)):.3f}, response leg {ms(median(outbound)):.3f}; "
            f"cold first turn {ms(cold):.1f} ms)")
    return out


# ----------------------------------------------------------------------------- 4. cancels


TOKEN = "tok "
MODES = {
    # name: (fake delay between tokens, client paused?)
    "paced": (0.001, False),   # ~1,000 tokens/s, a very fast real model
    "flood": (0.0, False),     # as fast as the fake can write: the daemon's loop is saturated
    "paused": (0.0, True),     # flood, and the client stopped reading until the pipe filled
}


def _wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.0005) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def one_cancel(b: Bench, proc: RelayProcess, relay: str, i: int, how: str, mode: str) -> dict[str, Any] | None:
    delay, paused = MODES[mode]
    chat_id = f"k{i}"
    prompt = f"cancel {i}"
    b.fake.reset()
    b.fake.script(endless(TOKEN, delay))
    msg_id, start = proc.request("chat/start", {"chatId": chat_id, "prompt": prompt, "model": MODEL})
    chat = proc.chats[chat_id]
    if not _wait_until(lambda: chat.first_at is not None, 10):
        b.problem(f"{relay} cancel {i}: no first token")
        return None
    rec: dict[str, Any] = {"how": how, "mode": mode}
    if paused:
        proc.pause_reading()
        cap = proc.pipe_capacity()
        # Full: less than one page left (small frames cannot fill the last bytes of a page).
        full = _wait_until(lambda: proc.pipe_bytes() >= cap - 4096, 2)
        rec["pipe_full"] = full
        rec["pipe_bytes"] = proc.pipe_bytes()
        time.sleep(random.uniform(0, 0.02))  # a random moment of the backed-up state
    else:
        time.sleep(random.uniform(0, 0.025))  # a random moment of the stream
    if how == "chat/cancel":
        cancel_id, cancel = proc.request("chat/cancel", {"chatId": chat_id})
        t_cancel = cancel.sent_at
    else:
        t_cancel = proc.notify("$/cancelRequest", {"id": msg_id})
        cancel = None
    t_resume = None
    if paused:
        time.sleep(b.cfg["pause_hold_s"])  # keep not reading a while: does the upstream drop meanwhile?
        closed_while_paused = (b.fake.requests()[0].get("closed_at") is not None)
        rec["pipe_bytes_at_resume"] = proc.pipe_bytes()
        t_resume = time.monotonic()
        proc.resume_reading()
        rec["closed_while_paused"] = closed_while_paused
    start_answer = proc.wait(start, 30)
    final = proc.wait(cancel, 30) if cancel is not None else start_answer
    # the fake notices the drop on its own loop; give it a moment to record it
    closed_at = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        reqs = b.fake.requests()
        if reqs and reqs[0].get("closed_at") is not None:
            closed_at = reqs[0]["closed_at"]
            if not reqs[0].get("client_dropped"):
                b.problem(f"{relay} cancel {i}: the fake finished instead of seeing a drop")
            break
        time.sleep(0.002)
    if closed_at is None:
        b.problem(f"{relay} cancel {i} ({how}, {mode}): the upstream connection was never closed")
    # integrity: text is whole tokens, seq contiguous (client checks), nothing after the answer (client checks)
    delivered = chat.text()
    if delivered != TOKEN * (len(delivered) // len(TOKEN)):
        b.problem(f"{relay} cancel {i}: delivered text is not whole tokens: ...{delivered[-40:]!r}")
    if how == "chat/cancel":
        res = start_answer.msg.get("result") or {}
        if res.get("stopReason") != "cancelled" or final.msg.get("result") != {"cancelled": True}:
            b.problem(f"{relay} cancel {i}: unexpected answers {str(start_answer.msg)[:100]} / {final.msg}")
        elif res["message"]["content"] != delivered:
            b.problem(f"{relay} cancel {i}: result content differs from the streamed text")
        if start_answer.at > final.at:
            b.problem(f"{relay} cancel {i}: chat/cancel answered before chat/start")
    elif (start_answer.error or {}).get("code") != -32800:
        b.problem(f"{relay} cancel {i}: expected -32800, got {str(start_answer.msg)[:120]}")
    rec["answer_ms"] = ms(final.at - t_cancel) if not paused else None
    rec["answer_after_resume_ms"] = ms(final.at - t_resume) if paused else None
    rec["close_ms"] = ms(closed_at - t_cancel) if closed_at is not None else None
    rec["tokens_before_cancel"] = chat.notifications
    return rec


def summarize_cancels(recs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(recs)}
    for key in ("answer_ms", "answer_after_resume_ms", "close_ms"):
        vals = [r[key] for r in recs if r.get(key) is not None]
        if vals:
            out[key] = {"p50": pct(vals, 50), "p99": pct(vals, 99), "max": max(vals), "n": len(vals)}
    if any("closed_while_paused" in r for r in recs):
        out["closed_while_paused"] = sum(1 for r in recs if r.get("closed_while_paused"))
        out["pipe_full"] = sum(1 for r in recs if r.get("pipe_full"))
    return out


def bench_cancels(b: Bench) -> dict[str, Any]:
    out: dict[str, Any] = {}
    plan = [("daemon", ["chat/cancel", "$/cancelRequest"], b.cfg["cancels"])]
    plan += [(r, ["$/cancelRequest"], b.cfg["baseline_cancels"]) for r in RELAYS if r != "daemon"]
    for relay, hows, n in plan:
        out[relay] = {}
        for mode in MODES:
            proc, _ = b.start(relay)
            recs: dict[str, list] = {h: [] for h in hows}
            b.wait_quiet()
            with b.load(proc) as meter:
                for i in range(n * len(hows)):
                    how = hows[i % len(hows)]  # interleaved, so both methods see the same conditions
                    rec = one_cancel(b, proc, relay, i, how, mode)
                    if rec is not None:
                        recs[how].append(rec)
            rss = proc.rss_kib()
            b.finish(relay, proc, f"cancel-{mode}")
            for how in hows:
                s = summarize_cancels(recs[how])
                s["rss_kib_after"] = rss["VmRSS"]
                s["other_load_cores"] = meter.foreign_cores
                s["samples"] = recs[how]
                out[relay].setdefault(how, {})[mode] = s
                msg = f"cancel {relay:13s} {how:15s} {mode:6s}:"
                if "answer_ms" in s:
                    msg += f" answer p50 {s['answer_ms']['p50']:.2f} p99 {s['answer_ms']['p99']:.2f} ms;"
                if "answer_after_resume_ms" in s:
                    msg += (f" answer after resume p50 {s['answer_after_resume_ms']['p50']:.2f} "
                            f"p99 {s['answer_after_resume_ms']['p99']:.2f} ms;")
                if "close_ms" in s:
                    msg += f" upstream closed p50 {s['close_ms']['p50']:.2f} p99 {s['close_ms']['p99']:.2f} ms"
                if "closed_while_paused" in s:
                    msg += f"; closed while paused {s['closed_while_paused']}/{s['n']} (pipe full {s['pipe_full']})"
                log(msg)
    return out


# ----------------------------------------------------------------------------- 5. memory while paused


def bench_paused_memory(b: Bench) -> dict[str, Any]:
    """RSS while the client reads nothing during a flood: the backlog must stay bounded."""
    out = {}
    hold = b.cfg["pause_memory_s"]
    for relay in ("daemon", "naive"):
        proc, _ = b.start(relay)
        b.fake.reset()
        b.fake.script(endless(TOKEN, 0.0))
        msg_id, start = proc.request("chat/start", {"chatId": "p", "prompt": "go", "model": MODEL})
        _wait_until(lambda proc=proc: proc.chats["p"].first_at is not None, 10)
        proc.pause_reading()
        before = proc.rss_kib()["VmRSS"]
        series = []
        t0 = time.monotonic()
        cpu0 = proc.cpu_seconds()
        while time.monotonic() - t0 < hold:
            time.sleep(hold / 10)
            series.append((round(time.monotonic() - t0, 3), proc.rss_kib()["VmRSS"]))
        cpu = proc.cpu_seconds() - cpu0
        proc.notify("$/cancelRequest", {"id": msg_id})
        proc.resume_reading()
        proc.wait(start, 30)
        b.finish(relay, proc, "paused-memory")
        out[relay] = {"hold_s": hold, "rss_kib_before": before, "rss_kib_after": series[-1][1],
                      "growth_kib": series[-1][1] - before, "series": series,
                      "cpu_share_while_paused": cpu / hold}
        log(f"paused {hold:.1f} s during a flood, {relay}: RSS {before / 1024:.1f} -> {series[-1][1] / 1024:.1f} MiB, "
            f"CPU {cpu / hold:.0%} of a core")
    return out


# ----------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next((int(line.split()[1]) for line in read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal")), 0)

    def version(pkg: str) -> str | None:
        try:
            from importlib import metadata
            return metadata.version(pkg)
        except Exception:  # noqa: BLE001
            return None

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "packages": {p: version(p) for p in ("pygls", "lsprotocol", "httpx", "httpcore", "h11", "ollama", "pydantic")},
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "server")),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


# ----------------------------------------------------------------------------- main


def _git_short(rev: str) -> str:
    return subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer and smaller runs (a smoke test)")
    parser.add_argument("--out", default=str(HERE / "results" / "latest.json"))
    parser.add_argument("--daemon-rev", metavar="REV",
                        help="measure the daemon of this git revision instead of the work tree's server/")
    parser.add_argument("--daemon-src", metavar="DIR",
                        help="measure the daemon package found in DIR (a server/ folder, e.g. a patched copy)")
    parser.add_argument("--no-report", action="store_true", help="do not render docs/performance.{md,png}")
    parser.add_argument("--report", action="store_true", help="render the docs even after a --quick run")
    parser.add_argument("--only", nargs="*",
                        choices=["spawn", "paced", "throughput", "first_token", "cancel", "paused_memory"],
                        help="run only these parts (the report needs all of them)")
    parser.add_argument("--relays", nargs="*", choices=list(RELAYS), help="the paced part measures only these relays")
    args = parser.parse_args(argv)
    cfg = settings(args.quick)
    command = ".venv/bin/python bench/run.py" + (" --quick" if args.quick else "")
    if args.daemon_rev:
        command += f" --daemon-rev {args.daemon_rev}"
    random.seed(7)
    t0 = time.monotonic()
    if args.daemon_src:
        command += f" --daemon-src {args.daemon_src}"
    b = Bench(cfg, Path(args.daemon_src).resolve() if args.daemon_src else daemon_source(args.daemon_rev))
    info = machine()
    if args.daemon_src:
        info["daemon_source"] = f"the package in {args.daemon_src}"
    elif args.daemon_rev:
        info["daemon_source"] = f"git {args.daemon_rev} ({_git_short(args.daemon_rev)})"
    else:
        info["daemon_source"] = f"work tree at {info['commit']}" + (" with uncommitted changes in server/" if info["dirty"] else "")
    results: dict[str, Any] = {"command": command, "quick": args.quick, "settings": cfg, "machine": info}
    log(f"fake Ollama at {b.fake.url} (pid {b.fake.pid}); settings {cfg}")
    parser_relays = args.relays or list(RELAYS)
    parts = {"spawn": bench_spawn, "paced": lambda b: bench_paced(b, parser_relays, MODEL, log),
             "throughput": bench_throughput, "first_token": bench_first_token,
             "cancel": bench_cancels, "paused_memory": bench_paused_memory,
             "tools_scale": lambda b: bench_tools_scale(args.quick)}
    try:
        for name, fn in parts.items():
            if args.only and name not in args.only:
                continue
            t = time.monotonic()
            results[name] = fn(b)
            log(f"{name} done in {time.monotonic() - t:.1f} s")
    finally:
        b.stop()
    results["problems"] = b.problems
    results["other_load"] = {"median_cores": median(b.foreign), "max_cores": max(b.foreign, default=None),
                             "quiet_wait_s": round(b.quiet_waited, 1)}
    results["duration_s"] = round(time.monotonic() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    log(f"results written to {out} ({results['duration_s']} s, {len(b.problems)} integrity problems)")
    if args.quick and not args.report:
        log("a --quick run does not replace docs/performance.{md,png} (add --report to force it)")
    elif not args.no_report and not args.only:
        import report
        md, png = report.render(results, ROOT / "docs")
        log(f"report: {md}, {png}")
    return 1 if b.problems else 0


if __name__ == "__main__":
    sys.exit(main())
