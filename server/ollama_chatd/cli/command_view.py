"""A command's output (`run_command`) printed on the terminal as it runs, escaped."""

from __future__ import annotations

import sys
from typing import Any

from ollama_chatd.cli.safe_text import printable


class CommandOutputView:
    """A command's output on stderr as it comes: from each `running` update (the output's
    last characters and how many there were in all), the characters not printed yet."""

    def __init__(self) -> None:
        self._printed: dict[str, int] = {}
        self._mid_line = False

    def show(self, params: dict[str, Any]) -> None:
        text, length = params["output"], params["outputLength"]
        new = length - self._printed.get(params["callId"], 0)
        self._printed[params["callId"]] = length
        if new > len(text):
            self.end_line()
            sys.stderr.write(f"[... {new - len(text):,} characters not shown ...]\n")
        if new > 0:
            sys.stderr.write(printable(text[-new:]))
            self._mid_line = not text.endswith("\n")
        sys.stderr.flush()

    def end_line(self) -> None:
        """Before a note: output that did not end its line gets one."""
        if self._mid_line:
            sys.stderr.write("\n")
            self._mid_line = False


def command_ending(params: dict[str, Any]) -> str:
    """How a command ended ("[exit code 1 after 0.3 s]"): the last line of its preview."""
    if params["name"] != "run_command" or "output" not in params:
        return ""
    return params["output"].rstrip("\n").rpartition("\n")[2]
