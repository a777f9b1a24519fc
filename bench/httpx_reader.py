#!/usr/bin/env python3
"""The floor under a relay built on httpx, at a model's pace: reads one paced /api/chat
stream and nothing else.

Each piece is split into NDJSON lines and parsed with `json.loads`, as any relay must;
nothing is written anywhere. With `--hold S` it batches as the daemon does
(server/ollama_chatd/pacing.py) with none of its other work: after a piece that came from
a socket read (the read gave the event loop a turn) and waited less than S/2 for it, it
sleeps S, so the tokens that arrive meanwhile come in one read. Prints one JSON line: the
process's CPU seconds over the stream, the tokens read and the stream's wall time.

Run: `python bench/httpx_reader.py URL MODEL [--hold 0.02]` (bench/paced.py does).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx


async def read_stream(url: str, model: str, hold: float) -> dict[str, float]:
    body = {"model": model, "messages": [{"role": "user", "content": "go"}], "stream": True}
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client:
        await client.get(f"{url}/api/version")  # connect before the clock starts, as a warm relay has
        loop = asyncio.get_running_loop()
        turn = LoopTurns(loop)
        cpu0, wall0 = time.process_time(), time.monotonic()
        tokens, partial, first = 0, b"", True
        async with client.stream("POST", f"{url}/api/chat", json=body) as response:
            pieces = response.aiter_raw()
            while True:
                turn.watch()
                asked = loop.time()
                if (piece := await anext(pieces, None)) is None:
                    break
                *lines, partial = (partial + piece).split(b"\n")  # a read can end inside a line
                tokens += sum(1 for line in lines if line and not json.loads(line)["done"])
                if hold and turn.came and not first and loop.time() - asked < hold / 2:
                    await asyncio.sleep(hold)
                first = False
        return {"cpu_s": time.process_time() - cpu0, "tokens": tokens, "elapsed_s": time.monotonic() - wall0}


class LoopTurns:
    """Whether the event loop has had a turn since `watch()`: a piece that httpx hands out
    from what it has buffered comes without one, a piece from a socket read with one."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self.came = False
        self._armed = False

    def watch(self) -> None:
        self.came = False
        if not self._armed:
            self._armed = True
            self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        self._armed = False
        self.came = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("model")
    parser.add_argument("--hold", type=float, default=0.0, help="seconds to sleep after each read")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(read_stream(args.url, args.model, args.hold))))


if __name__ == "__main__":
    main()
