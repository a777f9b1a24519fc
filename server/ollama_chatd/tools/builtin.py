"""The tool functions that read a file or list a folder: each takes the workspace and
checked arguments and returns the text the model reads; failures are ToolError. The
searches (search_text, find_files) are in `search`, the tools that change files in
`change_tools`.

Callers run them in a worker thread; they hold no state between calls.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import interrupt
from . import walk as walking
from .workspace import ToolError, Workspace

Args = dict[str, Any]

READ_MAX_LINES = 2000
READ_MAX_BYTES = 256 * 1024
LIST_DEFAULT_DEPTH = 2
LIST_MAX_DEPTH = 5
LIST_MAX_ENTRIES = 500
LIST_COUNT_LIMIT = 100_000  # past this, "more than N" is precise enough
LIST_TIME_BUDGET = 10.0


# -- read_file ---------------------------------------------------------------


def read_file(ws: Workspace, args: Args) -> str:
    path = ws.resolve(args["path"])
    shown = ws.display(path)
    lines = split_lines(ws.read_text(path))
    if not lines:
        return f"({shown} is empty)"
    start = args.get("start_line") or 1
    wanted_end = args.get("end_line") or len(lines)
    end = min(wanted_end, len(lines))  # reading "up to line 500" of a shorter file is fine
    _check_line_range(start, end, len(lines), shown)
    excerpt = _numbered_excerpt(lines, start, end)
    if wanted_end > end:
        excerpt += f"(end_line {wanted_end} is past the end: {shown} has {_lines_count(len(lines))})"
    return excerpt


def split_lines(text: str) -> list[str]:
    """The lines as an editor numbers them: split on "\\n" only, "\\r" dropped."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline does not start another line
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _check_line_range(start: int, end: int, total: int, shown: str) -> None:
    if start < 1 or start > total:
        raise ToolError(
            f"start_line {start} is out of range: {shown} has {_lines_count(total)} (1-{total})"
        )
    if end < start:
        raise ToolError(f"end_line {end} is before start_line {start}; {shown} has {_lines_count(total)}")


def _lines_count(total: int) -> str:
    return "1 line" if total == 1 else f"{total} lines"


def _numbered_excerpt(lines: list[str], start: int, end: int) -> str:
    out: list[str] = []
    size = 0
    last = start - 1
    for number in range(start, min(end, start + READ_MAX_LINES - 1) + 1):
        row = f"{number:>6}\t{lines[number - 1]}\n"
        if size + len(row.encode()) > READ_MAX_BYTES:
            if not out:  # a single line over the budget: show its beginning
                out.append(_trim_to_bytes(row, READ_MAX_BYTES) + " [line truncated]\n")
                last = number
            break
        out.append(row)
        size += len(row.encode())
        last = number
    return "".join(out) + _read_footer(start, last, end, len(lines))


def _trim_to_bytes(text: str, limit: int) -> str:
    return text.encode()[:limit].decode("utf-8", "ignore").rstrip("\n")


def _read_footer(start: int, last: int, end: int, total: int) -> str:
    if last < end:
        return (
            f"... (showing lines {start}-{last} of {total}; output is capped at "
            f"{READ_MAX_LINES} lines / {READ_MAX_BYTES // 1024} KiB; call read_file "
            f"with start_line={last + 1} to read the rest)"
        )
    if start > 1 or end < total:
        return f"(lines {start}-{end} of {total})"
    return ""


# -- list_directory ----------------------------------------------------------


def list_directory(ws: Workspace, args: Args) -> str:
    depth = min(max(args.get("depth") or LIST_DEFAULT_DEPTH, 1), LIST_MAX_DEPTH)
    plans = walk_plans(ws, args.get("path"))
    deadline = time.monotonic() + LIST_TIME_BUDGET
    shown: list[str] = []
    left_out = 0
    stopped = False  # by the time budget or the turn's cancel: counts are lower bounds
    for entry in _entries_with_folder_roots(ws, plans, depth):
        if time.monotonic() > deadline or interrupt.requested():
            stopped = True
            break
        if len(shown) < LIST_MAX_ENTRIES:
            shown.append(entry)
        else:
            left_out += 1
            if left_out >= LIST_COUNT_LIMIT:
                break
    return _listing_text(ws, plans, shown, left_out, stopped)


def _entries_with_folder_roots(ws: Workspace, plans: list[walking.Walk], depth: int) -> Iterator[str]:
    for plan in plans:
        if len(plans) > 1:  # the whole workspace of several folders: show each root
            yield ws.display(plan.start) + "/"
        for entry in walking.walk(ws, plan, max_depth=depth):
            yield entry.display + "/" if entry.is_dir else entry.display


def _listing_text(ws: Workspace, plans: list[walking.Walk], shown: list[str], left_out: int, stopped: bool) -> str:
    notes = [_ignored_note(ws, plan) for plan in plans if plan.start_was_ignored]
    if not shown and not stopped:
        notes.insert(0, "(empty directory)")
    if left_out:
        more = f"more than {left_out}" if left_out >= LIST_COUNT_LIMIT or stopped else str(left_out)
        notes.append(
            f"... {more} more entries not shown (the listing is capped at "
            f"{LIST_MAX_ENTRIES}); list a subfolder with path=... or use a smaller depth"
        )
    if stopped:
        notes.append(
            f"(the listing stopped at its {LIST_TIME_BUDGET:g} s budget, so it is incomplete; "
            f"list a subfolder with path=... or use a smaller depth)"
        )
    return "\n".join(shown + notes)


def _ignored_note(ws: Workspace, plan: walking.Walk) -> str:
    return f"(note: {ws.display(plan.start)} is ignored by .gitignore; shown because you asked for it)"


def walk_plans(ws: Workspace, user_path: str | None) -> list[walking.Walk]:
    """Where to walk: the named directory, or every workspace folder when no path is given."""
    if names_whole_workspace(user_path):
        return [walking.plan_walk(ws, folder.path) for folder in ws.folders]
    path = ws.resolve(user_path)
    if not os.path.isdir(path):
        _raise_not_a_directory(ws, path)
    return [walking.plan_walk(ws, path)]


def names_whole_workspace(user_path: str | None) -> bool:
    return user_path in (None, "", ".", "./")


def _raise_not_a_directory(ws: Workspace, path: Path) -> None:
    shown = ws.display(path)
    if os.path.lexists(path):
        raise ToolError(f"{shown!r} is a file, not a directory; use read_file to read it")
    raise ToolError(f"{shown!r} does not exist; use list_directory without a path to see the workspace")
