"""What one turn's tool calls may cost: calls per reply, bytes of results per turn.

Without a cap one reply multiplies: 2,000 `read_file` calls (148 KiB of model
output) once sent a 478 MB request to Ollama and put 450 MiB in the store. Calls
over the cap are not run; the model reads an error telling it to ask for less.
Past the first call over the cap, calls are not even kept (see turn._Reply).
"""

from __future__ import annotations

MAX_CALLS_PER_REPLY = 32
MAX_RESULT_BYTES_PER_TURN = 1024 * 1024
# Below this much room no call runs, so a change that was made always gets its
# (short) summary through, never a "cut" that would hide it happened.
ROOM_TO_RUN_A_CALL = 4 * 1024


class ToolBudget:
    """One turn's allowance, charged as results come in."""

    def __init__(self) -> None:
        self._room = MAX_RESULT_BYTES_PER_TURN

    def refusal(self, index_in_reply: int, left_out: int = 0) -> str | None:
        """Why the call at this place in its reply must not run, or None. `left_out`:
        the calls of the reply dropped after it, which the error also accounts for."""
        if index_in_reply >= MAX_CALLS_PER_REPLY:
            others = f" (nor were the {left_out} calls after it)" if left_out else ""
            return (
                f"not run{others}: one reply may make at most {MAX_CALLS_PER_REPLY} tool calls "
                f"and the first {MAX_CALLS_PER_REPLY} ran; ask for fewer at a time"
            )
        if self._room < ROOM_TO_RUN_A_CALL:
            return (
                f"not run: this turn's tool results reached {_mib(MAX_RESULT_BYTES_PER_TURN)}; "
                f"ask for less (a line range with start_line/end_line, a narrower path or glob) "
                f"or answer with what you have"
            )
        return None

    def charge(self, result: str) -> str:
        """The result, cut to the room left in the turn (with a note saying so)."""
        data = result.encode("utf-8")
        if len(data) <= self._room:
            self._room -= len(data)
            return result
        kept = data[: self._room].decode("utf-8", "ignore")
        self._room = 0
        return (
            f"{kept}\n[cut: this turn's tool results reached {_mib(MAX_RESULT_BYTES_PER_TURN)}; "
            f"ask for less, e.g. a line range with start_line/end_line]"
        )


    def afford(self, size: int) -> bool:
        """Take `size` bytes (a result's images) from the room left, if there is that much."""
        if size > self._room:
            return False
        self._room -= size
        return True


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"
