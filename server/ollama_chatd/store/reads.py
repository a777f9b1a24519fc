"""Every read of the store, as a function of a connection inside a read transaction."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import attrs

from ollama_chatd.events import FileChange
from ollama_chatd.store.codec import message_from_row, status_from_row
from ollama_chatd.store.records import ChatSummary, RevertPlan, StoredChat, StoredMessage


class InvalidCursor(ValueError):
    def __init__(self, cursor: str):
        super().__init__(f"invalid `before` cursor {cursor!r}: pass the `cursor` of a listed chat")


def encode_cursor(updated_at: float, key: int) -> str:
    # updated_at alone is ambiguous when chats share it; the row key breaks ties.
    return f"{updated_at!r}:{key}"


def decode_cursor(cursor: str) -> tuple[float, int]:
    updated_at, _, key = cursor.rpartition(":")
    try:
        return float(updated_at), int(key)
    except ValueError:
        raise InvalidCursor(cursor) from None


def exists(connection: sqlite3.Connection, *, workspace: str, chat_id: str) -> bool:
    row = connection.execute(
        "SELECT 1 FROM chats WHERE workspace = ? AND chat_id = ?", (workspace, chat_id)
    ).fetchone()
    return row is not None


def load(connection: sqlite3.Connection, *, workspace: str, chat_id: str) -> StoredChat | None:
    rows = connection.cursor()
    rows.row_factory = sqlite3.Row  # on this cursor only: the writer's other queries take tuples
    chat = rows.execute(
        "SELECT id, chat_id, coalesce(title, auto_title) AS title, model, system, created_at, updated_at "
        "FROM chats WHERE workspace = ? AND chat_id = ?",
        (workspace, chat_id),
    ).fetchone()
    if chat is None:
        return None
    messages = rows.execute("SELECT * FROM messages WHERE chat = ? ORDER BY position", (chat["id"],)).fetchall()
    return StoredChat(
        chat_id=chat["chat_id"],
        title=chat["title"],
        model=chat["model"],
        system=chat["system"],
        created_at=chat["created_at"],
        updated_at=chat["updated_at"],
        messages=tuple(_stored_message(row) for row in messages),
    )


def revert_plan(connection: sqlite3.Connection, *, workspace: str, chat_id: str, first: int) -> RevertPlan | None:
    """What reverting the chat's turns from the `first` (0-based, counting user messages) on
    would touch; None when the chat does not exist."""
    chat = connection.execute(
        "SELECT id FROM chats WHERE workspace = ? AND chat_id = ?", (workspace, chat_id)
    ).fetchone()
    if chat is None:
        return None
    users = connection.execute(
        "SELECT position, turn FROM messages WHERE chat = ? AND role = 'user' ORDER BY position", (chat[0],)
    ).fetchall()
    if not 0 <= first < len(users):
        return RevertPlan(turns=len(users), changes=(), commands=())
    position, turn = users[first]
    changes = connection.execute(
        "SELECT path, display_path, before_text, before_mode, after_text, after_known FROM file_changes "
        "WHERE chat = ? AND turn >= ? ORDER BY turn, id",
        (chat[0], turn),
    ).fetchall()
    calls = connection.execute(
        "SELECT tool_calls FROM messages WHERE chat = ? AND position > ? AND tool_calls IS NOT NULL",
        (chat[0], position),
    ).fetchall()
    return RevertPlan(turns=len(users), changes=_per_file(changes), commands=_commands(calls))


def _per_file(rows: list[tuple[Any, ...]]) -> tuple[FileChange, ...]:
    """One change per file, oldest turn first: what it was before the first of the turns,
    and what the last of them left."""
    by_path: dict[str, FileChange] = {}
    for path, display_path, before_text, before_mode, after_text, after_known in rows:
        change = FileChange(path, display_path, before_text, before_mode, after_text, bool(after_known))
        if (earlier := by_path.get(path)) is not None:
            # A later change that never finished most likely did not land: the earlier one's result stays.
            later = change if change.after_known else earlier
            change = attrs.evolve(earlier, after_text=later.after_text, after_known=later.after_known)
        by_path[path] = change
    return tuple(by_path.values())


def _commands(rows: list[tuple[Any, ...]]) -> tuple[str, ...]:
    """The commands `run_command` calls asked for, in order."""
    commands = []
    for (encoded,) in rows:
        for call in json.loads(encoded):
            arguments = call.get("arguments")
            if call.get("name") == "run_command" and isinstance(arguments, dict):
                commands.append(str(arguments.get("command", "")))
    return tuple(commands)


_LIST_COLUMNS = (
    "SELECT c.id, c.chat_id, coalesce(c.title, c.auto_title), c.model, c.created_at, c.updated_at, "
    "(SELECT count(*) FROM messages m WHERE m.chat = c.id AND m.role = 'user') "
    "FROM chats c WHERE c.workspace = ? "
)
_LIST_ORDER = "ORDER BY c.updated_at DESC, c.id DESC LIMIT ?"


def list_chats(
    connection: sqlite3.Connection, *, workspace: str, limit: int, before: str | None
) -> list[ChatSummary]:
    if before is None:
        rows = connection.execute(_LIST_COLUMNS + _LIST_ORDER, (workspace, limit))
    else:
        updated_at, key = decode_cursor(before)
        rows = connection.execute(
            _LIST_COLUMNS + "AND (c.updated_at, c.id) < (?, ?) " + _LIST_ORDER,
            (workspace, updated_at, key, limit),
        )
    return [
        ChatSummary(chat_id, title, model, created_at, updated_at, turns, encode_cursor(updated_at, key))
        for key, chat_id, title, model, created_at, updated_at, turns in rows
    ]


@attrs.frozen
class WorkspaceRows:
    """A workspace's rows, table by table, to carry them to another database."""

    tables: tuple[tuple[str, tuple[str, ...], list[tuple[Any, ...]]], ...]


_WORKSPACE_ROWS = (
    ("chats", "SELECT * FROM chats WHERE workspace = ?"),
    ("turns", "SELECT t.* FROM turns t JOIN chats c ON c.id = t.chat WHERE c.workspace = ?"),
    ("messages", "SELECT m.* FROM messages m JOIN chats c ON c.id = m.chat WHERE c.workspace = ?"),
    ("file_changes", "SELECT f.* FROM file_changes f JOIN chats c ON c.id = f.chat WHERE c.workspace = ?"),
)


def workspace_rows(connection: sqlite3.Connection, *, workspace: str) -> WorkspaceRows:
    tables = []
    for table, query in _WORKSPACE_ROWS:
        cursor = connection.execute(query, (workspace,))
        columns = tuple(description[0] for description in cursor.description)
        tables.append((table, columns, [tuple(row) for row in cursor]))
    return WorkspaceRows(tuple(tables))


def insert_rows(connection: sqlite3.Connection, rows: WorkspaceRows) -> None:
    """The write that `workspace_rows` is read for (same schema version on both sides)."""
    for table, columns, values in rows.tables:
        placeholders = ", ".join("?" for _ in columns)
        connection.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", values)


def _stored_message(row: sqlite3.Row) -> StoredMessage:
    return StoredMessage(message_from_row(row), status_from_row(row["status"]), row["created_at"])
