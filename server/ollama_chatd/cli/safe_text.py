"""Text from the model (or the daemon, quoting it) made safe to print on a terminal.

A model can write control sequences: `curl … | sh` followed by `\\r\\x1b[2K\\x1b[1A`
and a harmless line makes the screen show only the harmless line, and "y" then
approves the hidden one. Every control character (C0 but newline and tab, DEL,
C1, and the bidirectional overrides that reorder what is shown) is printed as a
visible escape such as `\\x1b` instead.
"""

from __future__ import annotations

import re

_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    r"""`text` with every control character written as a visible escape (`\x1b`, `\r`, `\u202e`)."""
    return _CONTROLS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    return repr(char)[1:-1] if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def change_size(diff: str) -> str:
    """How big a change is, said beside the approval prompt: a long change is worth scrolling back for."""
    lines = diff.splitlines()[2:]  # after the "--- a/..." and "+++ b/..." header
    added = sum(line.startswith("+") for line in lines)
    removed = sum(line.startswith("-") for line in lines)
    return f"{added} line(s) added, {removed} removed; the diff is {len(diff.encode()):,} bytes"
