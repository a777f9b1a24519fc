"""Render bench/results/latest.json as docs/performance.md and docs/performance.png.

    .venv/bin/python bench/report.py [results.json]     # re-render without re-measuring
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RELAYS = ["daemon", "naive", "ollama-python"]
LABEL = {"daemon": "ollama-chatd", "naive": "naive relay", "ollama-python": "ollama-python relay"}
MODE_LABEL = {"paced": "paced stream (~1k tok/s)", "flood": "flood (as fast as the fake writes)",
              "paused": "flood, client not reading"}

# The targets of issue #7.
TARGET_FIRST_TOKEN_MS = 2.0
TARGET_CANCEL_MS = 10.0
TARGET_SPAWN_MS = 150.0
TARGET_RSS_MIB = 60.0


def _f(x: float | None, digits: int = 1, unit: str = "") -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def _pf(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**FAIL**")


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


# ----------------------------------------------------------------------------- plot


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


# ----------------------------------------------------------------------------- markdown


def paced_section(r: dict[str, Any]) -> list[str]:
    """CPU per token at a model's pace (bench/paced.py): the figure that matters."""
    paced = r.get("paced")
    if not paced:
        return []
    rates = paced["rates"]
    L = ["## CPU at a model's pace", "",
         f"One chat streamed by the fake at {', '.join(str(x) for x in rates)} tokens/s (a model on a CPU makes "
         "tens a second, on a GPU a few hundred), each token its own NDJSON line and HTTP chunk, for "
         f"{paced['seconds']:g} s, after a warm-up turn. CPU of every thread of the relay over the turn "
         "(/proc/<pid>/task/*/schedstat). At such a pace every token is an event-loop wake-up, a socket read "
         "and a pipe write of its own: that, not parsing, is what a token costs.", "",
         "| Relay | " + " | ".join(f"{x}/s: achieved | µs/token | share of a core" for x in rates) + " |",
         "|---|" + "---:|---:|---:|" * len(rates)]
    for relay, per_rate in paced["relays"].items():
        cells = []
        for x in rates:
            v = per_rate[str(x)]
            cells += [f"{v['achieved_tokens_per_s']:,.0f}", f"{v['cpu_us_per_token']:,.0f}", f"{v['core_share']:.1%}"]
        L.append(f"| {relay} | " + " | ".join(cells) + " |")
    L.append("")
    return L


def markdown(r: dict[str, Any], png_name: str) -> str:
    m = r["machine"]
    cfg = r["settings"]
    L: list[str] = []
    add = L.append
    add("# Performance")
    add("")
    add("<!-- Generated by bench/report.py from bench/results/latest.json; do not edit by hand. -->")
    add("")
    add("How fast `ollama-chatd serve` relays a chat, measured over its real stdio against the project's")
    add("fake Ollama, in the same run as two baselines (issue #7). Reproduce with:")
    add("")
    add("```sh")
    add(r["command"])
    add("```")
    add("")
    add(f"- Measured {m['date']} in {r['duration_s']:.0f} s; daemon: {m['daemon_source']}.")
    add(f"- Machine: {m['cores']} cores, {m['cpu']}, {m['memory_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}.")
    ol = r.get("other_load") or {}
    if ol.get("median_cores") is not None:
        add(f"- Other processes on the machine used a median {ol['median_cores']:.2f} cores (max {ol['max_cores']:.2f}) "
            f"during the measurements; before each one the run waited for them to stay under 0.15 cores "
            f"({ol['quiet_wait_s']:.0f} s of waiting in all, capped at 90 s).")
    add("- Packages: " + ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v) + ".")
    add(f"- Settings: {cfg['runs']} runs of {cfg['tokens']:,} tokens (1 chat) and of {cfg['chats']} chats x "
        f"{cfg['tokens'] // cfg['chats']:,} tokens; {cfg['cancels']} cancels per daemon case, "
        f"{cfg['baseline_cancels']} per baseline case; {cfg['spawns']} spawns per relay; "
        f"{cfg['first_token_turns']} first-token turns per relay.")
    if r["problems"]:
        add(f"- **{len(r['problems'])} integrity problems** (text not intact, seq gaps, tokens after an answer...): "
            "the figures below are not valid. First ones:")
        for p in r["problems"][:10]:
            add(f"  - {p}")
    else:
        add("- Integrity: every delivered text was byte-exact, every `seq` contiguous, nothing of a turn followed "
            "its answer, every cancelled upstream connection was closed.")
    add("")
    add(f"![performance plot]({png_name})")
    add("")

    add("## Targets")
    add("")
    add("| Target (issue #7) | Measured | |")
    add("|---|---|---|")
    for t in targets(r):
        add(f"| {t['target']} | {t['figure']} | {_pf(t['ok'])} |")
    add("")
    L.extend(paced_section(r))

    tp = r.get("throughput")
    if tp:
        add("## Relay throughput")
        add("")
        add(f"A stress test, not a target: the fake floods tokens far faster than any model (see the CPU at a "
            f"model's pace above for the figure that matters). "
            f"Tokens per second of intact text delivered to the client: from writing `chat/start` to reading "
            f"its answer, with the fake's bulk mode (every token `\"x\"` in its own NDJSON line and HTTP chunk, "
            f"written as fast as the socket takes them). Median of {cfg['runs']} runs; a fresh relay process per run.")
        add("")
        add("| Relay | 1 chat: tokens/s | vs naive | notifications | tokens per notification | relay CPU µs/token "
            "| client CPU µs/notification | RSS after (MiB) | peak RSS (MiB) |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        base = tp["one_chat"]["naive"]["tokens_per_s"]
        for relay in RELAYS:
            s = tp["one_chat"][relay]
            add(f"| {LABEL[relay]} | {s['tokens_per_s']:,.0f} | {s['tokens_per_s'] / base:.2f}x | "
                f"{s['notifications']:,.0f} | {s['tokens_per_notification']:.2f} | {s['relay_cpu_us_per_token']:.1f} | "
                f"{s['client_cpu_us_per_notification']:.1f} | {s['rss_kib'] / 1024:.1f} | {s['hwm_kib'] / 1024:.1f} |")
        add("")
        add(f"**{tp['chats']} concurrent chats**, {tp['tokens_per_chat']:,} tokens each, every chat its own upstream "
            f"stream: all `chat/start`s are written at once (one write). The baselines run the {tp['chats']} relays "
            "as concurrent asyncio tasks in one process sharing one HTTP client and one stdout, which is how a "
            "plugin would host them (one process per chat would not share a stdout).")
        add("")
        add("| Relay | aggregate tokens/s | vs naive | vs its 1 chat | while all stream: tokens/s | vs its 1 chat "
            "| first chat done (ms) | last done (ms) "
            "| slowest first token (ms) | chats with no token when the first finished | longest silence of a chat (ms) "
            "| Jain fairness of per-chat rates |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        base = tp["many_chats"]["naive"]["aggregate_tokens_per_s"]
        for relay in RELAYS:
            s = tp["many_chats"][relay]
            one = tp["one_chat"][relay]["tokens_per_s"]
            streaming, streaming_one = s.get("streaming_tokens_per_s"), tp["one_chat"][relay].get("streaming_tokens_per_s")
            add(f"| {LABEL[relay]} | {s['aggregate_tokens_per_s']:,.0f} | {s['aggregate_tokens_per_s'] / base:.2f}x | "
                f"{s['aggregate_tokens_per_s'] / one:.2f}x | {_f(streaming, 0)} | "
                f"{_f(streaming / streaming_one if streaming and streaming_one else None, 2, 'x')} | "
                f"{s['first_done_ms']:,.0f} | {s['last_done_ms']:,.0f} | "
                f"{s['first_token_max_ms']:,.0f} | {s['chats_without_token_at_first_done']:g} | "
                f"{s['longest_silence_ms']:,.0f} | {s['jain_fairness']:.3f} |")
        add("")
        add("The silence of a chat counts from its `chat/start` to its first token, between tokens, and from the "
            "last token to its answer. *While all stream* counts only the time every chat is streaming (from the "
            "last first token to the first last token; for 1 chat, from its first token to its last): the relay's "
            "rate of moving tokens, without the start and end of turns. The aggregate figure also pays "
            f"{tp['chats']} turn starts (a store lookup, a new upstream connection, the request) against one.")
        add("")

    ft = r.get("first_token")
    if ft:
        add("## First-token latency")
        add("")
        add(f"A tiny reply (`{'`, `'.join(['Hi', ' there', '!'])}`), {cfg['first_token_turns']} turns per relay, each "
            "a new chat in the same relay process (the first turn, which opens the upstream connection, is reported "
            "apart as *cold*). The relay's figure runs from writing `chat/start` to reading the first `chat/token`. "
            "**The upstream's own** is measured in the same run by a direct HTTP/1.1 keep-alive client in the "
            "benchmark process: from writing the POST to reading the first NDJSON chunk (it includes the fake's "
            "processing and the loopback legs that any client pays). *Over upstream* = the relay's median minus "
            "the upstream's median. The *request leg* (chat/start written -> the fake has the whole HTTP request, "
            "from the fake's `received_at`) and *response leg* (-> first token read) split the relay's figure; "
            "both clocks are CLOCK_MONOTONIC.")
        add("")
        add("| Relay | first token, median (ms) | p90 (ms) | over upstream (ms) | request leg (ms) | response leg (ms) "
            "| cold first turn (ms) |")
        add("|---|---:|---:|---:|---:|---:|---:|")
        d = ft["direct"]
        add(f"| upstream's own (direct client) | {d['first_token_ms']['median']:.3f} | {d['first_token_ms']['p90']:.3f} "
            f"| - | {d['request_leg_ms']:.3f} | - | - |")
        for relay in RELAYS:
            s = ft[relay]
            add(f"| {LABEL[relay]} | {s['first_token_ms']['median']:.3f} | {s['first_token_ms']['p90']:.3f} | "
                f"+{s['overhead_over_upstream_ms']:.3f} | {s['request_leg_ms']:.3f} | {s['response_leg_ms']:.3f} | "
                f"{s['first_token_ms']['cold_first_turn']:.1f} |")
        add("")

    cx = r.get("cancel")
    if cx:
        add("## Cancel latency")
        add("")
        add("Each cancel: a new chat on an endless stream of `\"tok \"` tokens; once its first token is read, the "
            "client waits a random 0-25 ms, then writes the cancel. *Answer* = cancel written -> its answer read "
            "(for `chat/cancel` the `{cancelled: true}` result, which follows the `chat/start` result; for "
            "`$/cancelRequest` the -32800 error of `chat/start`). *Upstream closed* = cancel written -> the fake "
            "Ollama (its own process) sees the connection drop. Three streams:")
        add("")
        add("- **paced**: the fake sleeps 1 ms between tokens (about 1,000 tokens/s, a very fast real model);")
        add("- **flood**: no sleep, the fake writes as fast as it can, so the relay's event loop is saturated;")
        add(f"- **paused**: flood, and the client stops reading stdout after the first token; the cancel is written "
            f"once the stdout pipe is full (less than a page free) plus a random 0-20 ms. The client keeps not "
            f"reading for {cfg['pause_hold_s'] * 1000:.0f} ms more, then resumes: *answer after resume* runs "
            f"from resuming to reading the answer, and *closed while paused* counts the cancels whose upstream "
            f"connection was closed before the client resumed.")
        add("")
        add("| Relay | method | stream | n | answer p50 (ms) | answer p99 (ms) | upstream closed p50 (ms) "
            "| upstream closed p99 (ms) | max (ms) | closed while paused |")
        add("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for relay in RELAYS:
            for how in ("chat/cancel", "$/cancelRequest"):
                for mode in ("paced", "flood", "paused"):
                    s = cx.get(relay, {}).get(how, {}).get(mode)
                    if not s:
                        continue
                    ans = s.get("answer_ms") or {}
                    close = s.get("close_ms") or {}
                    if mode == "paused":
                        a50 = f"{_f(s['answer_after_resume_ms']['p50'], 2)} after resume"
                        a99 = f"{_f(s['answer_after_resume_ms']['p99'], 2)} after resume"
                    else:
                        a50, a99 = _f(ans.get("p50"), 2), _f(ans.get("p99"), 2)
                    mx = max([x for x in (ans.get("max"), close.get("max")) if x is not None], default=None)
                    cwp = f"{s['closed_while_paused']}/{s['n']}" if "closed_while_paused" in s else "-"
                    add(f"| {LABEL[relay]} | `{how}` | {mode} | {s['n']} | {a50} | {a99} | {_f(close.get('p50'), 2)} | "
                        f"{_f(close.get('p99'), 2)} | {_f(mx, 1)} | {cwp} |")
        add("")
        add("The baselines implement only `$/cancelRequest` (cancelling the relay task closes its HTTP stream); "
            "they have no `chat/cancel`. While the client is not reading, their event-loop thread is blocked in "
            "`write` to the full pipe, so the cancel is not even read until the client resumes.")
        add("")

    sp = r.get("spawn")
    if sp:
        add("## Start-up and memory")
        add("")
        add(f"*Spawn to initialize* runs from `Popen` to reading the `initialize` result (median of {cfg['spawns']} "
            "spawns; the baselines answer `initialize` once their HTTP client exists, so they show the floor of a "
            "Python relay). The daemon answers `initialize` from a light start-up module (`rpc/startup.py`) before "
            "it loads pygls, most of whose cost is `import lsprotocol.types`; messages sent meanwhile wait in the "
            "pipe until it has loaded.")
        add("")
        add("*Spawn to first token*: the same spawns, with a tiny `chat/start` written as soon as the `initialize` "
            "result is read: the whole start-up, loading included (the first turn of a fresh process also opens "
            "the upstream connection). All Python modules are byte-compiled beforehand, as an installed package's are.")
        add("")
        add("RSS is `VmRSS` from `/proc/<pid>/status`: after that first tiny chat, and after a "
            f"{tp['tokens'] if tp else 0:,}-token chat (median of the throughput runs).")
        add("")
        add("| Relay | spawn to initialize, median (ms) | min (ms) | max (ms) | spawn to first token (ms) "
            "| RSS after a tiny chat (MiB) | RSS after the session (MiB) |")
        add("|---|---:|---:|---:|---:|---:|---:|")
        for relay in RELAYS:
            s = sp[relay]["spawn_to_initialize_ms"]
            after = tp["one_chat"][relay]["rss_kib"] / 1024 if tp else None
            add(f"| {LABEL[relay]} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} | "
                f"{_f(sp[relay].get('spawn_to_first_token_ms'), 0)} | {sp[relay]['rss_after_first_chat_kib'] / 1024:.1f} | {_f(after)} |")
        add("")

    pm = r.get("paused_memory")
    if pm:
        add("## Memory while the client reads nothing")
        add("")
        add("A flood stream; the client stops reading stdout for a while, then cancels.")
        add("")
        add("| Relay | paused for (s) | RSS before (MiB) | RSS after (MiB) | growth (MiB) | relay CPU while paused |")
        add("|---|---:|---:|---:|---:|---:|")
        for relay, s in pm.items():
            add(f"| {LABEL[relay]} | {s['hold_s']:.1f} | {s['rss_kib_before'] / 1024:.1f} | {s['rss_kib_after'] / 1024:.1f} | "
                f"{s['growth_kib'] / 1024:+.1f} | {s['cpu_share_while_paused']:.0%} of a core |")
        add("")
        add("The naive relay stops reading its upstream while its write is blocked (TCP backpressure reaches the "
            "model); the daemon merges what the client has not read into pending `chat/token`s, and past about 1 MiB of "
            "them stops reading its upstream too, so TCP slows the model down, while a cancel is still handled at once.")
        add("")

    if "tools_scale" in r:
        from tools_scale import markdown as tools_scale_section
        L.extend(tools_scale_section(r["tools_scale"]))

    add("## How it is measured")
    add("")
    add("- `bench/run.py` starts `tests/fake_ollama.py` in its own process and scripts it over its control "
        "endpoints (`bench/fakeproc.py`).")
    add("- Each relay is a subprocess spoken to over its stdin/stdout by `bench/client.py`: a reader thread "
        "does 1 MiB `os.read`s, cuts frames with the package's `FrameDecoder` (`ollama_chatd/jsonrpc.py`) "
        "and parses each body with `json.loads`; it checks "
        "`seq` contiguity and that nothing of a turn follows its answer, and keeps the text to compare with what "
        "the fake sent. Times are `time.monotonic()` taken when the read that completed a message returned.")
    add("- Baselines: `bench/naive_relay.py` (httpx `aiter_lines()` -> `json.loads` -> one framed `chat/token` "
        "per token, `write` + `flush`) and `bench/ollama_python_relay.py` (the official `ollama` AsyncClient, "
        "`chat(stream=True)`), sharing the stdio loop of `bench/relay_stdio.py` (a stdin reader thread, blocking "
        "writes on the event-loop thread, one task per `chat/start`, `$/cancelRequest` cancels the task).")
    add("- 1 chat / 32 chats / spawn runs interleave the relays in a shuffled order within each round, so a slow "
        "phase of the machine does not land on one relay only.")
    add("- Three processes (client, relay, fake) share the 2 cores: the figures are for that setting, which is "
        "also the editor's (editor, daemon and Ollama on one machine).")
    add("- Raw per-run and per-cancel samples are in `bench/results/latest.json` (not committed).")
    add("")
    return "\n".join(L)


def render(results: dict[str, Any], docs: Path) -> tuple[Path, Path]:
    docs.mkdir(parents=True, exist_ok=True)
    png = docs / "performance.png"
    md = docs / "performance.md"
    plot(results, png)
    md.write_text(markdown(results, png.name))
    return md, png


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "latest.json"
    for p in render(json.loads(path.read_text()), ROOT / "docs"):
        print(p)
