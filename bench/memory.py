"""A small daemon (issue 15, part 3): RSS after `initialize`, after a 100,000-token session,
and over 1,000 turns, beside the naive and ollama-python relays measured the same way.

An editor keeps one daemon per window for hours, so what matters is what the process holds
once started and whether it grows. Each relay is a fresh process:

- *after initialize*: once the `initialize` answer is read and the relay has stopped using
  CPU (the daemon answers before it has loaded pygls, so the loading is waited for);
- *after the session*: after one chat of 100,000 tokens flooded by the fake (the relay's
  buffers at their largest), in that same process;
- *1,000 turns* (300 in a --quick run): tiny turns, 10 per chat, in another process; RSS
  after the first 100 turns (everything a turn loads is loaded) and after the last. Growth
  between the two is what a long day of chatting would keep adding.

RSS is `VmRSS` from /proc/<pid>/status, in MiB.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from common import MODEL, PY, goal, log
from fakeproc import bulk, text
from rig import Bench

SESSION_TOKENS = 100_000
TURNS = 1_000
QUICK_TURNS = 300  # a --quick run
TURNS_PER_CHAT = 10
WARM_TURNS = 100  # RSS is compared from here on: the first turns load what a turn needs
TINY = ["Hi", " there", "!"]

GOAL_AFTER_INITIALIZE_MIB = 45.0
GOAL_AFTER_SESSION_MIB = 50.0
GOAL_GROWTH_MIB = 1.0  # "no growth": less than this over turns 100 to 1,000 (allocator noise)
RELAYS = ("daemon", "naive", "ollama-python")


def _mib(proc: Any) -> float:
    return proc.rss_kib()["VmRSS"] / 1024


def _session(b: Bench, relay: str) -> dict[str, float]:
    proc, _ = b.start(relay)
    after_initialize = _mib(proc)
    b.fake.reset()
    b.fake.script(bulk(SESSION_TOKENS, "x"))
    answer = proc.call("chat/start", {"chatId": "m", "prompt": "go", "model": MODEL}, 600)
    if answer.error or proc.chats["m"].text() != "x" * SESSION_TOKENS:
        b.problem(f"{relay} memory: the {SESSION_TOKENS:,}-token session was not delivered intact")
    after_session = _mib(proc)
    b.finish(relay, proc, "memory session")
    return {"after_initialize_mib": after_initialize, "after_session_mib": after_session}


def _turns(b: Bench, relay: str, turns: int) -> dict[str, float]:
    proc, _ = b.start(relay)
    b.fake.reset()
    b.fake.script(*[text(TINY)] * turns)
    warm = None
    for turn in range(turns):
        chat_id = f"t{turn // TURNS_PER_CHAT}"
        answer = proc.call("chat/start", {"chatId": chat_id, "prompt": f"turn {turn}", "model": MODEL}, 30)
        if answer.error:
            b.problem(f"{relay} memory: turn {turn} failed: {answer.error}")
            break
        if turn + 1 == WARM_TURNS:
            warm = _mib(proc)
    last = _mib(proc)
    b.finish(relay, proc, "memory turns")
    return {"after_warm_turns_mib": warm, "after_all_turns_mib": last,
            "growth_mib": None if warm is None else last - warm}


# Where the daemon's memory goes: RSS of a fresh interpreter after importing each layer in turn
# the way `serve` imports them (ollama_chatd/footprint.py).
LAYERS = (
    ("Python and asyncio (with ssl)", "asyncio"),
    ("+ pygls (lsprotocol.types)", "pygls.lsp.server"),
    ("+ httpx", "httpx"),
    ("+ the daemon's own modules", "ollama_chatd.rpc.stdio, ollama_chatd.app"),
)
_LAYERS_SCRIPT = """
import importlib, sys
from ollama_chatd import footprint
footprint.skip_unused_imports()
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
for modules in sys.argv[1:]:
    with footprint.without_generated_source():
        if modules == "pygls.lsp.server":
            footprint.import_unregistered(footprint.ATTRS_HEAVY)
        for name in modules.split(", "):
            importlib.import_module(name)
    print(rss())
"""


def _layers(b: Bench) -> list[tuple[str, float]]:
    env = {**os.environ, "PYTHONPATH": str(b.server_dir)}
    out = subprocess.run([PY, "-c", _LAYERS_SCRIPT, *(modules for _, modules in LAYERS)], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return [(label, int(kib) / 1024) for (label, _), kib in zip(LAYERS, out, strict=True)]


def measure(b: Bench) -> dict[str, Any]:
    turns = QUICK_TURNS if b.quick else TURNS
    out: dict[str, Any] = {"session_tokens": SESSION_TOKENS, "turns": turns, "warm_turns": WARM_TURNS,
                           "turns_per_chat": TURNS_PER_CHAT, "layers_mib": _layers(b), "relays": {}}
    for relay in RELAYS:
        b.wait_quiet()
        row = {**_session(b, relay), **_turns(b, relay, turns)}
        out["relays"][relay] = row
        log(f"memory {relay}: {row['after_initialize_mib']:.1f} MiB after initialize, "
            f"{row['after_session_mib']:.1f} after {SESSION_TOKENS:,} tokens; {turns:,} turns: "
            f"{row['after_warm_turns_mib']:.1f} -> {row['after_all_turns_mib']:.1f} MiB")
    return out


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    m = r["memory"]["relays"]
    daemon = m["daemon"]

    def anchors(key: str, digits: str = ".1f", sign: str = "") -> str:
        return ", ".join(f"{relay} {m[relay][key]:{sign}{digits}} MiB" for relay in RELAYS[1:] if m[relay].get(key) is not None)

    growth = daemon["growth_mib"]
    turns, warm = r["memory"]["turns"], r["memory"]["warm_turns"]
    return [
        goal(3, f"{daemon['after_initialize_mib']:.1f} MiB", anchors("after_initialize_mib"),
             daemon["after_initialize_mib"] <= GOAL_AFTER_INITIALIZE_MIB,
             f"RSS <= {GOAL_AFTER_INITIALIZE_MIB:g} MiB after initialize"),
        goal(3, f"{daemon['after_session_mib']:.1f} MiB", anchors("after_session_mib"),
             daemon["after_session_mib"] <= GOAL_AFTER_SESSION_MIB,
             f"RSS <= {GOAL_AFTER_SESSION_MIB:g} MiB after a {r['memory']['session_tokens']:,}-token session"),
        goal(3, "n/a" if growth is None else f"{growth:+.1f} MiB", anchors("growth_mib", sign="+"),
             None if growth is None else growth < GOAL_GROWTH_MIB,
             f"no growth over {turns:,} turns (< {GOAL_GROWTH_MIB:g} MiB from turn {warm} to {turns:,})"),
    ]


def section(r: dict[str, Any]) -> list[str]:
    m = r.get("memory")
    if not m:
        return []
    L = ["## Memory over a long session", "",
         "Each relay a fresh process: RSS once `initialize` is answered and the relay has finished loading, "
         f"then after a {m['session_tokens']:,}-token chat flooded by the fake; in another process, "
         f"{m['turns']:,} tiny turns ({m['turns_per_chat']} per chat), RSS after turn {m['warm_turns']} and after the last "
         "(bench/memory.py).", "",
         "| Relay | after initialize (MiB) | after the session (MiB) | "
         f"after turn {m['warm_turns']} (MiB) | after turn {m['turns']:,} (MiB) | growth (MiB) |",
         "|---|---:|---:|---:|---:|---:|"]
    for relay, row in m["relays"].items():
        growth = "n/a" if row["growth_mib"] is None else f"{row['growth_mib']:+.1f}"
        warm = "n/a" if row["after_warm_turns_mib"] is None else f"{row['after_warm_turns_mib']:.1f}"
        L.append(f"| {relay} | {row['after_initialize_mib']:.1f} | {row['after_session_mib']:.1f} | {warm} | "
                 f"{row['after_all_turns_mib']:.1f} | {growth} |")
    L += ["",
          "Where the daemon's memory goes: RSS of a fresh interpreter after importing each layer in turn, as "
          "`serve` does (ollama_chatd/footprint.py). What keeps it small: httpcore would import trio and httpx "
          "its command-line client whenever they are installed (9 MiB the daemon never uses); "
          "`lsprotocol.types` runs before it is registered in `sys.modules`, so attrs gives none of its "
          "thousand classes' `__init__` a copy of the module's namespace as globals (5 MiB); and `linecache` "
          "keeps none of the source attrs generates while those modules load (kept, then dropped, its scattered"
          " holes still cost 2.3 MiB). At `initialize` the daemon builds no HTTP client for a local Ollama "
          "(httpx and the client, 2.6 MiB, load at the first call; a CA bundle, headers or an API key are still"
          " checked at once), loads no MCP host without MCP servers, no regex before the first search and no CA"
          " store for a plain-http model server. What remains is Python with asyncio and OpenSSL (libcrypto's "
          "pages alone are 3.5 MiB of RSS, loaded by `ssl`), lsprotocol's thousand attrs classes with their "
          "generated methods, and the code of some 400 modules; a session adds httpx, httpcore, h11 and anyio "
          "(about 4 MiB with the first request). Over many chats, only the 32 most recently used stay in "
          "memory (a chat used again after that is loaded from the store), and SQLite's page cache is held to "
          "512 KiB per connection: the daemon grew by 0.7 MiB per 100 chats of 10 turns before (2.1 MiB over "
          "3,000 turns), by 0.9 MiB over those 3,000 turns since, levelling off.", "",
          "| Layer | RSS (MiB) | added (MiB) |", "|---|---:|---:|"]
    previous = 0.0
    for label, mib in m["layers_mib"]:
        L.append(f"| {label} | {mib:.1f} | {mib - previous:+.1f} |")
        previous = mib
    L.append("")
    return L
