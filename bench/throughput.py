"""Relay throughput against a fake that floods: one chat, and many concurrent chats (a stress test).

Each relay is measured after one warm-up turn (`Bench.warm_up`): the lazy loading of a
fresh daemon's first turn is measured apart, in first_token."""

from __future__ import annotations

import itertools
import random
import time
from typing import Any

from common import MODEL, log, median, ms
from fakeproc import bulk
from rig import RELAYS, Bench


def one_chat_run(b: Bench, relay: str, n: int) -> dict[str, Any]:
    proc, _ = b.start(relay)
    b.warm_up(proc)
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
    b.warm_up(proc)
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


def measure(b: Bench) -> dict[str, Any]:
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

