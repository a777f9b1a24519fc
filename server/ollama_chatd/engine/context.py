"""Keeping a conversation inside the model's context window.

The prompt's size is estimated before each request; when the history would not
fit, the oldest whole turns are left out of the request (never the system
prompt, never the newest user message, never half of a tool exchange). The
history itself keeps everything; only the request is trimmed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ollama_chatd import llm
from ollama_chatd.structuring import is_integer

# Code and prose average about 3.5-4 characters per token; 3 errs on the safe side.
CHARS_PER_TOKEN = 3
MESSAGE_OVERHEAD_TOKENS = 4  # role markers and separators of the chat template
MAX_ANSWER_RESERVE = 2048


def context_size(info: llm.ModelInfo, options: dict | None, max_context: int) -> int:
    """The chat's num_ctx: asked for explicitly, else the model's, capped by `max_context`."""
    asked = (options or {}).get("num_ctx")
    if is_integer(asked) and asked > 0:
        return asked
    trained = info.context_length if info.context_length and info.context_length > 0 else max_context
    return min(trained, max_context)


def answer_reserve(num_ctx: int) -> int:
    """Room left for the answer itself."""
    return min(MAX_ANSWER_RESERVE, num_ctx // 4)


def estimate_tokens(messages: Sequence[llm.Message], tools: Sequence[llm.ToolSpec] = ()) -> int:
    chars = sum(_message_chars(message) for message in messages)
    chars += sum(len(tool.description) + len(json.dumps(tool.parameters)) for tool in tools)
    return chars // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS * len(messages)


def _message_chars(message: llm.Message) -> int:
    chars = len(message.content) + len(message.thinking or "")
    for call in message.tool_calls:
        chars += len(call.name) + len(json.dumps(call.arguments))
    # An image costs hundreds of tokens whatever its size in bytes.
    return chars + 768 * CHARS_PER_TOKEN * len(message.images)


def fit_window(
    messages: Sequence[llm.Message], start: int, budget: int, tools: Sequence[llm.ToolSpec] = ()
) -> int:
    """The index from which the history fits in `budget` tokens (at least `start`).

    `messages[0]` may be the system prompt, always kept; `start` is where the
    window began last time, so a window only ever moves forward (a stable prefix
    lets Ollama reuse its cache). The window always starts at a user message and
    keeps the newest one.
    """
    head = list(messages[:1]) if messages and messages[0].role == "system" else []
    turn_starts = [i for i in range(max(start, len(head)), len(messages)) if messages[i].role == "user"]
    for first in turn_starts[:-1]:
        if estimate_tokens([*head, *messages[first:]], tools) <= budget:
            return first
    return turn_starts[-1] if turn_starts else start
