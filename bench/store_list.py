"""How fast `chat/list` can answer from a big store: `ChatStore.list_chats(limit=50)`
on 10,000 chats of one workspace (plus another workspace's, which it must skip).

Usage (in the project's venv): python bench/store_list.py [--chats 10000] [--turns 1] [--runs 200] [--keep DIR]

Prints the median and 95th percentile of three timings:
- `api first page`: `await store.list_chats(limit=50)`, as the daemon calls it
  (a barrier through the writer thread, then the query on a worker thread);
- `api deep page`: the same with a `before` cursor 5,000 chats down;
- `sql first page`: the query alone on a connection, to separate the database's
  cost from the thread hops.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ollama_chatd import llm
from ollama_chatd.store import ChatStore, reads
from ollama_chatd.store.database import FileDatabase

WORKSPACE = "/home/me/project"
OTHER_WORKSPACE = "/home/me/other"


def fill(store: ChatStore, chats: int, turns: int, prefix: str) -> None:
    for number in range(chats):
        chat_id = f"{prefix}-{number}"
        for _ in range(turns):
            store.begin_turn(chat_id, llm.Message("user", f"Question {number}\nwith details"), model="qwen3")
            store.append(chat_id, llm.Message("assistant", "An answer of a few words. " * 10))
            store.end_turn(chat_id, stop_reason="end_turn", usage=llm.Usage(120, 40, 900_000_000))


async def median_ms(measure: Callable[[], Awaitable[object]], runs: int) -> tuple[float, float]:
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        await measure()
        durations.append((time.perf_counter() - started) * 1000)
    durations.sort()
    return statistics.median(durations), durations[int(len(durations) * 0.95) - 1]


async def main(chats: int, turns: int, runs: int, directory: Path) -> None:
    store = ChatStore.open(directory, WORKSPACE)
    other = ChatStore.open(directory, OTHER_WORKSPACE)
    started = time.perf_counter()
    fill(store, chats, turns, "chat")
    fill(other, chats // 5, turns, "other")
    await asyncio.gather(store.flush(), other.flush())
    print(f"stored {chats} + {chats // 5} chats of {turns} turns in {time.perf_counter() - started:.1f} s")

    first_page = await store.list_chats(limit=50)
    assert len(first_page) == 50
    deep = await store.list_chats(limit=chats // 2)
    cursor = deep[-1].cursor

    database = FileDatabase.open(directory / "chats.sqlite3")
    query = functools.partial(reads.list_chats, workspace=WORKSPACE, limit=50, before=None)

    async def sql_only() -> object:
        return database.read(query)

    timings = {
        "api first page": await median_ms(lambda: store.list_chats(limit=50), runs),
        "api deep page": await median_ms(lambda: store.list_chats(limit=50, before=cursor), runs),
        "sql first page": await median_ms(sql_only, runs),
    }
    for name, (median, p95) in timings.items():
        print(f"{name:15} median {median:6.2f} ms   p95 {p95:6.2f} ms   ({runs} runs)")
    database.close()
    await asyncio.gather(store.close(), other.close())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=1, help="turns per chat")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build the database in this directory and keep it")
    arguments = parser.parse_args()
    if arguments.keep:
        asyncio.run(main(arguments.chats, arguments.turns, arguments.runs, arguments.keep))
    else:
        with tempfile.TemporaryDirectory() as directory:
            asyncio.run(main(arguments.chats, arguments.turns, arguments.runs, Path(directory)))
