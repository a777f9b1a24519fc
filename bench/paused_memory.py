"""Memory while the client reads nothing during a flood: the backlog must stay bounded."""

from __future__ import annotations

import time
from typing import Any

from cancels import TOKEN
from common import MODEL, log, wait_until
from fakeproc import endless
from rig import Bench


def measure(b: Bench) -> dict[str, Any]:
    """RSS while the client reads nothing during a flood: the backlog must stay bounded."""
    out = {}
    hold = b.cfg["pause_memory_s"]
    for relay in ("daemon", "naive"):
        proc, _ = b.start(relay)
        b.fake.reset()
        b.fake.script(endless(TOKEN, 0.0))
        msg_id, start = proc.request("chat/start", {"chatId": "p", "prompt": "go", "model": MODEL})
        wait_until(lambda proc=proc: proc.chats["p"].first_at is not None, 10)
        proc.pause_reading()
        before = proc.rss_kib()["VmRSS"]
        series = []
        t0 = time.monotonic()
        cpu0 = proc.cpu_seconds()
        while time.monotonic() - t0 < hold:
            time.sleep(hold / 10)
            series.append((round(time.monotonic() - t0, 3), proc.rss_kib()["VmRSS"]))
        cpu = proc.cpu_seconds() - cpu0
        proc.notify("$/cancelRequest", {"id": msg_id})
        proc.resume_reading()
        proc.wait(start, 30)
        b.finish(relay, proc, "paused-memory")
        out[relay] = {"hold_s": hold, "rss_kib_before": before, "rss_kib_after": series[-1][1],
                      "growth_kib": series[-1][1] - before, "series": series,
                      "cpu_share_while_paused": cpu / hold}
        log(f"paused {hold:.1f} s during a flood, {relay}: RSS {before / 1024:.1f} -> {series[-1][1] / 1024:.1f} MiB, "
            f"CPU {cpu / hold:.0%} of a core")
    return out

