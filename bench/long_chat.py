"""Issue 15, part 5: the daemon's own work per turn in a long chat, with the store on.

One chat of 500 turns (prompts and answers of ~100 tokens each, the chat's window 8,192
tokens) through the daemon over its stdio against the fake Ollama, the chat store in the
bench's scratch folder. Each turn's *request leg* runs from writing `chat/start` to the fake
having the whole HTTP request (its `received_at`; both clocks CLOCK_MONOTONIC): the daemon's
work from reading `chat/start` to writing the request, plus the pipe and the loopback. The
anchor, measured in the same run: the bench posting the daemon's own last request directly to
the fake (`direct`), the loopback leg any client pays for a request of that size. The daemon's
work is the request leg minus that anchor.

The history grows by two messages a turn while the window holds a bounded part of it, so the
work must not grow once the window is full: turn 500 is compared with the turns right after
the window first filled.
"""

from __future__ import annotations

import http.client
import json
import statistics
import time
from typing import Any
from urllib.parse import urlsplit

from common import MODEL, goal, log, median, ms
from fakeproc import text
from rig import Bench

TURNS = 500
PROMPT = "Please look at this part of the code and tell me what it does, line by line. " * 5
ANSWER = "It reads the file, splits it into lines and counts the words of each one. " * 5
GOAL_MS = 5.0
GOAL_GROWTH_MS = 0.5  # turn 500 over the turns after the window filled: noise, not growth


def direct_leg(url: str, body: dict[str, Any], fake: Any, samples: int = 20) -> float:
    """Median seconds from writing `body` as a POST to the fake having all of it."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    data = json.dumps(body).encode()
    legs = []
    try:
        for _ in range(samples):
            fake.reset()
            fake.script(text(["ok"]))
            t0 = time.monotonic()
            conn.request("POST", "/api/chat", body=data, headers={"Content-Type": "application/json"})
            conn.getresponse().read()
            legs.append(fake.requests()[0]["received_at"] - t0)
    finally:
        conn.close()
    return statistics.median(legs)


def measure(b: Bench) -> dict[str, Any]:
    proc, _ = b.start("daemon")
    b.fake.reset()
    b.fake.script(*[text([f"{i}: ", *ANSWER.split(" ")]) for i in range(TURNS)])
    b.wait_quiet()
    sent = []
    with b.load(proc) as meter:
        for turn in range(1, TURNS + 1):
            _, waiter = proc.request("chat/start", {"chatId": "long", "prompt": f"{turn}. {PROMPT}", "model": MODEL})
            answer = proc.wait(waiter, 30)
            if answer.error:
                b.problem(f"long chat turn {turn}: {answer.error}")
                break
            sent.append(waiter.sent_at)
    requests = b.fake.requests()
    legs = [rec["received_at"] - at for rec, at in zip(requests, sent, strict=True)]
    sizes = [len(rec["body"]["messages"]) for rec in requests]
    last_body = requests[-1]["body"]
    b.finish("daemon", proc, "long chat")
    anchor = direct_leg(b.fake.url, last_body, b.fake)
    history = [1 + 2 * (t - 1) for t in range(1, len(legs) + 1)]  # messages of the chat when turn t is sent
    filled = next((i for i, (n, h) in enumerate(zip(sizes, history, strict=True)) if n < h), len(legs))
    after_fill = legs[filled:filled + 20]
    last = legs[-20:]
    out = {"turns": len(legs), "window_filled_turn": filled + 1, "direct_leg_ms": ms(anchor),
           "turn_1_ms": ms(legs[0]), "turns_2_21_ms": ms(median(legs[1:21])),
           "after_fill_ms": ms(median(after_fill)), "last_20_ms": ms(median(last)), "turn_500_ms": ms(legs[-1]),
           "messages_sent_last": sizes[-1], "history_messages_last": history[-1] + 1,
           "legs_ms": [round(ms(x), 3) for x in legs], "other_load_cores": meter.foreign_cores}
    out["own_work_last_20_ms"] = out["last_20_ms"] - out["direct_leg_ms"]
    out["growth_ms"] = out["last_20_ms"] - out["after_fill_ms"]
    log(f"long chat: request leg turn 1 {out['turn_1_ms']:.2f} ms, turns 2-21 {out['turns_2_21_ms']:.2f} ms, "
        f"after the window filled (turn {out['window_filled_turn']}) {out['after_fill_ms']:.2f} ms, "
        f"turns {len(legs) - 19}-{len(legs)} {out['last_20_ms']:.2f} ms; direct client {out['direct_leg_ms']:.2f} ms")
    return out


# ----------------------------------------------------------------------------- report


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    c = r["long_chat"]
    ok = c["own_work_last_20_ms"] <= GOAL_MS and c["growth_ms"] <= GOAL_GROWTH_MS
    return [goal("5. Long chats", f"daemon's work per turn <= {GOAL_MS:g} ms at turn {c['turns']}, not growing with "
                 "the history beyond the window",
                 f"{c['own_work_last_20_ms']:.2f} ms at turns {c['turns'] - 19}-{c['turns']} (request leg "
                 f"{c['last_20_ms']:.2f} ms); {c['growth_ms']:+.2f} ms over the turns after the window filled "
                 f"(turn {c['window_filled_turn']}); turn 1 {c['turn_1_ms']:.2f} ms",
                 f"the same request posted directly: {c['direct_leg_ms']:.2f} ms", ok)]


def section(r: dict[str, Any]) -> list[str]:
    c = r["long_chat"]
    return ["## Long chats (issue 15, part 5)", "",
            f"One chat of {c['turns']} turns (prompts and answers of ~100 tokens, the tiny model's 8,192-token "
            "window), the chat store on. *Request leg*: `chat/start` written -> the fake Ollama has the whole HTTP "
            "request (the daemon's work, the stdin pipe and the loopback); *direct*: the daemon's last request "
            "posted by the bench itself, the loopback any client pays. Medians of 20 turns.", "",
            "| turn 1 (new chat) | turns 2-21 | 20 turns after the window filled | last 20 turns | direct (anchor) "
            "| daemon's own work, last 20 | messages sent / in the chat at the end |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {c['turn_1_ms']:.2f} ms | {c['turns_2_21_ms']:.2f} ms | {c['after_fill_ms']:.2f} ms (from turn "
            f"{c['window_filled_turn']}) | {c['last_20_ms']:.2f} ms | {c['direct_leg_ms']:.2f} ms | "
            f"{c['own_work_last_20_ms']:.2f} ms | {c['messages_sent_last']} / {c['history_messages_last']} |", ""]
