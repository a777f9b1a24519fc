"""Which part of a long chat is sent (engine/context.py): whole turns, the newest kept,
trimmed in large steps so the prompt's beginning stays the same from turn to turn."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ollama_chatd import llm
from ollama_chatd.engine import context
from ollama_chatd.engine.context import estimate_tokens, fit_window

SYSTEM = llm.Message("system", "be kind")


def turn(size: int, tool_rounds: int = 0) -> list[llm.Message]:
    messages = [llm.Message("user", "q" * size)]
    for _ in range(tool_rounds):
        messages.append(llm.Message("assistant", "", tool_calls=(llm.ToolCall("read_file", {"path": "a"}),)))
        messages.append(llm.Message("tool", "r" * size, tool_name="read_file"))
    messages.append(llm.Message("assistant", "a" * size))
    return messages


turns = st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 2)), min_size=1, max_size=30)


@given(turns, st.booleans(), st.integers(200, 6000))
def test_the_window_is_whole_turns_ending_with_the_newest(sizes, with_system, budget):
    messages = [SYSTEM] if with_system else []
    for size, rounds in sizes:
        messages += turn(size, rounds)
    messages.append(llm.Message("user", "newest"))
    head = messages[:1] if with_system else []

    first = fit_window(messages, 0, budget)

    assert messages[first].role == "user", "a window starts at a user message, never inside a tool exchange"
    sent = [*head, *messages[first:]]
    if estimate_tokens([*head, *messages[len(head):]]) <= budget:
        assert first == len(head), "nothing is left out of a chat that fits"
        return
    older_turns = [i for i in range(len(head), first) if messages[i].role == "user"]
    fixed = estimate_tokens(head)
    refill = fixed + (budget - fixed) * context.REFILL_SHARE  # half the room left for the history
    if first != len(messages) - 1:  # more than the newest message: it fills at most half
        assert estimate_tokens(sent) <= refill
    if older_turns:  # and one more turn would not have
        assert estimate_tokens([*head, *messages[older_turns[-1]:]]) > refill


def test_a_window_only_moves_forward():
    messages = [*turn(10), *turn(10), llm.Message("user", "newest")]
    assert fit_window(messages, 2, budget=10_000) == 2


def test_one_pass_over_a_long_history(monkeypatch):
    """Each message is sized once (the first version sized every suffix: quadratic)."""
    messages = [SYSTEM]
    for _ in range(2000):
        messages += turn(100, tool_rounds=1)
    messages.append(llm.Message("user", "newest"))
    sized = []
    monkeypatch.setattr(context, "message_tokens", lambda message: sized.append(message) or 40)
    first = fit_window(messages, 0, budget=4000)
    assert len(sized) <= len(messages)
    assert messages[first].role == "user" and first > len(messages) - 100


def test_the_prompt_prefix_stays_put_for_many_turns_once_the_window_is_full():
    """Trimming to half the budget, not just below it: a model server reuses its cache of
    the prompt's beginning only while that beginning does not change."""
    messages = [SYSTEM]
    start, moves = 0, 0
    for _ in range(60):
        messages += turn(600)
        messages.append(llm.Message("user", "next"))
        new_start = fit_window(messages, start, budget=4000)
        moves += new_start != start
        start = new_start
    # each turn is ~400 estimated tokens: the window fills up every ~5 turns, not every turn
    assert 0 < moves <= 60 // 4
