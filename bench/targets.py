"""The relay's targets of issue #7, each with the figure that decides it (docs/performance.md's first table)."""

from __future__ import annotations

from typing import Any

RELAYS = ["daemon", "naive", "ollama-python"]
LABEL = {"daemon": "ollama-chatd", "naive": "naive relay", "ollama-python": "ollama-python relay"}
MODE_LABEL = {"paced": "paced stream (~1k tok/s)", "flood": "flood (as fast as the fake writes)",
              "paused": "flood, client not reading"}

# The targets of issue #7.
TARGET_FIRST_TOKEN_MS = 2.0
TARGET_CANCEL_MS = 10.0
TARGET_SPAWN_MS = 150.0
TARGET_RSS_MIB = 60.0


def targets(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the figure that decides it."""
    out = []
    # Throughput against the naive relay is no target any more (issue 13): the fake floods
    # far faster than any model, and the figure that matters is the CPU at a model's pace.
    tp = r.get("throughput")
    if tp:
        one = tp["one_chat"]
        d = one["daemon"]["tokens_per_s"]
        many = tp["many_chats"]["daemon"]
        md = many["aggregate_tokens_per_s"]
        ms_, ds = many.get("streaming_tokens_per_s"), one["daemon"].get("streaming_tokens_per_s")
        streaming = f"; while all stream: {ms_ / ds:.2f}x ({ms_:,.0f} vs {ds:,.0f})" if ms_ and ds else ""
        out.append({"target": f"{tp['chats']} chats: aggregate >= one chat",
                    "figure": f"{md:,.0f} vs {d:,.0f} tokens/s ({md / d:.2f}x){streaming}", "ok": md >= d})
        starved = many["chats_without_token_at_first_done"]
        out.append({"target": f"{tp['chats']} chats: none starves (every chat has tokens flowing before the first one finishes)",
                    "figure": (f"{starved:g} of {tp['chats']} chats had no token yet when the first finished "
                               f"(median of runs); slowest first token {many['first_token_max_ms']:,.0f} ms, "
                               f"longest silence of a chat {many['longest_silence_ms']:,.0f} ms"),
                    "ok": starved == 0})
    ft = r.get("first_token")
    if ft:
        over = ft["daemon"]["overhead_over_upstream_ms"]
        out.append({"target": f"First token <= {TARGET_FIRST_TOKEN_MS:g} ms over the upstream's",
                    "figure": f"+{over:.2f} ms (median)", "ok": over <= TARGET_FIRST_TOKEN_MS})
    cx = r.get("cancel", {}).get("daemon")
    if cx:
        for mode in ("paced", "flood", "paused"):
            worst_answer, worst_close = [], []
            for how in ("chat/cancel", "$/cancelRequest"):
                s = cx.get(how, {}).get(mode)
                if not s:
                    continue
                if "answer_ms" in s:
                    worst_answer.append(s["answer_ms"]["p99"])
                if "close_ms" in s:
                    worst_close.append(s["close_ms"]["p99"])
            if not worst_close:
                continue
            worst = max(worst_answer + worst_close)
            fig = f"p99 upstream closed {max(worst_close):.1f} ms"
            if worst_answer:
                fig = f"p99 answered {max(worst_answer):.1f} ms, " + fig
            else:
                fig += " (the answer cannot be read while paused; see below)"
            out.append({"target": f"Cancel answered and upstream dropped <= {TARGET_CANCEL_MS:g} ms p99: {MODE_LABEL[mode]}",
                        "figure": fig + " (worst of both methods)", "ok": worst <= TARGET_CANCEL_MS})
    sp = r.get("spawn")
    if sp:
        v = sp["daemon"]["spawn_to_initialize_ms"]["median"]
        out.append({"target": f"Spawn to initialize result <= {TARGET_SPAWN_MS:g} ms",
                    "figure": f"{v:.0f} ms (median)", "ok": v <= TARGET_SPAWN_MS})
    if tp:
        rss = tp["one_chat"]["daemon"]["rss_kib"] / 1024
        out.append({"target": f"RSS after a {tp['tokens']:,}-token session <= {TARGET_RSS_MIB:g} MiB",
                    "figure": f"{rss:.1f} MiB (median)", "ok": rss <= TARGET_RSS_MIB})
    return out

