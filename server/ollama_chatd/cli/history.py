"""`ollama-chatd history` and `ollama-chatd export`: the stored chats of a workspace."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ollama_chatd.store import ChatStore, StoredChat, StoreReadError, default_state_dir, iso8601


def run_history(args: argparse.Namespace) -> int:
    return _reporting_read_errors(_history(args))


def run_export(args: argparse.Namespace) -> int:
    return _reporting_read_errors(_export(args))


def _reporting_read_errors(command) -> int:
    try:
        return asyncio.run(command)
    except StoreReadError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _open(args: argparse.Namespace) -> ChatStore:
    workspace = str(Path(args.workspace).resolve())
    return ChatStore.open(args.state_dir or default_state_dir(), workspace)


async def _history(args: argparse.Namespace) -> int:
    async with _open(args) as store:
        if args.chat_id is None:
            chats = await store.list_chats(limit=args.limit)
            for chat in chats:
                print(f"{chat.chat_id}\t{iso8601(chat.updated_at)}\t{_turns(chat.turns)}\t{chat.model or '?'}\t{chat.title or ''}")
            if not chats:
                print("no stored chats for this workspace", file=sys.stderr)
            return 0
        chat = await store.load(args.chat_id)
    if chat is None:
        return _no_such_chat(args.chat_id)
    print(to_markdown(chat))
    return 0


async def _export(args: argparse.Namespace) -> int:
    async with _open(args) as store:
        chat = await store.load(args.chat_id)
    if chat is None:
        return _no_such_chat(args.chat_id)
    print(to_markdown(chat) if args.format == "markdown" else json.dumps(to_json(chat), ensure_ascii=False, indent=2))
    return 0


def _turns(count: int) -> str:
    return f"{count} turn" if count == 1 else f"{count} turns"


def _no_such_chat(chat_id: str) -> int:
    print(f"error: no chat '{chat_id}' in this workspace (`ollama-chatd history` lists them)", file=sys.stderr)
    return 1


def to_markdown(chat: StoredChat) -> str:
    turns = sum(stored.message.role == "user" for stored in chat.messages)
    lines = [f"# {chat.title or chat.chat_id}", "", f"Chat `{chat.chat_id}` with {chat.model or 'an unknown model'}, "
             f"started {iso8601(chat.created_at)}, {_turns(turns)}.", ""]
    for stored in chat.messages:
        message = stored.message
        note = "" if stored.status == "complete" else f" ({'interrupted' if stored.status == 'streaming' else stored.status})"
        if message.role == "tool":
            lines += [f"**Tool `{message.tool_name}` result{note}:**", "", "```", message.content, "```", ""]
            continue
        lines += [f"## {message.role.capitalize()}{note}", ""]
        if message.thinking:
            lines += ["> " + line for line in message.thinking.splitlines()] + [""]
        if message.content:
            lines += [message.content, ""]
        for call in message.tool_calls:
            lines += [f"*Calls `{call.name}` with* `{json.dumps(call.arguments, ensure_ascii=False)}`", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_json(chat: StoredChat) -> dict[str, Any]:
    return {
        "chatId": chat.chat_id,
        "title": chat.title,
        "model": chat.model,
        "createdAt": iso8601(chat.created_at),
        "updatedAt": iso8601(chat.updated_at),
        "messages": [_message_json(stored) for stored in chat.messages],
    }


def _message_json(stored) -> dict[str, Any]:
    message = stored.message
    data: dict[str, Any] = {"role": message.role, "content": message.content, "createdAt": iso8601(stored.created_at)}
    if message.thinking:
        data["thinking"] = message.thinking
    if message.tool_calls:
        data["toolCalls"] = [{"name": c.name, "arguments": c.arguments, **({"id": c.id} if c.id else {})} for c in message.tool_calls]
    if message.tool_name:
        data["toolName"] = message.tool_name
    if stored.status != "complete":
        data["status"] = "interrupted" if stored.status == "streaming" else stored.status
    return data
