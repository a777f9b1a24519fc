"""Start-up: spawn to the `initialize` result, to the first token of a chat sent right after, and RSS then."""

from __future__ import annotations

from typing import Any

from common import MODEL, log, median, ms
from fakeproc import text
from first_token import TINY
from rig import RELAYS, Bench


def measure(b: Bench) -> dict[str, Any]:
    """Spawn -> `initialize` result, spawn -> first token of a chat sent right after, and RSS then."""
    out: dict[str, Any] = {}
    samples: dict[str, list[float]] = {r: [] for r in RELAYS}
    to_token: dict[str, list[float]] = {r: [] for r in RELAYS}
    rss: dict[str, list[int]] = {r: [] for r in RELAYS}
    for _ in range(b.cfg["spawns"]):
        for relay in RELAYS:
            b.fake.reset()
            b.fake.script(text(TINY))
            b.wait_quiet()
            proc, dt = b.start(relay, settle=False)  # an editor does not wait either
            samples[relay].append(dt)
            # an editor that asks at once: the first chat/start right after initialize
            _, waiter = proc.request("chat/start", {"chatId": "s", "prompt": "hi", "model": MODEL})
            proc.wait(waiter, 30)
            rss[relay].append(proc.rss_kib()["VmRSS"])  # all loaded by now
            first = proc.chats["s"].first_at
            if first is None:
                b.problem(f"{relay} spawn: no token for the first chat")
            else:
                to_token[relay].append(first - proc.spawned_at)
            b.finish(relay, proc, "spawn")
    for relay in RELAYS:
        out[relay] = {"spawn_to_initialize_ms": {"median": ms(median(samples[relay])),
                                                 "min": ms(min(samples[relay])), "max": ms(max(samples[relay])),
                                                 "samples": [ms(x) for x in samples[relay]]},
                      "spawn_to_first_token_ms": ms(median(to_token[relay])),
                      "rss_after_first_chat_kib": median(rss[relay])}
        log(f"spawn {relay}: median {out[relay]['spawn_to_initialize_ms']['median']:.0f} ms "
            f"(first token of a chat sent right after: {out[relay]['spawn_to_first_token_ms']:.0f} ms), "
            f"RSS then {out[relay]['rss_after_first_chat_kib'] / 1024:.1f} MiB")
    return out

