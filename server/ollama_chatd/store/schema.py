"""The database schema, as an ordered list of migrations.

The database's `PRAGMA user_version` is the number of migrations applied to it.
A new schema change is a new `Migration` appended to `MIGRATIONS`; never edit
one that has shipped, since databases in the field already went through it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import attrs


@attrs.frozen
class Migration:
    description: str
    statements: tuple[str, ...]


class SchemaTooNew(Exception):
    """The database was written by a newer ollama-chatd; this one must not write to it."""

    def __init__(self, found: int, known: int):
        super().__init__(
            f"it was written by a newer ollama-chatd (schema version {found}; this one knows up to {known})"
        )
        self.found = found
        self.known = known


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "chats, their messages and turns",
        (
            """
            CREATE TABLE chats (
                id INTEGER PRIMARY KEY,
                workspace TEXT NOT NULL,
                chat_id TEXT NOT NULL,
                title TEXT,              -- set by the user; NULL: use auto_title
                auto_title TEXT,         -- derived from the first prompt
                model TEXT,
                system TEXT,
                created_at REAL NOT NULL,
                updated_at REAL NOT NULL,
                UNIQUE (workspace, chat_id)
            )
            """,
            # The chat list: newest first within a workspace (rowid breaks ties).
            "CREATE INDEX chats_by_recency ON chats (workspace, updated_at)",
            """
            CREATE TABLE turns (
                id INTEGER PRIMARY KEY,
                chat INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
                number INTEGER NOT NULL,
                started_at REAL NOT NULL,
                ended_at REAL,
                stop_reason TEXT,
                prompt_tokens INTEGER,
                completion_tokens INTEGER,
                total_duration_ns INTEGER,
                UNIQUE (chat, number)
            )
            """,
            """
            CREATE TABLE messages (
                id INTEGER PRIMARY KEY,
                chat INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                turn INTEGER,            -- turns.number; NULL for the system prompt
                role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
                content TEXT NOT NULL,
                thinking TEXT,
                tool_calls TEXT,         -- JSON [{name, arguments, id?}]
                tool_name TEXT,
                tool_call_id TEXT,
                images TEXT,             -- JSON [base64]
                status TEXT CHECK (status IN ('complete', 'streaming', 'cancelled', 'failed')),
                created_at REAL NOT NULL,
                UNIQUE (chat, position)
            )
            """,
            # Counting a chat's turns (its user messages) for the chat list.
            "CREATE INDEX messages_from_users ON messages (chat) WHERE role = 'user'",
        ),
    ),
    Migration(
        "what each turn's file changes replaced, to revert them",
        (
            """
            CREATE TABLE file_changes (
                id INTEGER PRIMARY KEY,
                chat INTEGER NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
                turn INTEGER NOT NULL,   -- turns.number of the turn that changed the file
                path TEXT NOT NULL,      -- the real path
                display_path TEXT NOT NULL,
                before_text TEXT,        -- NULL: the file did not exist before the turn
                before_mode INTEGER,
                after_text TEXT,         -- what the turn's last change left; NULL: deleted (or not known)
                after_known INTEGER NOT NULL DEFAULT 0,
                UNIQUE (chat, turn, path)
            )
            """,
        ),
    ),
    Migration(
        "finding a turn's streaming checkpoint without reading the chat's whole history",
        (
            # Every finished message and end of turn looks for the checkpoint it replaces; by the
            # chat's positions alone that read every message of a long chat, at every turn.
            "CREATE INDEX messages_streaming ON messages (chat, turn, position) WHERE status = 'streaming'",
        ),
    ),
)


def user_version(connection: sqlite3.Connection) -> int:
    version: int = connection.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate(connection: sqlite3.Connection, migrations: Sequence[Migration] | None = None) -> int:
    """Bring the database up to the latest schema in place; return its version.

    Each migration runs in its own transaction, taken with a write lock and the
    version re-read under it, so two daemons starting together migrate once.
    The connection must be in autocommit mode (`isolation_level=None`).
    """
    steps = MIGRATIONS if migrations is None else migrations
    while True:
        version = user_version(connection)
        if version > len(steps):
            raise SchemaTooNew(version, len(steps))
        if version == len(steps):
            return version
        _apply(connection, steps, version)


def _apply(connection: sqlite3.Connection, steps: Sequence[Migration], expected_version: int) -> None:
    connection.execute("BEGIN IMMEDIATE")
    try:
        if user_version(connection) == expected_version:  # else another process just did it
            for statement in steps[expected_version].statements:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {expected_version + 1}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
