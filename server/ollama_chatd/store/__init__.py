"""Conversations that survive the daemon: a crash-safe SQLite store of every chat.

One database per user (`default_state_dir()/chats.sqlite3`), shared by every
daemon of that user, in WAL mode; chats are scoped by workspace. See
`ChatStore` for the API and `schema` for the tables.
"""

from ollama_chatd.store.chat_store import DATABASE_NAME, ChatStore, StoreReadError, default_state_dir
from ollama_chatd.store.reads import InvalidCursor
from ollama_chatd.store.records import (
    ChatSummary,
    MessageStatus,
    StoredChat,
    StoredMessage,
    derive_title,
    iso8601,
)

__all__ = [
    "DATABASE_NAME",
    "ChatStore",
    "ChatSummary",
    "InvalidCursor",
    "MessageStatus",
    "StoredChat",
    "StoredMessage",
    "StoreReadError",
    "default_state_dir",
    "derive_title",
    "iso8601",
]
