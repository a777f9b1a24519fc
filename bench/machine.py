"""The machine the benchmark runs on: its description, and how busy it is (from /proc)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from common import ROOT

CLK_TCK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def process_cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK



def speed_probe_ms() -> float:
    """A fixed single-threaded Python workload (JSON and string work, like a relay's), best
    of 3, in ms. On a virtual machine the host's other tenants change how fast the same
    code runs, by up to 2x within an hour here: the probe says how fast this run's machine
    was, so runs can be compared."""
    import json
    import time

    payload = {"model": "m", "message": {"role": "assistant", "content": "x" * 64}, "done": False}
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(20_000):
            json.loads(json.dumps(payload)).get("message", {}).get("content", "").encode()
        best = min(best, time.perf_counter() - started)
    return round(best * 1e3, 1)


def machine() -> dict[str, Any]:
    def read(path: str) -> str:
        try:
            return Path(path).read_text()
        except OSError:
            return ""

    cpu = next((line.split(":", 1)[1].strip() for line in read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kib = next((int(line.split()[1]) for line in read("/proc/meminfo").splitlines()
                    if line.startswith("MemTotal")), 0)

    def version(pkg: str) -> str | None:
        try:
            from importlib import metadata
            return metadata.version(pkg)
        except Exception:  # noqa: BLE001
            return None

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(), "python": platform.python_version(),
        "packages": {p: version(p) for p in ("pygls", "lsprotocol", "httpx", "httpcore", "h11", "ollama", "pydantic")},
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "server")),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }

