"""Issue 15, part 1: does a full window keep the prompt's prefix, so the model server's cache serves it?

Ollama and llama.cpp reuse their KV cache up to the first token that differs from the previous
request. A long chat of ~250-token prompts runs through the daemon over its stdio against the
fake Ollama, which records every request. After the window first fills, each request is
compared with its predecessor: the share of the predecessor (in characters of its messages,
system prompt included) that the request keeps as its prefix, with the tool definitions
byte-identical. The anchor is the policy the daemon had before (drop the oldest whole turn
until the history fits), applied by bench/windowing.py to the same history with the daemon's
own estimate.

Then both policies' requests are replayed against a real llama.cpp server (SmolLM2-135M, one
thread, `cache_prompt`), asking for one token each: its `timings.prompt_n` is the number of
prompt tokens it evaluated again, against the prompt's size (`prompt_n + cache_n`, the real
token count, which must stay within the window).
"""

from __future__ import annotations

import json
import random
import statistics
from typing import Any

import llama_replay
import windowing
from common import MODEL, goal, log
from fakeproc import text
from rig import Bench

TURNS = 60
NUM_CTX = 4096
PROMPT_CHARS = 1000  # ~250 tokens of English prose
REPLY_CHARS = 240
# The chat replayed against llama-server: small enough for its ~100 tokens/s of prompt processing.
REAL_TURNS, REAL_TURNS_QUICK = 24, 16
REAL_NUM_CTX = 1024
REAL_PROMPT_CHARS = 250
REAL_REPLY_CHARS = 120
REAL_MODEL = "plain"  # a fake model without tools: SmolLM2's template ignores them anyway
SYSTEM = "You are a careful assistant for a software project. Answer briefly and precisely."
RULES = "# Rules\n\n- Run the tests before saying a change works.\n- Keep functions short.\n"
GOAL_KEPT = 0.7
WORDS = ("the", "module", "request", "window", "cache", "prefix", "token", "reply", "server", "daemon",
         "history", "turn", "model", "prompt", "editor", "chat", "tool", "file", "line", "change",
         "keeps", "reads", "writes", "sends", "drops", "asks", "shows", "counts", "measures", "finds")


def prose(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)


def record_chat(b: Bench, model: str, turns: int, num_ctx: int, prompt_chars: int,
                reply_chars: int) -> list[dict[str, Any]]:
    """The /api/chat request bodies of one chat of `turns` turns, in order."""
    rng = random.Random(15)
    rules = b.workspace / "AGENTS.md"  # the project's rules, read by the daemon at every turn
    rules.write_text(RULES)
    proc, _ = b.start("daemon", workspace=True)
    b.fake.reset()
    b.fake.script(*[text([f"{word} " for word in prose(rng, reply_chars).split(" ")]) for _ in range(turns)])
    for turn in range(turns):
        params: dict[str, Any] = {"chatId": f"prefix-{num_ctx}", "prompt": f"Turn {turn}: {prose(rng, prompt_chars)}",
                                  "model": model, "options": {"num_ctx": num_ctx}}
        if turn == 0:
            params["system"] = SYSTEM
        answer = proc.wait(proc.request("chat/start", params)[1], 60)
        if answer.error:
            b.problem(f"prefix turn {turn}: {answer.error}")
            break
    bodies = [r["body"] for r in b.fake.requests() if r["path"] == "/api/chat"]
    b.finish("daemon", proc, "prefix")
    rules.unlink()
    return bodies


def kept_messages(previous: dict[str, Any], current: dict[str, Any]) -> int:
    """How many of `previous`'s messages `current` starts with."""
    kept = 0
    for mine, theirs in zip(previous["messages"], current["messages"], strict=False):
        if mine != theirs:
            break
        kept += 1
    return kept


def prefix_share(previous: dict[str, Any], current: dict[str, Any], *, with_tools: bool = True) -> float:
    """The share of `previous` (characters of its tool definitions and messages, whole
    messages compared) that `current` starts with. The tool definitions count as the prompt's
    first part (chat templates render them with the system prompt, before the history);
    nothing is kept when they differ."""
    if previous.get("tools") != current.get("tools"):
        return 0.0
    tools = len(json.dumps(previous.get("tools"))) if with_tools and previous.get("tools") else 0
    sizes = [len(json.dumps(m)) for m in previous["messages"]]
    return (tools + sum(sizes[: kept_messages(previous, current)])) / (tools + sum(sizes))


def stability(requests: list[dict[str, Any]], history_sizes: list[int], num_ctx: int) -> dict[str, Any]:
    """Prefix kept from request to request once the window first filled (a request holding
    less than the whole history), and the largest request's estimated size."""
    filled = next((i for i, (r, n) in enumerate(zip(requests, history_sizes, strict=True))
                   if len(r["messages"]) < n), None)
    pairs = [] if filled is None else [(requests[i - 1], requests[i]) for i in range(filled + 1, len(requests))]
    after = [prefix_share(*pair) for pair in pairs]
    messages_only = [prefix_share(*pair, with_tools=False) for pair in pairs]
    estimates = [windowing.estimate(r) for r in requests]
    return {"first_filled_turn": None if filled is None else filled + 1, "requests_after_fill": len(after),
            "kept_share_mean": statistics.fmean(after) if after else None,
            "kept_share_min": min(after, default=None),
            "messages_kept_share_mean": statistics.fmean(messages_only) if after else None,
            "fixed_estimated_tokens": windowing.estimate({**requests[0], "messages": requests[0]["messages"][:1]}),
            "requests_keeping_none": sum(1 for pair in pairs if kept_messages(*pair) <= 1),  # the system message
            "trims": sum(1 for s in after if s < 1.0),
            "max_estimated_tokens": max(estimates), "num_ctx": num_ctx,
            "tools_identical": all(r.get("tools") == requests[0].get("tools") for r in requests),
            "system_identical": all(r["messages"][0] == requests[0]["messages"][0] for r in requests),
            "rules_in_system": RULES.strip() in requests[0]["messages"][0]["content"]}


def both_policies(b: Bench, model: str, turns: int, num_ctx: int, prompt_chars: int,
                  reply_chars: int) -> dict[str, Any] | None:
    """One chat recorded through the daemon, and the same turns under the former policy."""
    bodies = record_chat(b, model, turns, num_ctx, prompt_chars, reply_chars)
    if len(bodies) != turns:
        b.problem(f"prefix: {len(bodies)} requests recorded for {turns} turns")
        return None
    history = windowing.history(bodies)
    old = windowing.drop_oldest(history, bodies, num_ctx)
    sizes = [len(windowing.until_turn(history, t)) for t in range(turns)]
    return {"requests": {"daemon": bodies, "drop_oldest": old},
            "daemon": stability(bodies, sizes, num_ctx), "drop_oldest": stability(old, sizes, num_ctx)}


def measure(b: Bench) -> dict[str, Any]:
    chat = both_policies(b, MODEL, TURNS, NUM_CTX, PROMPT_CHARS, REPLY_CHARS)
    if chat is None:
        return {}
    out: dict[str, Any] = {"turns": TURNS, "num_ctx": NUM_CTX, "prompt_chars": PROMPT_CHARS,
                           "daemon": chat["daemon"], "drop_oldest": chat["drop_oldest"]}
    for policy in ("daemon", "drop_oldest"):
        s = out[policy]
        log(f"prefix {policy:11s}: window first filled at turn {s['first_filled_turn']}; after it, "
            f"{s['kept_share_mean']:.2f} of each predecessor kept on average, {s['requests_keeping_none']} of "
            f"{s['requests_after_fill']} requests kept none of the history; largest request ~{s['max_estimated_tokens']} tokens")
    small = both_policies(b, REAL_MODEL, REAL_TURNS_QUICK if b.quick else REAL_TURNS, REAL_NUM_CTX, REAL_PROMPT_CHARS,
                          REAL_REPLY_CHARS)
    if small is not None:
        out["llama_server"] = llama_replay.measure(b, small["requests"], small["daemon"]["first_filled_turn"],
                                                   REAL_NUM_CTX)
    return out


# ----------------------------------------------------------------------------- report


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    p = r["prefix"]
    if not p:
        return []
    d, old = p["daemon"], p["drop_oldest"]
    fits = d["max_estimated_tokens"] <= p["num_ctx"]
    policies = (p.get("llama_server") or {}).get("policies", {})
    real, real_old = policies.get("daemon"), policies.get("drop_oldest")
    if real:
        fits = fits and real["max_prompt_tokens"] <= real["ctx_size"]
    figure = (f"{d['kept_share_mean']:.2f} kept on average over the {d['requests_after_fill']} requests after the "
              f"window filled (turn {d['first_filled_turn']}); largest request ~{d['max_estimated_tokens']:,} of "
              f"{p['num_ctx']:,} tokens")
    if real:
        figure += (f"; llama-server re-evaluated {real['evaluated_share']:.0%} of the prompt tokens per turn, "
                   f"{real['prompt_s_per_turn']:.1f} s (largest prompt {real['max_prompt_tokens']:,} of "
                   f"{real['ctx_size']:,} tokens)")
    anchor = (f"drop the oldest turn each time: {old['kept_share_mean']:.2f} kept, "
              f"{old['requests_keeping_none']} of {old['requests_after_fill']} requests kept none of the history")
    if real_old:
        anchor += f"; llama-server re-evaluated {real_old['evaluated_share']:.0%}, {real_old['prompt_s_per_turn']:.1f} s"
    return [goal(1, figure, anchor, d["kept_share_mean"] is not None and d["kept_share_mean"] >= GOAL_KEPT and fits)]


def section(r: dict[str, Any]) -> list[str]:
    p = r["prefix"]
    d = p["daemon"]
    L = ["## Prompt prefix (issue 15, part 1)", "",
         f"One chat of {p['turns']} turns, each prompt ~{p['prompt_chars'] // 4} tokens ({p['prompt_chars']:,} "
         f"characters), a {p['num_ctx']:,}-token window, through the daemon against the fake Ollama, which "
         "records every request. The workspace has an `AGENTS.md`, which the daemon reads at every turn and "
         f"sends in the system message (found there: {d['rules_in_system']}). *Kept* is the share of each request's predecessor (characters of its tool "
         "definitions and messages; nothing if the tool definitions changed) that the request starts with, over "
         "the requests after the window first filled; *messages only* leaves the tool definitions out. The tool "
         f"definitions and the system prompt take ~{d['fixed_estimated_tokens']:,} of the window's tokens (the "
         "daemon's estimate), so a trim to half the room left for the history comes every few turns. *Drop "
         "oldest* is the policy the daemon had before, applied to the same history with the daemon's own size "
         "estimate.", "",
         "| Policy | window first full at turn | requests after | kept, mean | kept, min | messages only, mean "
         "| requests keeping none of the history | trims | largest request (estimated tokens) | tools identical "
         "| system identical |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for policy, label in (("daemon", "daemon (halve when full)"), ("drop_oldest", "drop oldest (anchor)")):
        s = p[policy]
        L.append(f"| {label} | {s['first_filled_turn']} | {s['requests_after_fill']} | {s['kept_share_mean']:.2f} | "
                 f"{s['kept_share_min']:.2f} | {s['messages_kept_share_mean']:.2f} | {s['requests_keeping_none']} | "
                 f"{s['trims']} | {s['max_estimated_tokens']:,} | {s['tools_identical']} | {s['system_identical']} |")
    L.append("")
    L.extend(llama_replay.section(p.get("llama_server")))
    return L
