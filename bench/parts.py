"""The benchmark's parts, in the order `run.py` runs them.

Each is a module with `measure(b: rig.Bench) -> dict` (its results, kept under its name in
results/latest.json). A part that decides goals of issue 15 also has `goals(results) -> list`
of `common.goal(...)` rows for the goals table of docs/performance.md, and may have
`section(results) -> list[str]`, its own markdown section (bench/report.py renders both).
To add a part: a module of its own, and one line here.
"""

from __future__ import annotations

import cancels
import first_token
import long_chat
import memory
import paced
import paused_memory
import prefix
import spawn
import throughput
import tools_scale

PARTS = {
    "spawn": spawn,
    "memory": memory,
    "paced": paced,
    "throughput": throughput,
    "first_token": first_token,
    "cancel": cancels,
    "paused_memory": paused_memory,
    "tools_scale": tools_scale,
    "prefix": prefix,
    "long_chat": long_chat,
}
