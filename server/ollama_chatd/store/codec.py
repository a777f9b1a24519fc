"""`llm.Message` to and from the columns of the messages table."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from ollama_chatd import llm
from ollama_chatd.store.records import MessageStatus

MESSAGE_COLUMNS = ("role", "content", "thinking", "tool_calls", "tool_name", "tool_call_id", "images")


def message_values(message: llm.Message) -> tuple[Any, ...]:
    """The values of `MESSAGE_COLUMNS` for a message."""
    return (
        message.role,
        message.content,
        message.thinking,
        _dump([_tool_call_json(call) for call in message.tool_calls]),
        message.tool_name,
        message.tool_call_id,
        _dump(list(message.images)),
    )


def message_from_row(row: sqlite3.Row) -> llm.Message:
    return llm.Message(
        role=row["role"],
        content=row["content"],
        thinking=row["thinking"],
        images=tuple(_load(row["images"])),
        tool_calls=tuple(_tool_call(item) for item in _load(row["tool_calls"])),
        tool_name=row["tool_name"],
        tool_call_id=row["tool_call_id"],
    )


def stored_status(status: MessageStatus) -> str | None:
    # "complete" is the normal case: stored as NULL, it costs nothing.
    return None if status == "complete" else status


def status_from_row(value: str | None) -> MessageStatus:
    if value in ("streaming", "cancelled", "failed"):
        return value  # type: ignore[return-value]
    return "complete"


def _tool_call_json(call: llm.ToolCall) -> dict[str, Any]:
    item: dict[str, Any] = {"name": call.name, "arguments": call.arguments}
    if call.id is not None:
        item["id"] = call.id
    return item


def _tool_call(item: dict[str, Any]) -> llm.ToolCall:
    return llm.ToolCall(item["name"], item.get("arguments") or {}, item.get("id"))


def _dump(items: list[Any]) -> str | None:
    return json.dumps(items, ensure_ascii=False, separators=(",", ":")) if items else None


def _load(text: str | None) -> list[Any]:
    return json.loads(text) if text else []
