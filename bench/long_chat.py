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
from paced import cpu_ns
from rig import Bench

TURNS = 500
SAMPLES = 20  # turns measured of each kind, interleaved
PROMPT = "Please look at this part of the code and tell me what it does, line by line. " * 5
ANSWER = "It reads the file, splits it into lines and counts the words of each one. " * 5
GOAL_MS = 5.0
# Growth: the daemon's CPU per turn at turn 500 over a chat whose window just filled (CPU, which
# the machine's load does not stretch as it stretches wall time); below this it is noise.
GOAL_GROWTH_SHARE = 0.1


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


def measured_turn(b: Bench, proc: Any, chat_id: str, turn: int) -> tuple[float, dict[str, Any], float]:
    """One turn; its request leg (seconds), the request the fake received, and the daemon's CPU
    seconds (every thread) from writing `chat/start` to reading its answer."""
    b.fake.reset()
    b.fake.script(text([f"{turn}: ", *ANSWER.split(" ")]))
    cpu0 = cpu_ns(proc.pid)
    _, waiter = proc.request("chat/start", {"chatId": chat_id, "prompt": f"{turn}. {PROMPT}", "model": MODEL})
    answer = proc.wait(waiter, 30)
    cpu = (cpu_ns(proc.pid) - cpu0) / 1e9
    if answer.error:
        b.problem(f"long chat {chat_id} turn {turn}: {answer.error}")
    request = b.fake.requests()[0]
    return request["received_at"] - waiter.sent_at, request["body"], cpu


def grow(b: Bench, proc: Any, chat_id: str, turns: range) -> None:
    """Turns not measured: the chat's history grows."""
    b.fake.reset()
    b.fake.script(*[text([f"{turn}: ", *ANSWER.split(" ")]) for turn in turns])
    for turn in turns:
        answer = proc.wait(proc.request("chat/start", {"chatId": chat_id, "prompt": f"{turn}. {PROMPT}",
                                                       "model": MODEL})[1], 30)
        if answer.error:
            b.problem(f"long chat {chat_id} turn {turn}: {answer.error}")


def resumed_leg(b: Bench) -> float:
    """The long chat continued by a new daemon (the editor reopened): its history comes from
    the store, and the window is chosen again from the whole history (once)."""
    proc, _ = b.start("daemon")
    measured_turn(b, proc, "warm-up-2", 1)  # the connection and lazy imports, as before
    leg, _, _ = measured_turn(b, proc, "long", TURNS + 1)
    b.finish("daemon", proc, "long chat resumed")
    return leg


def measure(b: Bench) -> dict[str, Any]:
    """Three chats in one daemon, measured in interleaved rounds so that they share the machine's
    moments: new chats (turn 1), the long chat (its last turns up to 500), and a chat whose window
    has just filled (its history no longer than the window)."""
    proc, _ = b.start("daemon")
    cold, _, _ = measured_turn(b, proc, "warm-up", 1)  # the session's first turn: connection, lazy imports
    grow(b, proc, "long", range(1, TURNS - SAMPLES + 1))
    filled_turn = 0
    while True:  # until a request holds less than the whole history (no system prompt: 2 messages a turn)
        filled_turn += 1
        if len(measured_turn(b, proc, "filled", filled_turn)[1]["messages"]) < 2 * filled_turn - 1:
            break
    legs: dict[str, list[float]] = {"new": [], "long": [], "filled": []}
    cpu: dict[str, list[float]] = {kind: [] for kind in legs}
    b.wait_quiet()
    with b.load(proc) as meter:
        for i in range(SAMPLES):
            for kind, chat_id, turn in (("new", f"new-{i}", 1), ("long", "long", TURNS - SAMPLES + 1 + i),
                                        ("filled", "filled", filled_turn + 1 + i)):
                leg, body, seconds = measured_turn(b, proc, chat_id, turn)
                legs[kind].append(leg)
                cpu[kind].append(seconds)
                if kind == "long":
                    last_body = body
    b.finish("daemon", proc, "long chat")
    resumed = resumed_leg(b)
    anchor = direct_leg(b.fake.url, last_body, b.fake)
    out = {"turns": TURNS, "samples": SAMPLES, "cold_first_turn_ms": ms(cold), "window_filled_turn": filled_turn,
           "direct_leg_ms": ms(anchor), "resumed_ms": ms(resumed), "messages_sent_last": len(last_body["messages"]),
           "history_messages_last": 2 * TURNS, "other_load_cores": meter.foreign_cores,
           **{f"{kind}_ms": ms(median(values)) for kind, values in legs.items()},
           **{f"{kind}_cpu_ms": ms(median(values)) for kind, values in cpu.items()},
           "samples_ms": {kind: [round(ms(x), 3) for x in values] for kind, values in legs.items()}}
    out["own_work_ms"] = out["long_ms"] - out["direct_leg_ms"]
    out["growth_ms"] = out["long_ms"] - out["filled_ms"]
    out["cpu_growth_ms"] = out["long_cpu_ms"] - out["filled_cpu_ms"]
    log(f"long chat: request leg, median of {SAMPLES}: turn 1 of a new chat {out['new_ms']:.2f} ms, turns "
        f"{TURNS - SAMPLES + 1}-{TURNS} {out['long_ms']:.2f} ms, a chat whose window just filled (turn "
        f"{filled_turn}) {out['filled_ms']:.2f} ms; the request posted directly {out['direct_leg_ms']:.2f} ms "
        f"(the session's first turn {out['cold_first_turn_ms']:.1f} ms; the long chat's next turn in a new "
        f"daemon, from the store, {out['resumed_ms']:.1f} ms); daemon CPU per whole turn: new chat "
        f"{out['new_cpu_ms']:.2f} ms, long {out['long_cpu_ms']:.2f} ms, just filled {out['filled_cpu_ms']:.2f} ms")
    return out


# ----------------------------------------------------------------------------- report


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    c = r["long_chat"]
    ok = c["own_work_ms"] <= GOAL_MS and c["cpu_growth_ms"] <= GOAL_GROWTH_SHARE * c["filled_cpu_ms"]
    return [goal(5, f"{c['own_work_ms']:.2f} ms at turns {c['turns'] - c['samples'] + 1}-{c['turns']} (request leg "
                 f"{c['long_ms']:.2f} ms); over a chat whose window just filled: {c['growth_ms']:+.2f} ms of request "
                 f"leg, {c['cpu_growth_ms']:+.2f} ms of CPU per turn ({c['long_cpu_ms']:.2f} vs "
                 f"{c['filled_cpu_ms']:.2f} ms); turn 1 of a new chat {c['new_ms']:.2f} ms",
                 f"the same request posted directly: {c['direct_leg_ms']:.2f} ms", ok)]


def section(r: dict[str, Any]) -> list[str]:
    c = r["long_chat"]
    first = c["turns"] - c["samples"] + 1
    return ["## Long chats (issue 15, part 5)", "",
            f"One daemon, the chat store on, prompts and answers of ~100 tokens, the tiny model's 8,192-token "
            f"window. A chat is grown to {first - 1} turns; then {c['samples']} rounds interleave turn 1 of a new "
            f"chat, the long chat's turns {first}-{c['turns']} ({c['history_messages_last']:,} messages at the "
            f"end, {c['messages_sent_last']} of them sent), and a chat whose window has just filled (from turn "
            f"{c['window_filled_turn']}), so that all three share the machine's moments. *Request leg*: "
            "`chat/start` written -> the fake Ollama has the whole HTTP request (the daemon's work, the stdin pipe "
            "and the loopback); *direct*: the long chat's last request posted by the bench itself, the loopback "
            "any client pays. Medians.", "",
            f"| median of {c['samples']} | turn 1 of a new chat | a chat whose window just filled (from turn "
            f"{c['window_filled_turn']}) | the long chat, turns {first}-{c['turns']} |",
            "|---|---:|---:|---:|",
            f"| request leg | {c['new_ms']:.2f} ms | {c['filled_ms']:.2f} ms | {c['long_ms']:.2f} ms |",
            f"| daemon CPU per whole turn | {c['new_cpu_ms']:.2f} ms | {c['filled_cpu_ms']:.2f} ms | "
            f"{c['long_cpu_ms']:.2f} ms |", "",
            f"The long chat's last request posted directly took {c['direct_leg_ms']:.2f} ms, so the daemon's own work "
            f"at turn {c['turns']} is {c['own_work_ms']:.2f} ms. The session's first turn took "
            f"{c['cold_first_turn_ms']:.1f} ms, turn {c['turns'] + 1} in a new daemon {c['resumed_ms']:.1f} ms. Other "
            f"processes used {c['other_load_cores']:.2f} cores during the interleaved rounds.", "",
            f"*The session's first turn* opens the connection to Ollama and loads what a turn loads lazily. *Turn "
            f"{c['turns'] + 1} in a new daemon*: the long chat continued after a restart (the editor reopened), once "
            "that daemon has run a turn of another chat: the history is read from the store and the window chosen "
            "again from the whole history, once. *CPU per whole turn*: the daemon's CPU time, every thread (the "
            "store's writer included), from writing `chat/start` to reading its answer (the answer's ~100 tokens "
            "streamed included): a measure of work that the machine's load does not stretch, so the goal's *not "
            f"growing* is judged on it (turn 500 within {GOAL_GROWTH_SHARE:.0%} of the just-filled chat).", ""]
