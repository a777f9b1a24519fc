"""Every write of the store, as a function of a connection inside a transaction.

They run on the writer thread, in the order the event loop asked for them. A
write about a chat that does not exist (deleted meanwhile, by this daemon or
another) is dropped: there is nothing left to attach it to.
"""

from __future__ import annotations

import logging
import sqlite3

from ollama_chatd import llm
from ollama_chatd.store.codec import MESSAGE_COLUMNS, message_values, stored_status
from ollama_chatd.store.records import MessageStatus, derive_title

logger = logging.getLogger(__name__)

_INSERT_MESSAGE = (
    f"INSERT INTO messages (chat, position, turn, {', '.join(MESSAGE_COLUMNS)}, status, created_at) "
    f"VALUES (?, ?, ?, {', '.join('?' for _ in MESSAGE_COLUMNS)}, ?, ?)"
)
_UPDATE_MESSAGE = (
    f"UPDATE messages SET {', '.join(f'{column} = ?' for column in MESSAGE_COLUMNS)}, status = ? WHERE id = ?"
)


def begin_turn(
    connection: sqlite3.Connection,
    *,
    workspace: str,
    chat_id: str,
    user: llm.Message,
    model: str,
    system: str | None,
    now: float,
) -> None:
    """Start a turn with the user's message, creating the chat (and its system prompt) if new."""
    chat = _chat_key(connection, workspace, chat_id)
    if chat is None:
        chat = _create_chat(connection, workspace, chat_id, user, model, system, now)
    else:
        connection.execute("UPDATE chats SET model = ?, updated_at = ? WHERE id = ?", (model, now, chat))
    turn = (_current_turn(connection, chat) or 0) + 1
    connection.execute("INSERT INTO turns (chat, number, started_at) VALUES (?, ?, ?)", (chat, turn, now))
    _insert_message(connection, chat, turn, user, "complete", now)


def checkpoint(
    connection: sqlite3.Connection, *, workspace: str, chat_id: str, partial: llm.Message, now: float
) -> None:
    """Save the answer being streamed so far, replacing the previous checkpoint of this turn."""
    chat = _existing_chat(connection, workspace, chat_id, "checkpoint")
    if chat is None:
        return
    turn = _current_turn(connection, chat)
    row = _streaming_row(connection, chat, turn)
    if row is None:
        _insert_message(connection, chat, turn, partial, "streaming", now)
    else:
        connection.execute(_UPDATE_MESSAGE, (*message_values(partial), "streaming", row))
    _touch(connection, chat, now)


def append(
    connection: sqlite3.Connection,
    *,
    workspace: str,
    chat_id: str,
    message: llm.Message,
    status: MessageStatus,
    now: float,
) -> None:
    """Add a finished message; an assistant message replaces this turn's checkpointed partial."""
    chat = _existing_chat(connection, workspace, chat_id, "message")
    if chat is None:
        return
    turn = _current_turn(connection, chat)
    row = _streaming_row(connection, chat, turn) if message.role == "assistant" else None
    if row is None:
        _insert_message(connection, chat, turn, message, status, now)
    else:
        connection.execute(_UPDATE_MESSAGE, (*message_values(message), stored_status(status), row))
    _touch(connection, chat, now)


def end_turn(
    connection: sqlite3.Connection,
    *,
    workspace: str,
    chat_id: str,
    stop_reason: str,
    usage: llm.Usage,
    status_of_partial: MessageStatus | None,
    now: float,
) -> None:
    """Record how the turn ended; a partial answer still marked streaming gets its final status."""
    chat = _existing_chat(connection, workspace, chat_id, "end of turn")
    if chat is None:
        return
    turn = _current_turn(connection, chat)
    row = _streaming_row(connection, chat, turn)
    if row is not None:
        status = status_of_partial or ("cancelled" if stop_reason == "cancelled" else "failed")
        connection.execute("UPDATE messages SET status = ? WHERE id = ?", (stored_status(status), row))
    connection.execute(
        "UPDATE turns SET ended_at = ?, stop_reason = ?, prompt_tokens = ?, completion_tokens = ?, "
        "total_duration_ns = ? WHERE chat = ? AND number = ?",
        (now, stop_reason, usage.prompt_tokens, usage.completion_tokens, usage.total_duration_ns, chat, turn),
    )
    _touch(connection, chat, now)


def discard_turn(connection: sqlite3.Connection, *, workspace: str, chat_id: str) -> None:
    """Forget the last turn entirely (it produced nothing, and a retry must not repeat
    its prompt); a chat left without turns is forgotten too."""
    chat = _existing_chat(connection, workspace, chat_id, "discarded turn")
    if chat is None:
        return
    turn = _current_turn(connection, chat)
    if turn is not None:
        connection.execute("DELETE FROM messages WHERE chat = ? AND turn = ?", (chat, turn))
        connection.execute("DELETE FROM turns WHERE chat = ? AND number = ?", (chat, turn))
    if _current_turn(connection, chat) is None:
        connection.execute("DELETE FROM chats WHERE id = ?", (chat,))


def before_change(
    connection: sqlite3.Connection,
    *,
    workspace: str,
    chat_id: str,
    path: str,
    display_path: str,
    text: str | None,
    mode: int | None,
) -> None:
    """What a file was before the current turn changed it; the turn's first record of it stays."""
    chat = _existing_chat(connection, workspace, chat_id, "record of a file change")
    if chat is None or (turn := _current_turn(connection, chat)) is None:
        return
    connection.execute(
        "INSERT INTO file_changes (chat, turn, path, display_path, before_text, before_mode) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (chat, turn, path) DO NOTHING",
        (chat, turn, path, display_path, text, mode),
    )


def after_change(connection: sqlite3.Connection, *, workspace: str, chat_id: str, path: str, text: str | None) -> None:
    """What the current turn's change left in a file (None: deleted it)."""
    chat = _existing_chat(connection, workspace, chat_id, "record of a file change")
    if chat is None:
        return
    connection.execute(
        "UPDATE file_changes SET after_text = ?, after_known = 1 WHERE chat = ? AND turn = ? AND path = ?",
        (text, chat, _current_turn(connection, chat), path),
    )


def drop_turns(connection: sqlite3.Connection, *, workspace: str, chat_id: str, first: int) -> None:
    """Forget the chat's turns from the `first` (0-based, counting user messages) on, with
    their messages and file records; a chat left without turns is forgotten too."""
    chat = _existing_chat(connection, workspace, chat_id, "reverted turns")
    if chat is None:
        return
    row = connection.execute(
        "SELECT position, turn FROM messages WHERE chat = ? AND role = 'user' ORDER BY position LIMIT 1 OFFSET ?",
        (chat, first),
    ).fetchone()
    if row is None:
        return
    position, turn = row
    connection.execute("DELETE FROM messages WHERE chat = ? AND position >= ?", (chat, position))
    connection.execute("DELETE FROM turns WHERE chat = ? AND number >= ?", (chat, turn))
    connection.execute("DELETE FROM file_changes WHERE chat = ? AND turn >= ?", (chat, turn))
    if _current_turn(connection, chat) is None:
        connection.execute("DELETE FROM chats WHERE id = ?", (chat,))


def rename(connection: sqlite3.Connection, *, workspace: str, chat_id: str, title: str | None) -> None:
    """Set the chat's title; an empty one restores the title derived from the first prompt."""
    title = (title or "").strip() or None
    connection.execute(
        "UPDATE chats SET title = ? WHERE workspace = ? AND chat_id = ?", (title, workspace, chat_id)
    )


def delete(connection: sqlite3.Connection, *, workspace: str, chat_id: str) -> None:
    # Messages and turns go with it (ON DELETE CASCADE).
    connection.execute("DELETE FROM chats WHERE workspace = ? AND chat_id = ?", (workspace, chat_id))


def _create_chat(
    connection: sqlite3.Connection,
    workspace: str,
    chat_id: str,
    user: llm.Message,
    model: str,
    system: str | None,
    now: float,
) -> int:
    cursor = connection.execute(
        "INSERT INTO chats (workspace, chat_id, auto_title, model, system, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (workspace, chat_id, derive_title(user.content), model, system, now, now),
    )
    chat = cursor.lastrowid
    assert chat is not None
    if system:
        _insert_message(connection, chat, None, llm.Message("system", system), "complete", now)
    return chat


def _chat_key(connection: sqlite3.Connection, workspace: str, chat_id: str) -> int | None:
    row = connection.execute(
        "SELECT id FROM chats WHERE workspace = ? AND chat_id = ?", (workspace, chat_id)
    ).fetchone()
    return None if row is None else int(row[0])


def _existing_chat(connection: sqlite3.Connection, workspace: str, chat_id: str, what: str) -> int | None:
    chat = _chat_key(connection, workspace, chat_id)
    if chat is None:
        logger.info("chat '%s' is not stored (deleted?); its %s was not saved", chat_id, what)
    return chat


def _current_turn(connection: sqlite3.Connection, chat: int) -> int | None:
    row = connection.execute("SELECT max(number) FROM turns WHERE chat = ?", (chat,)).fetchone()
    return None if row[0] is None else int(row[0])


def _streaming_row(connection: sqlite3.Connection, chat: int, turn: int | None) -> int | None:
    row = connection.execute(
        "SELECT id FROM messages WHERE chat = ? AND status = 'streaming' AND turn IS ? "
        "ORDER BY position DESC LIMIT 1",
        (chat, turn),
    ).fetchone()
    return None if row is None else int(row[0])


def _insert_message(
    connection: sqlite3.Connection,
    chat: int,
    turn: int | None,
    message: llm.Message,
    status: MessageStatus,
    now: float,
) -> None:
    row = connection.execute(
        "SELECT coalesce(max(position) + 1, 0) FROM messages WHERE chat = ?", (chat,)
    ).fetchone()
    connection.execute(_INSERT_MESSAGE, (chat, row[0], turn, *message_values(message), stored_status(status), now))


def _touch(connection: sqlite3.Connection, chat: int, now: float) -> None:
    connection.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (now, chat))
