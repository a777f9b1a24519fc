"""First-token latency of each relay, against the upstream's own measured by a direct HTTP client."""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import urlsplit

from common import MODEL, log, median, ms, pct
from fakeproc import text
from rig import RELAYS, Bench


class DirectClient:
    """The upstream's own first-token latency: a direct HTTP/1.1 keep-alive client in this
    process, timing from writing the POST to reading the first NDJSON chunk."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)

    def first_token(self, prompt: str) -> tuple[float, float, bytes]:
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": prompt}], "stream": True})
        t0 = time.monotonic()
        self.conn.request("POST", "/api/chat", body=body, headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        first = resp.read1(65536)
        t1 = time.monotonic()
        rest = resp.read()
        return t0, t1, first + rest

    def close(self) -> None:
        self.conn.close()


TINY = ["Hi", " there", "!"]


def measure(b: Bench) -> dict[str, Any]:
    turns = b.cfg["first_token_turns"]
    out: dict[str, Any] = {}
    # The upstream's own, measured in between so both see the same machine state.
    direct = DirectClient(b.fake.url)
    direct_lat, direct_in = [], []
    b.fake.reset()
    b.wait_quiet()
    for i in range(5):  # warm-up
        b.fake.script(text(TINY))
        direct.first_token(f"warm {i}")
    for i in range(turns):
        b.fake.reset()
        b.fake.script(text(TINY))
        t0, t1, data = direct.first_token(f"direct {i}")
        rec = b.fake.requests()[0]
        direct_lat.append(t1 - t0)
        direct_in.append(rec["received_at"] - t0)
        if b'"Hi"' not in data:
            b.problem(f"direct client: unexpected reply {data[:120]!r}")
    direct.close()
    out["direct"] = {"first_token_ms": {"median": ms(median(direct_lat)), "p90": ms(pct(direct_lat, 90))},
                     "request_leg_ms": ms(median(direct_in)), "samples": [ms(x) for x in direct_lat]}
    log(f"first token, direct HTTP client: median {ms(median(direct_lat)):.3f} ms")

    for relay in RELAYS:
        proc, _ = b.start(relay)
        b.wait_quiet()
        lat, inbound, outbound, cold = [], [], [], None
        for i in range(turns + 1):
            b.fake.reset()
            b.fake.script(text(TINY))
            chat_id = f"ft{i}"
            _, waiter = proc.request("chat/start", {"chatId": chat_id, "prompt": f"turn {i}", "model": MODEL})
            answer = proc.wait(waiter, 30)
            chat = proc.chats[chat_id]
            if chat.text() != "".join(TINY) or answer.error:
                b.problem(f"{relay} first-token turn {i}: got {chat.text()!r} / {str(answer.msg)[:120]}")
                continue
            rec = b.fake.requests()[0]
            t = chat.first_at - waiter.sent_at
            if i == 0:
                cold = t  # first turn: the relay opens its upstream connection
                continue
            lat.append(t)
            inbound.append(rec["received_at"] - waiter.sent_at)
            outbound.append(chat.first_at - rec["received_at"])
        b.finish(relay, proc, "first-token")
        over = median(lat) - median(direct_lat)
        out[relay] = {
            "first_token_ms": {"median": ms(median(lat)), "p90": ms(pct(lat, 90)), "cold_first_turn": ms(cold)},
            "overhead_over_upstream_ms": ms(over),
            "request_leg_ms": ms(median(inbound)), "response_leg_ms": ms(median(outbound)),
            "samples": [ms(x) for x in lat],
        }
        log(f"first token, {relay}: median {ms(median(lat)):.3f} ms, over upstream {ms(over):.3f} ms "
            f"(request leg {ms(median(inbound)):.3f}, response leg {ms(median(outbound)):.3f}; "
            f"cold first turn {ms(cold):.1f} ms)")
    return out

