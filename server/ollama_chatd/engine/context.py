"""Keeping a conversation inside the model's context window.

The prompt's size is estimated before each request; when the history would not
fit, the oldest whole turns are left out of the request (never the system
prompt, never the newest user message, never half of a tool exchange). The
history itself keeps everything; only the request is trimmed.

Trimming goes in large steps: down to about half the room the system prompt and the
tool definitions leave for the history (`REFILL_SHARE`), not just below the budget.
The request's beginning then stays the same for several turns, so the model server
keeps reusing its cache of the prompt's prefix (its KV cache) instead of re-reading
the whole history after each turn once the window is full.
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
REFILL_SHARE = 0.5  # after a trim, the history fills about this share of the room left for it


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
    return sum(map(message_tokens, messages)) + tools_tokens(tools)


def message_tokens(message: llm.Message) -> int:
    return _message_chars(message) // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS


def tools_tokens(tools: Sequence[llm.ToolSpec]) -> int:
    return sum(len(tool.description) + len(json.dumps(tool.parameters)) for tool in tools) // CHARS_PER_TOKEN


def _message_chars(message: llm.Message) -> int:
    chars = len(message.content) + len(message.thinking or "")
    for call in message.tool_calls:
        chars += len(call.name) + len(json.dumps(call.arguments))
    # An image costs hundreds of tokens whatever its size in bytes.
    return chars + 768 * CHARS_PER_TOKEN * len(message.images)


def fit_window(
    messages: Sequence[llm.Message], start: int, budget: int, tools: Sequence[llm.ToolSpec] = ()
) -> int:
    """The index from which the history is sent (at least `start`): `start` itself while
    everything from it fits in `budget` tokens, else the oldest turn from which the history
    fills at most `REFILL_SHARE` of the room the system prompt and `tools` leave in the
    budget. One pass over the messages.

    `messages[0]` may be the system prompt, always kept; `start` is where the window
    began last time, so a window only ever moves forward (a stable prefix lets the
    model server reuse its cache). The window always starts at a user message and
    keeps the newest one.
    """
    head = 1 if messages and messages[0].role == "system" else 0
    start = max(start, head)
    fixed = sum(map(message_tokens, messages[:head])) + tools_tokens(tools)
    costs = [message_tokens(message) for message in messages[start:]]
    if fixed + sum(costs) <= budget:
        return start
    target = fixed + (budget - fixed) * REFILL_SHARE
    suffix = fixed
    chosen = None
    for index in range(len(messages) - 1, start - 1, -1):  # newest first, summing as we go
        suffix += costs[index - start]
        if messages[index].role != "user":
            continue
        if chosen is None or suffix <= target:
            chosen = index  # the newest user message always; older turns while they fit
        if suffix > target:
            break
    return start if chosen is None else chosen
