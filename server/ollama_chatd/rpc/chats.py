"""Stored chats, as `chat/list` and `chat/history` show them."""

from __future__ import annotations

from ollama_chatd.rpc import messages
from ollama_chatd.store import ChatSummary, StoredChat, StoredMessage, iso8601


def entry(summary: ChatSummary) -> messages.ChatEntry:
    return messages.ChatEntry(
        chat_id=summary.chat_id,
        title=summary.title,
        model=summary.model,
        created_at=iso8601(summary.created_at),
        updated_at=iso8601(summary.updated_at),
        turns=summary.turns,
        cursor=summary.cursor,
    )


def history(chat: StoredChat, *, running: bool) -> messages.HistoryResult:
    return messages.HistoryResult(
        chat_id=chat.chat_id,
        title=chat.title,
        model=chat.model,
        messages=[_message(stored, running) for stored in chat.messages],
    )


def _message(stored: StoredMessage, running: bool) -> messages.HistoryMessage:
    message = stored.message
    calls = [messages.HistoryToolCall(name=c.name, arguments=c.arguments, id=c.id) for c in message.tool_calls]
    return messages.HistoryMessage(
        role=message.role,
        content=message.content,
        created_at=iso8601(stored.created_at),
        thinking=message.thinking,
        tool_calls=calls or None,
        tool_name=message.tool_name,
        status=_status(stored.status, running),
    )


def _status(status: str | None, running: bool) -> str | None:
    # A checkpoint of a turn that is not running any more was cut short by a crash.
    if status == "streaming" and not running:
        return "interrupted"
    return None if status == "complete" else status
