"""The chat store: round trips, scoping, paging, and surviving crashes, concurrent
daemons, corrupt files, failing disks and old schemas, without blocking the loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ollama_chatd import llm
from ollama_chatd.store import (
    DATABASE_NAME,
    ChatStore,
    InvalidCursor,
    StoredChat,
    derive_title,
    iso8601,
    schema,
    writes,
)

WORKSPACE = "/home/me/project"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ChatStore]:
    store = ChatStore.open(tmp_path, WORKSPACE)
    yield store
    await store.close()


def run_turn(store: ChatStore, chat_id: str, prompt: str, answer: str = "ok") -> None:
    store.begin_turn(chat_id, llm.Message("user", prompt), model="tiny")
    store.append(chat_id, llm.Message("assistant", answer))
    store.end_turn(chat_id, stop_reason="end_turn", usage=llm.Usage(1, 1, 1))


def contents(chat: StoredChat | None) -> list[tuple[str, str, str]]:
    assert chat is not None
    return [(stored.message.role, stored.message.content, stored.status) for stored in chat.messages]


@contextlib.contextmanager
def database(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """The store's file, opened directly (in autocommit mode)."""
    connection = sqlite3.connect(tmp_path / DATABASE_NAME, isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


# -- round trip


async def test_a_multi_turn_chat_with_tools_round_trips(store: ChatStore, tmp_path: Path) -> None:
    call = llm.ToolCall("read_file", {"path": "README.md", "range": {"start": 1, "end": [2, 3]}}, "call-1")
    expected = [
        llm.Message("system", "You are terse."),
        llm.Message("user", "What does README say?", images=("aGVsbG8=",)),
        llm.Message("assistant", "", thinking="I should read it.", tool_calls=(call,)),
        llm.Message("tool", "# Project\nÉtat: ✓", tool_name="read_file", tool_call_id="call-1"),
        llm.Message("assistant", "It describes the project.", thinking="Summarize."),
        llm.Message("user", "Thanks"),
        llm.Message("assistant", "You're welcome."),
    ]
    store.begin_turn("chat-1", expected[1], model="qwen3", system="You are terse.")
    store.checkpoint("chat-1", llm.Message("assistant", "", thinking="I should"))
    store.append("chat-1", expected[2])
    store.append("chat-1", expected[3])
    store.checkpoint("chat-1", llm.Message("assistant", "It desc", thinking="Summarize."))
    store.append("chat-1", expected[4])
    store.end_turn("chat-1", stop_reason="end_turn", usage=llm.Usage(100, 20, 3_000))
    store.begin_turn("chat-1", expected[5], model="llama3", system="ignored: the chat exists")
    store.append("chat-1", expected[6])
    store.end_turn("chat-1", stop_reason="max_tokens", usage=llm.Usage(150, 5, 1_000))

    chat = await store.load("chat-1")

    assert chat is not None
    assert chat.history() == expected
    assert {stored.status for stored in chat.messages} == {"complete"}
    assert (chat.title, chat.model, chat.system) == ("What does README say?", "llama3", "You are terse.")
    assert chat.created_at <= chat.updated_at
    await store.flush()
    with database(tmp_path) as connection:
        turns = connection.execute(
            "SELECT number, stop_reason, prompt_tokens, completion_tokens, total_duration_ns FROM turns ORDER BY number"
        ).fetchall()
    assert turns == [(1, "end_turn", 100, 20, 3_000), (2, "max_tokens", 150, 5, 1_000)]


async def test_an_unknown_chat_loads_as_none(store: ChatStore) -> None:
    assert await store.load("nope") is None
    assert not await store.exists("nope")


async def test_the_memory_store_has_the_same_api() -> None:
    reports: list[str] = []
    async with ChatStore.open(None, WORKSPACE, on_degraded=reports.append) as store:
        run_turn(store, "chat-1", "Hello", "Hi")
        assert contents(await store.load("chat-1")) == [
            ("user", "Hello", "complete"),
            ("assistant", "Hi", "complete"),
        ]
        assert [chat.chat_id for chat in await store.list_chats()] == ["chat-1"]
        assert not store.degraded
    assert reports == []


# -- how a turn ends


async def test_a_cancelled_turn_keeps_its_partial_answer(store: ChatStore) -> None:
    store.begin_turn("chat-1", llm.Message("user", "Count to ten"), model="tiny")
    store.checkpoint("chat-1", llm.Message("assistant", "1 2"))
    store.checkpoint("chat-1", llm.Message("assistant", "1 2 3 4"))
    store.end_turn("chat-1", stop_reason="cancelled", usage=llm.Usage())

    assert contents(await store.load("chat-1")) == [
        ("user", "Count to ten", "complete"),
        ("assistant", "1 2 3 4", "cancelled"),
    ]


async def test_a_failed_turn_keeps_its_partial_answer(store: ChatStore) -> None:
    store.begin_turn("chat-1", llm.Message("user", "Explain"), model="tiny")
    store.checkpoint("chat-1", llm.Message("assistant", "Well,"))
    store.end_turn("chat-1", stop_reason="error", usage=llm.Usage(), status_of_partial="failed")

    assert contents(await store.load("chat-1"))[-1] == ("assistant", "Well,", "failed")


async def test_an_unfinished_answer_has_no_tool_calls_in_the_history(store: ChatStore) -> None:
    call = llm.ToolCall("list_files", {}, "call-1")
    store.begin_turn("chat-1", llm.Message("user", "List"), model="tiny")
    store.append("chat-1", llm.Message("assistant", "Listing", tool_calls=(call,)), status="cancelled")

    chat = await store.load("chat-1")

    assert chat is not None
    assert chat.messages[-1].message.tool_calls == (call,)
    assert chat.history()[-1] == llm.Message("assistant", "Listing")


async def test_a_discarded_turn_is_forgotten_with_a_chat_it_created(store: ChatStore) -> None:
    run_turn(store, "kept", "First prompt")
    store.begin_turn("kept", llm.Message("user", "Unanswered"), model="tiny")
    store.discard_turn("kept")
    store.begin_turn("gone", llm.Message("user", "Unanswered"), model="tiny")
    store.discard_turn("gone")

    assert contents(await store.load("kept")) == [
        ("user", "First prompt", "complete"),
        ("assistant", "ok", "complete"),
    ]
    assert not await store.exists("gone")


async def test_writes_about_a_deleted_chat_are_dropped(store: ChatStore) -> None:
    store.checkpoint("never-started", llm.Message("assistant", "orphan"))
    store.append("never-started", llm.Message("assistant", "orphan"))
    store.end_turn("never-started", stop_reason="end_turn", usage=llm.Usage())

    assert not await store.exists("never-started")


# -- workspaces, titles, listing, deletion


async def test_chats_are_scoped_by_workspace(tmp_path: Path) -> None:
    async with ChatStore.open(tmp_path, "/a") as first, ChatStore.open(tmp_path, "/b") as second:
        run_turn(first, "same-id", "Asked in a")
        run_turn(second, "same-id", "Asked in b")
        run_turn(second, "only-in-b", "Also b")
        await first.flush()
        second.rename("same-id", "Renamed in b")
        second.delete("only-in-b")

        assert contents(await first.load("same-id"))[0] == ("user", "Asked in a", "complete")
        assert [(c.chat_id, c.title) for c in await first.list_chats()] == [("same-id", "Asked in a")]
        assert [(c.chat_id, c.title) for c in await second.list_chats()] == [("same-id", "Renamed in b")]
        second.delete("same-id")
        assert await first.exists("same-id")
        assert not await second.exists("same-id")


@pytest.mark.parametrize(
    ("prompt", "title"),
    [
        ("Fix the bug", "Fix the bug"),
        ("\n  \n  Why is this slow?  \nHere is the code:\n...", "Why is this slow?"),
        ("x" * 80, "x" * 80),
        ("x" * 81, "x" * 79 + "…"),
        ("   \n\t", None),
    ],
)
def test_the_derived_title_is_the_first_line_of_the_prompt(prompt: str, title: str | None) -> None:
    assert derive_title(prompt) == title


async def test_a_renamed_chat_keeps_its_title_until_cleared(store: ChatStore) -> None:
    run_turn(store, "chat-1", "Where is main()?\nin which file")
    run_turn(store, "chat-1", "A later prompt")
    assert (await store.list_chats())[0].title == "Where is main()?"

    store.rename("chat-1", "Entry point")
    assert (await store.list_chats())[0].title == "Entry point"
    assert (await store.load("chat-1")).title == "Entry point"  # type: ignore[union-attr]

    store.rename("chat-1", "")
    assert (await store.list_chats())[0].title == "Where is main()?"


async def test_the_list_is_newest_first_with_turn_counts(tmp_path: Path) -> None:
    clock = iter(range(1000, 2000)).__next__
    async with ChatStore.open(tmp_path, WORKSPACE, clock=lambda: float(clock())) as store:
        run_turn(store, "old", "Old")
        run_turn(store, "new", "New")
        run_turn(store, "old", "Old again")

        chats = await store.list_chats()

    assert [(chat.chat_id, chat.turns) for chat in chats] == [("old", 2), ("new", 1)]
    assert chats[0].created_at < chats[1].created_at < chats[1].updated_at < chats[0].updated_at


async def test_paging_is_stable_when_chats_share_an_update_time(tmp_path: Path) -> None:
    async with ChatStore.open(tmp_path, WORKSPACE, clock=lambda: 1_700_000_000.5) as store:
        for number in range(7):
            run_turn(store, f"chat-{number}", f"Prompt {number}")

        pages, before = [], None
        while page := await store.list_chats(limit=3, before=before):
            pages.append([chat.chat_id for chat in page])
            before = page[-1].cursor

    assert pages == [["chat-6", "chat-5", "chat-4"], ["chat-3", "chat-2", "chat-1"], ["chat-0"]]


async def test_a_malformed_cursor_is_refused(store: ChatStore) -> None:
    with pytest.raises(InvalidCursor):
        await store.list_chats(before="yesterday")


async def test_a_deleted_chat_is_gone_with_its_messages(store: ChatStore, tmp_path: Path) -> None:
    run_turn(store, "doomed", "Delete me")
    run_turn(store, "kept", "Keep me")
    store.delete("doomed")

    assert await store.load("doomed") is None
    assert [chat.chat_id for chat in await store.list_chats()] == ["kept"]
    with database(tmp_path) as connection:
        assert connection.execute("SELECT count(*) FROM messages").fetchone() == (2,)
        assert connection.execute("SELECT count(*) FROM turns").fetchone() == (1,)


async def test_the_database_is_readable_by_its_owner_only(store: ChatStore, tmp_path: Path) -> None:
    run_turn(store, "chat-1", "A private prompt")
    await store.flush()

    for name in (DATABASE_NAME, f"{DATABASE_NAME}-wal"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o600


def test_timestamps_are_shown_as_utc_iso_8601() -> None:
    assert iso8601(1_700_000_000.1234) == "2023-11-14T22:13:20.123Z"


# -- crashes and concurrent daemons

KILLED_MID_ANSWER = """
import asyncio, os, signal, sys
from pathlib import Path
from ollama_chatd import llm
from ollama_chatd.store import ChatStore

async def main():
    store = ChatStore.open(Path(sys.argv[1]), sys.argv[2])
    store.begin_turn("story", llm.Message("user", "Tell me a story"), model="tiny")
    await store.flush()
    store.checkpoint("story", llm.Message("assistant", "Once"))
    store.checkpoint("story", llm.Message("assistant", "Once upon a time"))
    await store.flush()
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def test_a_killed_daemon_leaves_the_prompt_and_the_last_checkpoint(tmp_path: Path) -> None:
    killed = await asyncio.create_subprocess_exec(sys.executable, "-c", KILLED_MID_ANSWER, str(tmp_path), WORKSPACE)
    assert await asyncio.wait_for(killed.wait(), 60) == -9

    async with ChatStore.open(tmp_path, WORKSPACE) as store:
        assert contents(await store.load("story")) == [
            ("user", "Tell me a story", "complete"),
            ("assistant", "Once upon a time", "streaming"),
        ]
        run_turn(store, "story", "Go on", "The end.")
        assert contents(await store.load("story"))[2:] == [
            ("user", "Go on", "complete"),
            ("assistant", "The end.", "complete"),
        ]


WRITING_DAEMON = """
import asyncio, sys
from pathlib import Path
from ollama_chatd import llm
from ollama_chatd.store import ChatStore, database

async def main(directory, name, go, busy_timeout_ms):
    database.BUSY_TIMEOUT_MS = int(busy_timeout_ms)
    reports = []
    store = ChatStore.open(Path(directory), "/ws", on_degraded=reports.append)
    while not Path(go).exists():
        await asyncio.sleep(0.001)
    for number in range(200):
        chat = f"{name}-{number % 10}"
        store.begin_turn(chat, llm.Message("user", f"prompt {number}"), model="tiny")
        await store.flush()
        store.checkpoint(chat, llm.Message("assistant", "partial"))
        store.append(chat, llm.Message("assistant", f"answer {number}"))
        store.end_turn(chat, stop_reason="end_turn", usage=llm.Usage(1, 2, 3))
    await store.close()
    if reports:
        sys.exit("degraded: " + reports[0])

asyncio.run(main(*sys.argv[1:]))
"""


@pytest.mark.parametrize("busy_timeout_ms", [5_000, 0], ids=["busy-timeout", "retry-loop-only"])
async def test_two_daemons_writing_at_once_lose_no_turn(tmp_path: Path, busy_timeout_ms: int) -> None:
    go = tmp_path / "go"
    daemons = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITING_DAEMON, str(tmp_path), name, str(go), str(busy_timeout_ms),
            stderr=asyncio.subprocess.PIPE,
        )
        for name in ("left", "right")
    ]
    await asyncio.sleep(0.5)  # both importing and opening: then they start together
    go.touch()
    outputs = await asyncio.wait_for(asyncio.gather(*(daemon.communicate() for daemon in daemons)), 90)
    errors = b"".join(stderr for _, stderr in outputs).decode()

    assert [daemon.returncode for daemon in daemons] == [0, 0], errors
    assert "locked" not in errors
    with database(tmp_path) as connection:
        ended = connection.execute(
            "SELECT substr(c.chat_id, 1, instr(c.chat_id, '-') - 1), count(*) FROM turns t "
            "JOIN chats c ON c.id = t.chat WHERE t.ended_at IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
        answers = connection.execute(
            "SELECT count(*) FROM messages WHERE role = 'assistant' AND status IS NULL"
        ).fetchone()
    assert ended == [("left", 200), ("right", 200)]
    assert answers == (400,)


# -- damaged databases and failing disks


def write_garbage(tmp_path: Path) -> None:
    (tmp_path / DATABASE_NAME).write_bytes(b"this is not a database\n" * 500)


def damage_the_schema_page(tmp_path: Path) -> None:
    with database(tmp_path) as connection:
        connection.execute("CREATE TABLE filler (x)")
        connection.executemany("INSERT INTO filler VALUES (?)", [("x" * 100,)] * 100)
    with open(tmp_path / DATABASE_NAME, "r+b") as file:
        file.seek(100)  # past the header: page 1 holds the schema
        file.write(b"\xff" * 3_000)


@pytest.mark.parametrize("damage", [write_garbage, damage_the_schema_page], ids=["not-a-database", "malformed"])
async def test_a_corrupt_database_is_moved_aside_for_a_fresh_one(
    tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    damage(tmp_path)
    damaged = (tmp_path / DATABASE_NAME).read_bytes()
    reports: list[str] = []

    async with ChatStore.open(tmp_path, WORKSPACE, on_degraded=reports.append) as store:
        run_turn(store, "chat-1", "Still works")
        assert contents(await store.load("chat-1"))[0] == ("user", "Still works", "complete")
        assert not store.degraded

    [moved] = tmp_path.glob(f"{DATABASE_NAME}.corrupt-*")
    assert moved.read_bytes() == damaged
    [report] = reports  # the user is told, since their chats seem to vanish
    assert str(moved) in report and "started a new one" in report
    with database(tmp_path) as connection:
        assert connection.execute("SELECT chat_id FROM chats").fetchall() == [("chat-1",)]


async def test_an_unwritable_state_dir_means_memory_reported_once(tmp_path: Path) -> None:
    # Tests run as root, which ignores permissions; a directory that cannot be
    # created (its parent is a file) fails for root too, with a real OSError.
    (tmp_path / "a-file").write_text("")
    reports: list[str] = []

    async with ChatStore.open(tmp_path / "a-file" / "state", WORKSPACE, on_degraded=reports.append) as store:
        run_turn(store, "chat-1", "Hello")
        run_turn(store, "chat-1", "Again")
        assert [chat.turns for chat in await store.list_chats()] == [2]
        assert store.degraded

    assert len(reports) == 1
    assert "in memory only" in reports[0]


# Real SQLite errors on the writer's connection, raised mid-session: `query_only`
# fails writes with SQLITE_READONLY, `max_page_count` with SQLITE_FULL. (Root
# ignores file modes, and remounting read-only needs privileges CI lacks.)
READ_ONLY = ("PRAGMA query_only = ON", "is read-only")
FULL = ("PRAGMA max_page_count = 1", "the disk is full")


@pytest.mark.parametrize(("failure", "explanation"), [READ_ONLY, FULL], ids=["read-only", "full"])
async def test_a_failing_disk_mid_session_means_memory_reported_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str, explanation: str
) -> None:
    reports: list[tuple[str, threading.Thread]] = []
    store = ChatStore.open(tmp_path, WORKSPACE, on_degraded=lambda m: reports.append((m, threading.current_thread())))
    run_turn(store, "earlier", "Saved on disk")
    store.begin_turn("chat-1", llm.Message("user", "Write a long answer"), model="tiny")
    await store.flush()
    break_disk_at_next(monkeypatch, "checkpoint", failure)

    store.checkpoint("chat-1", llm.Message("assistant", "x" * 100_000))
    store.append("chat-1", llm.Message("assistant", "done"))
    store.end_turn("chat-1", stop_reason="end_turn", usage=llm.Usage())
    run_turn(store, "later", "Kept in memory")

    assert contents(await store.load("chat-1")) == [
        ("user", "Write a long answer", "complete"),
        ("assistant", "done", "complete"),
    ]
    assert [chat.chat_id for chat in await store.list_chats()] == ["later", "chat-1", "earlier"]
    assert store.degraded
    await store.close()
    [(message, thread)] = reports
    assert explanation in message
    assert thread is threading.main_thread()  # on the event loop, not the writer thread


def break_disk_at_next(monkeypatch: pytest.MonkeyPatch, write_name: str, failure: str) -> None:
    """Make the disk fail just before the next write named `write_name` (once)."""
    original = getattr(writes, write_name)
    broken: list[bool] = []

    def failing_write(connection: sqlite3.Connection, **arguments: Any) -> None:
        if not broken:
            broken.append(True)
            connection.execute(failure)
        original(connection, **arguments)

    monkeypatch.setattr(writes, write_name, failing_write)


async def test_a_write_failing_among_queued_ones_costs_only_itself(
    store: ChatStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Writes that queue up together share a transaction; one that fails for its own
    reason (a bug, not the disk) must not take the others down with it."""
    release = threading.Event()
    original_begin, original_rename = writes.begin_turn, writes.rename

    def held_begin_turn(connection: sqlite3.Connection, **arguments: Any) -> None:
        release.wait(5)  # holds the writer while the next writes queue up behind it
        original_begin(connection, **arguments)

    def broken_rename(connection: sqlite3.Connection, **arguments: Any) -> None:
        original_rename(connection, **arguments)
        raise ValueError("a bug in one write")

    monkeypatch.setattr(writes, "begin_turn", held_begin_turn)
    monkeypatch.setattr(writes, "rename", broken_rename)
    store.begin_turn("first", llm.Message("user", "Before"), model="tiny")
    monkeypatch.setattr(writes, "begin_turn", original_begin)
    run_turn(store, "before", "Queued before the bad write")
    store.rename("before", "Never applied")
    run_turn(store, "after", "Queued after the bad write")
    release.set()

    assert contents(await store.load("before"))[0][1] == "Queued before the bad write"
    assert contents(await store.load("after"))[0][1] == "Queued after the bad write"
    assert [chat.title for chat in await store.list_chats() if chat.chat_id == "before"] == ["Queued before the bad write"]
    assert not store.degraded
    assert "could not save the title" in caplog.text


# -- schema versions


def test_migrations_apply_from_an_empty_database() -> None:
    connection = sqlite3.connect(":memory:", isolation_level=None)

    assert schema.migrate(connection) == len(schema.MIGRATIONS) == schema.user_version(connection)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"chats", "messages", "turns"} <= tables


PRETEND_V2 = schema.Migration("pinned chats", ("ALTER TABLE chats ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",))


def write_v1_database_by_hand(path: Path) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    for statement in schema.MIGRATIONS[0].statements:
        connection.execute(statement)
    connection.execute("PRAGMA user_version = 1")
    connection.execute(
        "INSERT INTO chats (id, workspace, chat_id, auto_title, model, created_at, updated_at) "
        "VALUES (1, ?, 'old-chat', 'From v1', 'tiny', 1.0, 2.0)",
        (WORKSPACE,),
    )
    connection.execute("INSERT INTO turns (chat, number, started_at) VALUES (1, 1, 1.0)")
    connection.execute(
        "INSERT INTO messages (chat, position, turn, role, content, created_at) VALUES (1, 0, 1, 'user', 'From v1', 1.0)"
    )
    connection.close()


async def test_an_older_database_is_upgraded_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_v1_database_by_hand(tmp_path / DATABASE_NAME)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, PRETEND_V2))

    async with ChatStore.open(tmp_path, WORKSPACE) as store:
        assert contents(await store.load("old-chat")) == [("user", "From v1", "complete")]
        run_turn(store, "old-chat", "After the upgrade")
        assert [(chat.title, chat.turns) for chat in await store.list_chats()] == [("From v1", 2)]

    with database(tmp_path) as connection:
        assert schema.user_version(connection) == len(schema.MIGRATIONS)
        assert connection.execute("SELECT pinned FROM chats").fetchall() == [(0,)]


async def test_a_database_from_a_newer_daemon_is_left_alone(tmp_path: Path) -> None:
    write_v1_database_by_hand(tmp_path / DATABASE_NAME)
    with database(tmp_path) as connection:
        connection.execute("PRAGMA user_version = 99")
    reports: list[str] = []

    async with ChatStore.open(tmp_path, WORKSPACE, on_degraded=reports.append) as store:
        run_turn(store, "chat-1", "In memory")
        assert await store.exists("chat-1")

    assert len(reports) == 1 and "newer ollama-chatd" in reports[0]
    with database(tmp_path) as connection:
        assert schema.user_version(connection) == 99
        assert connection.execute("SELECT chat_id FROM chats").fetchall() == [("old-chat",)]


# -- the event loop


async def test_a_slow_write_does_not_block_the_event_loop(store: ChatStore, monkeypatch: pytest.MonkeyPatch) -> None:
    original = writes.begin_turn

    def slow_begin_turn(connection: sqlite3.Connection, **arguments: Any) -> None:
        time.sleep(0.5)
        original(connection, **arguments)

    monkeypatch.setattr(writes, "begin_turn", slow_begin_turn)
    await store.flush()
    loop = asyncio.get_running_loop()

    started = loop.time()
    store.begin_turn("chat-1", llm.Message("user", "Hello"), model="tiny")
    returned = loop.time()
    longest_tick = await longest_timer_delay_while(store.flush())
    finished = loop.time()

    assert returned - started < 0.05
    assert longest_tick < 0.1
    assert finished - started >= 0.45  # the write was slow, and ran meanwhile
    assert await store.exists("chat-1")


async def longest_timer_delay_while(work: Any) -> float:
    """How late a 10 ms timer fired at worst while `work` ran."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    worst = 0.0
    while not task.done():
        before = loop.time()
        await asyncio.sleep(0.01)
        worst = max(worst, loop.time() - before - 0.01)
    await task
    return worst


def test_history_answers_tool_calls_a_crash_left_unanswered() -> None:
    from ollama_chatd import llm
    from ollama_chatd.store.records import StoredChat, StoredMessage

    call = llm.ToolCall("read_file", {"path": "a"}, id="call_1")
    other = llm.ToolCall("list_directory", {}, id="call_2")
    messages = (
        StoredMessage(llm.Message("user", "look"), "complete", 1.0),
        StoredMessage(llm.Message("assistant", "", tool_calls=(call, other)), "complete", 2.0),
        StoredMessage(llm.Message("tool", "contents", tool_name="read_file", tool_call_id="call_1"), "complete", 3.0),
    )
    chat = StoredChat("c", None, "m", None, 0.0, 3.0, messages)
    history = chat.history()
    assert [m.role for m in history] == ["user", "assistant", "tool", "tool"]
    assert history[3].tool_call_id == "call_2" and history[3].content.startswith("Error: not run")
