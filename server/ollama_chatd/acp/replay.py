"""A stored chat as the `session/update`s that show it again (`session/load`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from acp.helpers import update_agent_message_text, update_agent_thought_text, update_user_message_text

from ollama_chatd import llm
from ollama_chatd.acp import tool_calls
from ollama_chatd.store import StoredChat
from ollama_chatd.tools.workspace import Workspace


def replay(chat: StoredChat, workspace: Workspace) -> Iterator[Any]:
    """User and assistant text, thinking, and each tool call with its result."""
    numbers = itertools.count(1)
    unanswered: list[tuple[str, llm.ToolCall]] = []
    for message in chat.history():
        if message.role == "user":
            yield update_user_message_text(message.content)
        elif message.role == "assistant":
            if message.thinking:
                yield update_agent_thought_text(message.thinking)
            if message.content:
                yield update_agent_message_text(message.content)
            unanswered += [(f"history-{next(numbers)}", call) for call in message.tool_calls]
        elif message.role == "tool" and unanswered:
            call_id, call = unanswered.pop(0)
            yield _finished_call(call_id, call, message.content, workspace)


def _finished_call(call_id: str, call: llm.ToolCall, result: str, workspace: Workspace) -> Any:
    # The tools word every failure as "Error: ..." for the model.
    status = "failed" if result.startswith("Error:") else "completed"
    return tool_calls.started(call_id, call.name, call.arguments, workspace, status, result)
