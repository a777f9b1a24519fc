"""What every part of the benchmark shares: paths, the model's name, small statistics, the log."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
MODEL = "tiny"
LOG_DIR = HERE / "results" / "logs"


def pct(values: list[float], q: float) -> float | None:
    """Percentile with linear interpolation (q in 0..100)."""
    if not values:
        return None
    xs = sorted(values)
    k = (len(xs) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)



def wait_until(cond: Callable[[], bool], timeout: float, step: float = 0.0005) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


# ----------------------------------------------------------------------------- report rows


def fmt(x: float | None, digits: int = 1, unit: str = "") -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def pass_fail(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**FAIL**")


# The parts of issue 15, each with its goal; docs/performance.md shows every one, measured or not.
GOALS = {
    1: ("1. Prompt prefix stable", "prefix kept >= 0.7 on average after the window fills; no request exceeds the window"),
    2: ("2. Tools at repository scale", "search_text and find_files within 1.5x of ripgrep, same results; "
        "every tool answers within its time budget"),
    3: ("3. A small daemon", "RSS <= 45 MiB after initialize, <= 50 MiB after a 100,000-token session, "
        "no growth over 1,000 turns"),
    4: ("4. CPU at a real model's pace", "<= 1% of a core at 1,000 tokens/s"),
    5: ("5. Long chats", "daemon's work per turn <= 5 ms at turn 500, not growing with the history beyond the window"),
}


def goal(part: int, figure: str, anchor: str, ok: bool | None, goal: str | None = None) -> dict[str, Any]:
    """One row of the goals table (issue 15): part `part`'s goal (`goal` when a part splits it),
    what this run measured, the anchor measured in the same run, and whether the goal is met."""
    name, default = GOALS[part]
    return {"number": part, "part": name, "goal": goal or default, "figure": figure, "anchor": anchor, "ok": ok}
