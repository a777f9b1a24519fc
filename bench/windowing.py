"""The history of a recorded chat, and the windows the daemon's former policy would have sent.

The former policy (the anchor of issue 15, part 1) left out the oldest whole turn, then the
next, until the history fitted: once the window is full, every request starts one turn later
than the one before. Sizes are the daemon's own estimate (ollama_chatd.engine.context).
"""

from __future__ import annotations

from typing import Any

from ollama_chatd import llm
from ollama_chatd.engine.context import answer_reserve, estimate_tokens


def _message(wire: dict[str, Any]) -> llm.Message:
    return llm.Message(wire["role"], wire.get("content", ""), thinking=wire.get("thinking"))


def _tool(wire: dict[str, Any]) -> llm.ToolSpec:
    function = wire["function"]
    return llm.ToolSpec(function["name"], function.get("description", ""), function.get("parameters", {}))


def estimate(body: dict[str, Any]) -> int:
    """The daemon's estimate of a request's prompt, in tokens."""
    return estimate_tokens([_message(m) for m in body["messages"]], [_tool(t) for t in body.get("tools") or ()])


def history(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat's messages, from the requests of its turns (one user message and one answer each,
    no tools run): each request ends with its turn's prompt, and the next holds its answer."""
    first = bodies[0]["messages"]
    messages = first[:1] if first[0]["role"] == "system" else []
    for turn, body in enumerate(bodies):
        messages.append(body["messages"][-1])
        if turn + 1 < len(bodies):
            messages.append(bodies[turn + 1]["messages"][-2])
    return messages


def until_turn(messages: list[dict[str, Any]], turn: int) -> list[dict[str, Any]]:
    """The history as it stood when turn `turn` (from 0) was asked."""
    head = 1 if messages[0]["role"] == "system" else 0
    return messages[: head + 2 * turn + 1]


def drop_oldest(messages: list[dict[str, Any]], bodies: list[dict[str, Any]], num_ctx: int) -> list[dict[str, Any]]:
    """The requests of the same turns under the former policy: the oldest whole turns left out,
    one at a time, until the history fits the budget (the window only moves forward)."""
    budget = num_ctx - answer_reserve(num_ctx)
    head = 1 if messages[0]["role"] == "system" else 0
    start = head
    requests = []
    for turn, body in enumerate(bodies):
        sent = until_turn(messages, turn)
        while start < len(sent) - 1 and estimate({**body, "messages": sent[:head] + sent[start:]}) > budget:
            start = next(i for i in range(start + 1, len(sent)) if sent[i]["role"] == "user")
        requests.append({**body, "messages": sent[:head] + sent[start:]})
    return requests
