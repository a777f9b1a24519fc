"""SQLite connections: opening, transactions, retries, and what a failure means.

Two kinds of database share one interface, both used by the writer thread only:
`FileDatabase` (the user's file, in WAL mode: a connection that writes and a
query-only one that reads) and `MemoryDatabase` (one connection, for
`--no-store` and for a store that lost its disk).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal, Protocol, TypeVar

from ollama_chatd.store import schema

logger = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5_000
"""How long SQLite itself waits for another connection's lock before giving up."""
CACHE_KIB = 512  # of SQLite page cache per connection

LOCKED_DEADLINE_S = 30.0
"""How long the retry loop keeps trying a locked database before giving up on it."""

ErrorKind = Literal["busy", "corrupt", "unavailable", "other"]

# Primary SQLite result codes (extended codes carry them in their low byte).
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_CORRUPT_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_UNAVAILABLE_CODES = {
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_NOLFS,
}


def classify(error: BaseException) -> ErrorKind:
    """What a failure says about the database: retry, replace it, or stop using the disk."""
    if isinstance(error, (OSError, schema.SchemaTooNew)):
        return "unavailable"
    if not isinstance(error, sqlite3.Error):
        return "other"
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        primary = code & 0xFF
        if primary in _BUSY_CODES:
            return "busy"
        if primary in _CORRUPT_CODES:
            return "corrupt"
        if primary in _UNAVAILABLE_CODES:
            return "unavailable"
        return "other"
    return _classify_by_message(str(error))


def _classify_by_message(message: str) -> ErrorKind:
    # Errors raised by the sqlite3 module itself carry no SQLite code.
    if "locked" in message or "busy" in message:
        return "busy"
    if "not a database" in message or "malformed" in message:
        return "corrupt"
    return "other"


def connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    connection = sqlite3.connect(
        target,
        uri=uri,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # transactions are explicit: see `transaction`
    )
    try:
        # Even setting pragmas can meet SQLITE_BUSY, while another daemon creates the file.
        with_retry(lambda: _configure(connection))
    except BaseException:
        connection.close()
        raise
    return connection


def _configure(connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA foreign_keys = ON")
    # In WAL mode NORMAL survives a killed process; only a power cut may lose
    # the last commits, and it saves an fsync per write.
    connection.execute("PRAGMA synchronous = NORMAL")
    # SQLite's page cache would grow to 2 MiB per connection over a long session; the
    # kernel's file cache serves what falls out of a smaller one.
    connection.execute(f"PRAGMA cache_size = -{CACHE_KIB}")


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection, *, write: bool) -> Iterator[sqlite3.Connection]:
    # IMMEDIATE takes the write lock up front: a deferred transaction upgrading
    # to a writer can fail with SQLITE_BUSY without ever calling the busy handler.
    connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def with_retry(action: Callable[[], T], *, deadline_s: float = LOCKED_DEADLINE_S) -> T:
    """Run `action`, again and again while the database is locked by someone else.

    `busy_timeout` covers most waits, but SQLite returns SQLITE_BUSY without
    waiting in some cases (a WAL snapshot gone stale, recovery by another
    process); a short randomized backoff lets two daemons interleave.
    """
    give_up_at = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            return action()
        except sqlite3.Error as error:
            if classify(error) != "busy" or time.monotonic() >= give_up_at:
                raise
            logger.debug("database busy, retrying: %s", error)
        time.sleep(random.uniform(delay / 2, delay))
        delay = min(delay * 2, 0.25)


def run_in_transaction(
    connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T], *, write: bool
) -> T:
    def attempt() -> T:
        with transaction(connection, write=write):
            return work(connection)

    return with_retry(attempt)


class Database(Protocol):
    location: Path | None
    """The database file, or None when it lives in memory."""

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in a write transaction; only ever called from the writer thread."""
        ...

    def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        """Run `query` in a read transaction (one consistent snapshot), on the writer thread too."""
        ...

    def close(self) -> None: ...


class FileDatabase:
    """The database file. Create it with `open`, on the thread that will write."""

    def __init__(self, path: Path, writer: sqlite3.Connection):
        self.location: Path | None = path
        self._writer = writer
        self._reader: sqlite3.Connection | None = None

    @classmethod
    def open(cls, path: Path) -> FileDatabase:
        """Create or open the file, switch it to WAL, migrate it.

        Raises OSError, `sqlite3.Error` or `schema.SchemaTooNew`; `classify` tells them apart.
        """
        # Private: the database holds every prompt of the user. An empty file is an
        # empty database, and SQLite gives its -wal and -shm files the same mode.
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        writer = connect(str(path))
        try:
            mode = with_retry(lambda: writer.execute("PRAGMA journal_mode = WAL").fetchone()[0])
            if mode != "wal":
                logger.warning("%s: WAL mode unavailable (journal mode %s); concurrent daemons will wait more", path, mode)
            with_retry(lambda: schema.migrate(writer))
        except BaseException:
            writer.close()
            raise
        return cls(path, writer)

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return run_in_transaction(self._writer, work, write=True)

    def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            self._reader = connect(str(self.location))
            self._reader.execute("PRAGMA query_only = ON")
        return run_in_transaction(self._reader, query, write=False)

    def close(self) -> None:
        """Close both connections; call it on the writer thread."""
        with contextlib.suppress(sqlite3.Error):
            self._writer.execute("PRAGMA optimize")
        self._writer.close()
        if self._reader is not None:
            self._reader.close()


class MemoryDatabase:
    """A private in-memory database: one connection."""

    def __init__(self) -> None:
        self.location: Path | None = None
        self._connection = connect(":memory:")
        schema.migrate(self._connection)

    def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with transaction(self._connection, write=True):
            return work(self._connection)

    def read(self, query: Callable[[sqlite3.Connection], T]) -> T:
        with transaction(self._connection, write=False):
            return query(self._connection)

    def close(self) -> None:
        self._connection.close()


FileIdentity = tuple[int, int]


def file_identity(path: Path) -> FileIdentity | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_dev, status.st_ino)


def move_aside(path: Path, expected: FileIdentity | None) -> Path | None:
    """Rename a corrupt database (and its WAL) to `<name>.corrupt-<timestamp>`.

    Returns the new name, or None if the file is no longer the one found corrupt:
    another daemon already moved it aside and started a fresh one, which must
    not be moved in its turn.
    """
    if expected is None or file_identity(path) != expected:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    suffix = 1
    while target.exists():
        suffix += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{suffix}")
    os.replace(path, target)
    # A leftover WAL would be replayed into the fresh database: keep it with its
    # database; the shared-memory index is derived data.
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        os.replace(wal, target.with_name(target.name + "-wal"))
    with contextlib.suppress(FileNotFoundError):
        path.with_name(path.name + "-shm").unlink()
    return target
