"""The tools that change files, `write_file`, `edit_file` and `delete_file`: each works out the change
(a ProposedEdit the user is asked about) and never writes; `edits` applies it once allowed.

Apart from `builtin` (the tools that only read) because finding the text to replace,
and saying why it was not found, is a job of its own.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .builtin import split_lines
from .edits import ProposedEdit
from .workspace import BinaryFileError, ToolError, Workspace

Args = dict[str, Any]

EDIT_SIMILAR_LINES = 8
EDIT_SIMILAR_CHARS = 200  # of each line compared for "the most similar text": bounds the time
EDIT_MAX_OCCURRENCES = 1000


# -- write_file --------------------------------------------------------------


def write_file(ws: Workspace, args: Args) -> ProposedEdit:
    path = ws.resolve(args["path"])
    shown = ws.display(path)
    old_text = _current_text(ws, path, shown)
    if old_text == args["content"]:
        raise ToolError(f"{shown} already has exactly this content; nothing to change")
    return ProposedEdit(path, shown, old_text, args["content"])


def _current_text(ws: Workspace, path: Path, shown: str) -> str | None:
    """The text a write replaces (the editor's buffer if open), None for a new file."""
    if not os.path.lexists(path):
        _check_parents_are_directories(ws, path, shown)
        return None
    if os.path.isdir(path):
        raise ToolError(f"{shown!r} is a directory; give the path of a file inside it")
    try:
        return ws.read_text(path)
    except BinaryFileError:
        raise ToolError(f"{shown!r} is a binary file; write_file only replaces text files") from None


def _check_parents_are_directories(ws: Workspace, path: Path, shown: str) -> None:
    for parent in path.parents:
        if ws.folder_of(parent) is None:
            return
        if os.path.lexists(parent) and not os.path.isdir(parent):
            raise ToolError(f"cannot create {shown!r}: {ws.display(parent)!r} is a file, not a directory")


# -- delete_file -------------------------------------------------------------


def delete_file(ws: Workspace, args: Args) -> ProposedEdit:
    path = ws.resolve(args["path"])
    shown = ws.display(path)
    if os.path.isdir(path):
        raise ToolError(f"{shown!r} is a directory; delete_file only deletes files")
    try:
        text = ws.read_text(path)
    except BinaryFileError:
        raise ToolError(f"{shown!r} is a binary file; delete_file only deletes text files") from None
    return ProposedEdit(path, shown, text, None)


# -- edit_file ---------------------------------------------------------------


def edit_file(ws: Workspace, args: Args) -> ProposedEdit:
    path = ws.resolve(args["path"])
    shown = ws.display(path)
    old, new = args["old_text"], args["new_text"]
    if old == "":
        raise ToolError("old_text is empty; copy the exact text to replace from read_file (use write_file to create a file)")
    if old == new:
        raise ToolError("old_text and new_text are identical; nothing would change")
    text = _text_to_edit(ws, path, shown)
    old, new = _match_line_endings(text, old, new)
    starts = _occurrences(text, old)
    if not starts:
        raise ToolError(_no_match_message(text, old, shown))
    if len(starts) > 1:
        raise ToolError(_ambiguous_message(text, starts, shown))
    index = starts[0]
    return ProposedEdit(path, shown, text, text[:index] + new + text[index + len(old) :])


def _match_line_endings(text: str, old: str, new: str) -> tuple[str, str]:
    """Models write "\n"; a file with Windows line endings keeps them (and vice versa)."""
    if "\r\n" in text and "\r\n" not in old:
        return old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
    if "\r\n" not in text and "\r\n" in old:
        return old.replace("\r\n", "\n"), new.replace("\r\n", "\n")
    return old, new


def _text_to_edit(ws: Workspace, path: Path, shown: str) -> str:
    try:
        return ws.read_text(path)
    except BinaryFileError:
        raise ToolError(f"{shown!r} is a binary file; edit_file only changes text files") from None
    except ToolError as e:
        if not os.path.lexists(path):
            raise ToolError(f"{shown!r} does not exist; use write_file to create a new file") from None
        raise e


def _occurrences(text: str, needle: str) -> list[int]:
    """Start offsets of the occurrences, overlapping ones included (they are ambiguous
    too); at most EDIT_MAX_OCCURRENCES, which is plenty to say it is not unique."""
    starts = []
    index = text.find(needle)
    while index != -1 and len(starts) < EDIT_MAX_OCCURRENCES:
        starts.append(index)
        index = text.find(needle, index + 1)
    return starts


def _ambiguous_message(text: str, starts: list[int], shown: str) -> str:
    lines = sorted(set(_line_numbers(text, starts)))
    listed = ", ".join(map(str, lines[:20])) + (", ..." if len(lines) > 20 else "")
    count = f"at least {len(starts)}" if len(starts) == EDIT_MAX_OCCURRENCES else str(len(starts))
    return (
        f"old_text occurs {count} times in {shown} (at lines {listed}); it must match "
        f"exactly once. Include more surrounding lines in old_text (and new_text) to make it unique"
    )


def _line_numbers(text: str, starts: list[int]) -> Iterator[int]:
    """The line of each offset (in increasing order), counting each newline once."""
    line, counted_to = 1, 0
    for start in starts:
        line += text.count("\n", counted_to, start)
        counted_to = start
        yield line


_LINE_NUMBER_PREFIX = re.compile(r"^\s*\d+\t", re.MULTILINE)


def _no_match_message(text: str, old: str, shown: str) -> str:
    message = f"old_text was not found in {shown}."
    if _LINE_NUMBER_PREFIX.search(old):
        message += " It seems to contain the line numbers read_file shows; leave them out."
    file_lines = split_lines(text)
    old_lines = split_lines(old) or [old]
    whitespace_match = _match_ignoring_whitespace(file_lines, old_lines)
    if whitespace_match is not None:
        first = whitespace_match + 1
        return (
            f"{message} It matches lines {first}-{first + len(old_lines) - 1} except for "
            f"whitespace (indentation, tabs or trailing spaces); copy those lines exactly:\n"
            + _numbered(file_lines, whitespace_match, len(old_lines))
        )
    start = _most_similar_start(file_lines, old_lines)
    if start is None:
        return f"{message} Read the file with read_file and copy the text exactly."
    return (
        f"{message} The most similar text is at line {start + 1}:\n"
        + _numbered(file_lines, start, min(len(old_lines), EDIT_SIMILAR_LINES))
        + "\nCopy the text exactly as read_file shows it (without line numbers), "
        "including indentation."
    )


def _match_ignoring_whitespace(file_lines: list[str], old_lines: list[str]) -> int | None:
    """The first line where `old_lines` start, whitespace aside. One str.find over the
    squashed lines (linear), not a comparison at every line (quadratic: minutes on a
    40,000-line file whose lines all look alike)."""
    haystack = "\n" + "\n".join(_squash(line) for line in file_lines) + "\n"
    index = haystack.find("\n" + "\n".join(_squash(line) for line in old_lines) + "\n")
    return None if index == -1 else haystack.count("\n", 0, index)


def _squash(line: str) -> str:
    return " ".join(line.split())


def _most_similar_start(file_lines: list[str], old_lines: list[str]) -> int | None:
    """The line where the block most like `old_lines` starts, judged by its first real line."""
    probe = next((line.strip() for line in old_lines if line.strip()), "")[:EDIT_SIMILAR_CHARS]
    if not probe:
        return None
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(probe)
    best, best_ratio = None, 0.5  # below this the "similar" line would only mislead
    for number, line in enumerate(file_lines):
        matcher.set_seq1(line.strip()[:EDIT_SIMILAR_CHARS])
        if matcher.real_quick_ratio() > best_ratio and matcher.quick_ratio() > best_ratio:
            ratio = matcher.ratio()
            if ratio > best_ratio:
                best, best_ratio = number, ratio
    if best is None:
        return None
    offset = next(i for i, line in enumerate(old_lines) if line.strip())
    return max(best - offset, 0)


def _numbered(lines: list[str], start: int, count: int) -> str:
    return "\n".join(f"{n + 1:>6}\t{lines[n]}" for n in range(start, min(start + count, len(lines))))
