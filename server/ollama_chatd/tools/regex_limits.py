"""search_text's regular expressions, bounded before they are compiled.

Compiling is where a 13-character pattern takes the memory: `a{4294967294}` or
`(?:(?:a{1000}){1000}){1000}` makes the `regex` module build a program as large
as the repeats multiplied out (gigabytes), before any time budget of the search
applies. So the pattern is scanned first: its length, its nesting and its size
once repeats are multiplied out must stay under the caps below. Matching itself
is bounded by the search's time budget.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .workspace import ToolError

if TYPE_CHECKING:
    import regex

MAX_PATTERN_CHARS = 1000
MAX_NESTING = 50  # groups inside groups
MAX_REPEAT = 1000  # the largest count in {m,n}
MAX_EXPANDED_SIZE = 20_000  # pattern items once repeats are multiplied out

_REPEAT = re.compile(r"\{(\d*),?(\d*)\}")
_BRACED_ESCAPE = re.compile(r"\\[pPNxuUg]\{[^}]*\}")  # \p{Letter}, \N{BULLET}, \x{263a}


def compile_bounded(pattern: str, *, multiline: bool = False) -> regex.Pattern[str]:
    """The compiled pattern, or ToolError saying which cap it passes and what to write instead."""
    import regex  # on the first search, not with the daemon: 1.4 MiB that many sessions never use
    if pattern == "":
        raise ToolError("pattern is empty; give a regular expression such as 'def main' or 'TODO|FIXME'")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ToolError(
            f"pattern is too long ({len(pattern)} characters; the limit is {MAX_PATTERN_CHARS}); "
            f"search for a shorter, distinctive part of the text"
        )
    _check_size(pattern)
    try:
        return regex.compile(pattern, regex.MULTILINE if multiline else 0)
    except regex.error as e:
        raise ToolError(
            f"invalid regular expression {_shown(pattern)}: {e}. Escape special characters "
            f"like ( [ . * + ? with a backslash to match them literally"
        ) from None
    except (MemoryError, RecursionError, OverflowError):
        raise _too_complex(pattern, "it is too large to compile") from None


def _check_size(pattern: str) -> None:
    """Scan the pattern as the compiler will see it: groups, classes, escapes, repeats."""
    sizes = [0]  # the expanded size of each open group, innermost last
    last_item = 0  # the size of the item a following {m,n} repeats
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            braced = _BRACED_ESCAPE.match(pattern, i)
            i = braced.end() if braced else i + 2
            last_item = 1
        elif char == "[":
            i = _class_end(pattern, i)
            last_item = 1
        elif char == "(":
            sizes.append(0)
            if len(sizes) > MAX_NESTING + 1:
                raise _too_complex(pattern, f"it nests groups more than {MAX_NESTING} deep")
            i += 1
            continue
        elif char == ")" and len(sizes) > 1:
            last_item = sizes.pop()
            i += 1
        elif char == "{" and (repeat := _REPEAT.match(pattern, i)) and any(repeat.groups()):
            count = max(int(n) for n in repeat.groups() if n)
            if count > MAX_REPEAT:
                raise _too_complex(pattern, f"it repeats {count} times; the largest repeat count is {MAX_REPEAT}")
            sizes[-1] += last_item * (count - 1)
            i = repeat.end()
            continue
        else:
            i += 1
            last_item = 1
        sizes[-1] += last_item
        if sum(sizes) > MAX_EXPANDED_SIZE:
            raise _too_complex(pattern, f"its repeats multiply out to more than {MAX_EXPANDED_SIZE} items")


def _class_end(pattern: str, start: int) -> int:
    """The index after the `]` closing the class at `start` (or the end of the pattern)."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _too_complex(pattern: str, why: str) -> ToolError:
    return ToolError(
        f"regular expression {_shown(pattern)} is too complex to search with: {why}. Search "
        f"for a simpler pattern (a literal word, or '.*' / '+' instead of large counts)"
    )


def _shown(pattern: str) -> str:
    return repr(pattern if len(pattern) <= 80 else pattern[:77] + "...")
