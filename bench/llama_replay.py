"""A chat's requests replayed against a real llama.cpp server: prompt tokens it evaluates per turn.

llama-server (scripts/setup/30-llama-server.sh: SmolLM2-135M, one thread, one slot) keeps the
previous prompt's KV cache and, with `cache_prompt`, evaluates only what follows the longest
common prefix. Each request is sent as the daemon's OpenAI-compatible backend would send its
messages, asking for a single token: the reply's `timings.prompt_n` is what was evaluated
again, `prompt_n + cache_n` the prompt's real size in tokens. (SmolLM2's chat template ignores
tool definitions, so they are not sent.)

Prompt processing on this machine runs at about 100 tokens/s, so the real server gets a
smaller chat than the fake (a 1,024-token window, ~60-token prompts) to stay within minutes.
"""

from __future__ import annotations

import json
import statistics
import sys
import urllib.request
from typing import Any

from common import ROOT, log

sys.path.insert(0, str(ROOT / "tests"))

PARTS = ROOT / ".real-parts"


def available() -> bool:
    return (PARTS / "llama-server" / "bin" / "llama-server").exists() and (PARTS / "smollm2.gguf").exists()


def ask(root: str, body: dict[str, Any]) -> dict[str, Any]:
    """One request for a single token; llama-server's timings of it."""
    messages = [{"role": m["role"], "content": m.get("content", "")} for m in body["messages"]]
    data = json.dumps({"model": "smollm2", "messages": messages, "max_tokens": 1, "temperature": 0,
                       "cache_prompt": True}).encode()
    request = urllib.request.Request(f"{root}/v1/chat/completions", data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as answer:
        return json.load(answer)["timings"]


def replay(root: str, requests: list[dict[str, Any]], from_turn: int) -> dict[str, Any]:
    """The requests from turn `from_turn` (from 1) on, in order; figures for those after it (the
    first one only fills the cache, as its predecessors would have)."""
    turns = []
    for turn, body in enumerate(requests, start=1):
        if turn < from_turn:
            continue
        timings = ask(root, body)
        turns.append({"turn": turn, "evaluated": timings["prompt_n"], "cached": timings.get("cache_n") or 0,
                      "prompt_ms": timings["prompt_ms"]})
    after = [t for t in turns if t["turn"] > from_turn]
    evaluated = sum(t["evaluated"] for t in after)
    size = sum(t["evaluated"] + t["cached"] for t in after)
    return {"turns": turns, "measured_turns": len(after),
            "evaluated_share": evaluated / size if size else None,
            "evaluated_per_turn": statistics.fmean(t["evaluated"] for t in after) if after else None,
            "prompt_tokens_per_turn": size / len(after) if after else None,
            "prompt_s_per_turn": statistics.fmean(t["prompt_ms"] for t in after) / 1000 if after else None,
            "max_prompt_tokens": max(t["evaluated"] + t["cached"] for t in turns)}


def measure(b: Any, policies: dict[str, list[dict[str, Any]]], first_filled_turn: int | None,
            ctx_size: int) -> dict[str, Any]:
    """Replay each policy's requests (a fresh server each, so no policy inherits the other's cache)."""
    if not available():
        log("prefix: no llama-server in .real-parts/ (run scripts/setup/30-llama-server.sh); real-server part skipped")
        return {"skipped": "no llama-server in .real-parts/ (scripts/setup/30-llama-server.sh)"}
    from llama_server import LlamaServer

    out: dict[str, Any] = {"ctx_size": ctx_size, "first_filled_turn": first_filled_turn, "policies": {},
                           "chat_turns": len(next(iter(policies.values())))}
    for policy, requests in policies.items():
        b.wait_quiet()
        server = LlamaServer.start(context=ctx_size)
        try:
            result = replay(server.root, requests, first_filled_turn or 1)
        finally:
            server.stop()
        result["ctx_size"] = ctx_size
        out["policies"][policy] = result
        log(f"prefix, llama-server, {policy:11s}: {result['evaluated_per_turn']:.0f} of "
            f"{result['prompt_tokens_per_turn']:.0f} prompt tokens evaluated per turn "
            f"({result['evaluated_share']:.0%}), {result['prompt_s_per_turn']:.2f} s of prompt processing per turn")
    return out


def section(real: dict[str, Any] | None) -> list[str]:
    if not real:
        return []
    if "skipped" in real:
        return [f"The real-server replay was skipped: {real['skipped']}.", ""]
    any_policy = next(iter(real["policies"].values()))
    L = ["**With a real llama.cpp server.** A smaller chat (its own recording through the daemon: "
         f"{real['chat_turns']} turns, a {real['ctx_size']:,}-token window; prompt processing runs at about "
         "100 tokens/s here) replayed request by request against llama-server (SmolLM2-135M, one thread, "
         "`cache_prompt`), one token asked each time. *Evaluated* is its `timings.prompt_n`, the prompt tokens it "
         "processed again; *prompt size* is `prompt_n + cache_n`. Averages over the "
         f"{any_policy['measured_turns']} turns after the window first filled (turn {real['first_filled_turn']}, "
         "replayed first to fill the cache as its predecessors would have). The daemon's OpenAI-compatible backend "
         "reads the same `timings` from llama-server's stream and logs them at INFO.", "",
         "| Policy | prompt size (tokens/turn) | evaluated (tokens/turn) | share evaluated | prompt processing (s/turn) "
         "| largest prompt (tokens) |",
         "|---|---:|---:|---:|---:|---:|"]
    for policy, label in (("daemon", "daemon (halve when full)"), ("drop_oldest", "drop oldest (anchor)")):
        s = real["policies"].get(policy)
        if s:
            L.append(f"| {label} | {s['prompt_tokens_per_turn']:,.0f} | {s['evaluated_per_turn']:,.0f} | "
                     f"{s['evaluated_share']:.0%} | {s['prompt_s_per_turn']:.2f} | {s['max_prompt_tokens']:,} |")
    return [*L, ""]
