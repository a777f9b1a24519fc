"""docs/performance.png: the relay's figures (issue #7) at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from targets import LABEL, RELAYS, TARGET_CANCEL_MS, TARGET_FIRST_TOKEN_MS, TARGET_RSS_MIB, TARGET_SPAWN_MS


def plot(r: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"daemon": "#2b6cb0", "naive": "#a0aec0", "ollama-python": "#ed8936"}
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5))
    fig.suptitle(f"ollama-chatd performance ({r['machine']['cores']} cores, {r['machine']['cpu']}, "
                 f"Python {r['machine']['python']}; {r['command']})", fontsize=11)

    # (a) throughput
    ax = axes[0][0]
    tp = r.get("throughput")
    if tp:
        groups = [("1 chat", tp["one_chat"], "tokens_per_s"),
                  (f"{tp['chats']} chats (aggregate)", tp["many_chats"], "aggregate_tokens_per_s")]
        width = 0.27
        for gi, (_, data, key) in enumerate(groups):
            base = data["naive"][key]
            for ri, relay in enumerate(RELAYS):
                v = data[relay][key]
                x = gi + (ri - 1) * width
                ax.bar(x, v / 1000, width, color=colors[relay], label=LABEL[relay] if gi == 0 else None)
                ax.text(x, v / 1000, f"{v / base:.2f}x", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(groups)), [g[0] for g in groups])
        ax.set_ylabel("thousand tokens/s delivered intact")
        ax.set_title("Relay throughput (ratio to the naive relay)")
        ax.set_ylim(0, ax.get_ylim()[1] * 1.25)
        ax.legend(fontsize=8, loc="upper right", ncol=3)

    # (b) cancel latency, daemon
    ax = axes[0][1]
    cx = r.get("cancel", {})
    if cx.get("daemon"):
        labels, p50, p99, cols = [], [], [], []
        for how in ("chat/cancel", "$/cancelRequest"):
            for mode in ("paced", "flood", "paused"):
                s = cx["daemon"].get(how, {}).get(mode)
                if not s:
                    continue
                short = {"chat/cancel": "chat/cancel", "$/cancelRequest": "$/cancel"}[how]
                if "answer_ms" in s:
                    labels.append(f"{short}\n{mode}\nanswer")
                    p50.append(s["answer_ms"]["p50"])
                    p99.append(s["answer_ms"]["p99"])
                    cols.append("#2b6cb0")
                labels.append(f"{short}\n{mode}\nclose")
                p50.append(s["close_ms"]["p50"])
                p99.append(s["close_ms"]["p99"])
                cols.append("#2c7a7b")
        xs = range(len(labels))
        ax.bar(xs, p99, 0.7, color=cols, alpha=0.35, label="p99")
        ax.bar(xs, p50, 0.7, color=cols, label="p50")
        ax.axhline(TARGET_CANCEL_MS, color="red", ls="--", lw=1, label=f"target {TARGET_CANCEL_MS:g} ms")
        ax.set_xticks(list(xs), labels, fontsize=6.5)
        ax.set_ylim(0, max(max(p99) * 1.15, TARGET_CANCEL_MS * 1.5))
        ax.set_ylabel("ms after the cancel was written")
        ax.set_title("Daemon cancel latency (answer / upstream closed)")
        ax.legend(fontsize=8)

    # (c) cancel while not reading: daemon vs baselines
    ax = axes[0][2]
    if cx:
        names, vals50, vals99 = [], [], []
        for relay in RELAYS:
            s = cx.get(relay, {}).get("$/cancelRequest", {}).get("paused")
            if s and "close_ms" in s:
                names.append(LABEL[relay])
                vals50.append(s["close_ms"]["p50"])
                vals99.append(s["close_ms"]["p99"])
        xs = range(len(names))
        ax.bar(xs, vals99, 0.6, color=[colors[k] for k in RELAYS[:len(names)]], alpha=0.35, label="p99")
        ax.bar(xs, vals50, 0.6, color=[colors[k] for k in RELAYS[:len(names)]], label="p50")
        ax.axhline(TARGET_CANCEL_MS, color="red", ls="--", lw=1, label=f"target {TARGET_CANCEL_MS:g} ms")
        hold = r["settings"]["pause_hold_s"] * 1000
        ax.axhline(hold, color="gray", ls=":", lw=1, label=f"client resumes reading ({hold:.0f} ms)")
        ax.set_xticks(list(xs), names, fontsize=8)
        ax.set_ylabel("ms from $/cancelRequest to upstream closed")
        ax.set_title("Cancel while the client is not reading stdout")
        ax.legend(fontsize=8)

    # (d) first token
    ax = axes[1][0]
    ft = r.get("first_token")
    if ft:
        _relay_bars(ax, colors, [ft[relay]["overhead_over_upstream_ms"] for relay in RELAYS], "+{:.2f} ms",
                    TARGET_FIRST_TOKEN_MS, f"target {TARGET_FIRST_TOKEN_MS:g} ms")
        ax.set_ylabel("ms over the upstream's own (median)")
        ax.set_title(f"First token over upstream (upstream itself {ft['direct']['first_token_ms']['median']:.2f} ms)")

    # (e) spawn to initialize
    ax = axes[1][1]
    sp = r.get("spawn")
    if sp:
        answered = [sp[relay]["spawn_to_initialize_ms"]["median"] for relay in RELAYS]
        first_token = [sp[relay]["spawn_to_first_token_ms"] for relay in RELAYS]
        ax.bar([i - 0.2 for i in range(3)], answered, 0.4, color=[colors[k] for k in RELAYS], label="initialize result")
        ax.bar([i + 0.2 for i in range(3)], first_token, 0.4, color=[colors[k] for k in RELAYS], alpha=0.45,
               hatch="//", label="first token of a chat sent at once")
        for i, (a, f) in enumerate(zip(answered, first_token, strict=True)):
            ax.text(i - 0.2, a, f"{a:.0f}", ha="center", va="bottom", fontsize=7)
            ax.text(i + 0.2, f, f"{f:.0f}", ha="center", va="bottom", fontsize=7)
        ax.axhline(TARGET_SPAWN_MS, color="red", ls="--", lw=1, label=f"target {TARGET_SPAWN_MS:g} ms (initialize)")
        ax.set_xticks(range(3), [LABEL[k] for k in RELAYS], fontsize=8)
        ax.set_ylabel("ms from spawn (median)")
        ax.set_title("Spawn to initialize result, and to a first token")
        ax.legend(fontsize=8)

    # (f) RSS
    ax = axes[1][2]
    if tp:
        _relay_bars(ax, colors, [tp["one_chat"][relay]["rss_kib"] / 1024 for relay in RELAYS], "{:.1f} MiB",
                    TARGET_RSS_MIB, f"target {TARGET_RSS_MIB:g} MiB")
        ax.set_ylabel("VmRSS, MiB (median)")
        ax.set_title(f"RSS after a {tp['tokens']:,}-token session")

    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _relay_bars(ax: Any, colors: dict[str, str], values: list[float], text: str, target: float, target_label: str) -> None:
    """One labelled bar per relay, against the target's line."""
    ax.bar(range(len(RELAYS)), values, 0.6, color=[colors[k] for k in RELAYS])
    for i, v in enumerate(values):
        ax.text(i, v, text.format(v), ha="center", va="bottom", fontsize=8)
    ax.axhline(target, color="red", ls="--", lw=1, label=target_label)
    ax.set_xticks(range(len(RELAYS)), [LABEL[k] for k in RELAYS], fontsize=8)
    ax.legend(fontsize=8)

