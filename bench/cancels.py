"""Cancel latency: to the answer and to the fake seeing the upstream connection close, on a paced
stream, a flood, and a flood the client has stopped reading."""

from __future__ import annotations

import random
import time
from typing import Any

from client import RelayProcess
from common import MODEL, log, ms, pct, wait_until
from fakeproc import endless
from rig import RELAYS, Bench

TOKEN = "tok "
MODES = {
    # name: (fake delay between tokens, client paused?)
    "paced": (0.001, False),   # ~1,000 tokens/s, a very fast real model
    "flood": (0.0, False),     # as fast as the fake can write: the daemon's loop is saturated
    "paused": (0.0, True),     # flood, and the client stopped reading until the pipe filled
}


def one_cancel(b: Bench, proc: RelayProcess, relay: str, i: int, how: str, mode: str) -> dict[str, Any] | None:
    delay, paused = MODES[mode]
    chat_id = f"k{i}"
    prompt = f"cancel {i}"
    b.fake.reset()
    b.fake.script(endless(TOKEN, delay))
    msg_id, start = proc.request("chat/start", {"chatId": chat_id, "prompt": prompt, "model": MODEL})
    chat = proc.chats[chat_id]
    if not wait_until(lambda: chat.first_at is not None, 10):
        b.problem(f"{relay} cancel {i}: no first token")
        return None
    rec: dict[str, Any] = {"how": how, "mode": mode}
    if paused:
        proc.pause_reading()
        cap = proc.pipe_capacity()
        # Full: less than one page left (small frames cannot fill the last bytes of a page).
        full = wait_until(lambda: proc.pipe_bytes() >= cap - 4096, 2)
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


def measure(b: Bench) -> dict[str, Any]:
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

