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
and the goals of issue 15 (each part a module listed in bench/parts.py), writes
bench/results/latest.json, and renders docs/performance.md and docs/performance.png
(bench/report.py). Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ROOT, log, median  # noqa: E402
from machine import machine, speed_probe_ms  # noqa: E402
from parts import PARTS  # noqa: E402
from rig import RELAYS, Bench, daemon_source  # noqa: E402


def settings(quick: bool) -> dict[str, Any]:
    if quick:
        return dict(runs=2, tokens=20_000, chats=32, spawns=3, first_token_turns=15, cancels=30,
                    baseline_cancels=10, pause_hold_s=0.05, pause_memory_s=0.5)
    return dict(runs=5, tokens=100_000, chats=32, spawns=10, first_token_turns=50, cancels=200,
                baseline_cancels=40, pause_hold_s=0.05, pause_memory_s=2.0)


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
                        choices=list(PARTS),
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
    server_dir = Path(args.daemon_src).resolve() if args.daemon_src else daemon_source(args.daemon_rev)
    b = Bench(cfg, server_dir, quick=args.quick, relays=args.relays)
    info = machine()
    if args.daemon_src:
        info["daemon_source"] = f"the package in {args.daemon_src}"
    elif args.daemon_rev:
        info["daemon_source"] = f"git {args.daemon_rev} ({_git_short(args.daemon_rev)})"
    else:
        info["daemon_source"] = f"work tree at {info['commit']}" + (" with uncommitted changes in server/" if info["dirty"] else "")
    results: dict[str, Any] = {"command": command, "quick": args.quick, "settings": cfg, "machine": info}
    log(f"fake Ollama at {b.fake.url} (pid {b.fake.pid}); settings {cfg}")
    try:
        for name, part in PARTS.items():
            if args.only and name not in args.only:
                continue
            t = time.monotonic()
            results.setdefault("load_average", {})[name] = round(os.getloadavg()[0], 2)  # every part's, metered or not
            results.setdefault("speed_probe_ms", {})[name] = speed_probe_ms()
            results[name] = part.measure(b)
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
    import report

    for row in report.goal_rows(results):
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[row["ok"]]
        log(f"{verdict} {row['part']}: {row['goal']}: {row['figure']} (anchor: {row['anchor']})")
    if args.quick and not args.report:
        log("a --quick run does not replace docs/performance.{md,png} (add --report to force it)")
    elif not args.no_report and not args.only:
        md, png = report.render(results, ROOT / "docs")
        log(f"report: {md}, {png}")
    return 1 if b.problems else 0


if __name__ == "__main__":
    sys.exit(main())
