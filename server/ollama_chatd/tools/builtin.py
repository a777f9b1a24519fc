"""The tool functions that read: each takes the workspace and checked arguments and
returns the text the model reads; failures are ToolError. The tools that change
files are in `change_tools`.

They may take a while (search over a large tree), so callers run them in a
worker thread; they hold no state between calls.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import walk as walking
from .globs import Glob, compile_glob
from .regex_limits import compile_bounded
from .workspace import (
    BinaryFileError,
    FileTooLargeError,
    ToolError,
    Workspace,
)

if TYPE_CHECKING:
    import regex

Args = dict[str, Any]

READ_MAX_LINES = 2000
READ_MAX_BYTES = 256 * 1024
LIST_DEFAULT_DEPTH = 2
LIST_MAX_DEPTH = 5
LIST_MAX_ENTRIES = 500
LIST_COUNT_LIMIT = 100_000  # past this, "more than N" is precise enough
SEARCH_DEFAULT_RESULTS = 100
SEARCH_MAX_RESULTS = 500
SEARCH_MAX_FILE_BYTES = 2 * 1024 * 1024
SEARCH_FILE_TIMEOUT = 1.0  # seconds one file may take: bounds catastrophic backtracking
SEARCH_TIME_BUDGET = 10.0  # seconds for the whole search
SEARCH_LINE_CHARS = 300
FIND_MAX_RESULTS = 500


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
    plans = _walk_plans(ws, args.get("path"))
    shown: list[str] = []
    left_out = 0
    for entry in _entries_with_folder_roots(ws, plans, depth):
        if len(shown) < LIST_MAX_ENTRIES:
            shown.append(entry)
        else:
            left_out += 1
            if left_out >= LIST_COUNT_LIMIT:
                break
    return _listing_text(ws, plans, shown, left_out)


def _entries_with_folder_roots(ws: Workspace, plans: list[walking.Walk], depth: int) -> Iterator[str]:
    for plan in plans:
        if len(plans) > 1:  # the whole workspace of several folders: show each root
            yield ws.display(plan.start) + "/"
        for entry in walking.walk(ws, plan, max_depth=depth):
            yield entry.display + "/" if entry.is_dir else entry.display


def _listing_text(ws: Workspace, plans: list[walking.Walk], shown: list[str], left_out: int) -> str:
    notes = [_ignored_note(ws, plan) for plan in plans if plan.start_was_ignored]
    if not shown:
        notes.insert(0, "(empty directory)")
    if left_out:
        more = f"more than {left_out}" if left_out >= LIST_COUNT_LIMIT else str(left_out)
        notes.append(
            f"... {more} more entries not shown (the listing is capped at "
            f"{LIST_MAX_ENTRIES}); list a subfolder with path=... or use a smaller depth"
        )
    return "\n".join(shown + notes)


def _ignored_note(ws: Workspace, plan: walking.Walk) -> str:
    return f"(note: {ws.display(plan.start)} is ignored by .gitignore; shown because you asked for it)"


def _walk_plans(ws: Workspace, user_path: str | None) -> list[walking.Walk]:
    """Where to walk: the named directory, or every workspace folder when no path is given."""
    if _names_whole_workspace(user_path):
        return [walking.plan_walk(ws, folder.path) for folder in ws.folders]
    path = ws.resolve(user_path)
    if not os.path.isdir(path):
        _raise_not_a_directory(ws, path)
    return [walking.plan_walk(ws, path)]


def _names_whole_workspace(user_path: str | None) -> bool:
    return user_path in (None, "", ".", "./")


def _raise_not_a_directory(ws: Workspace, path: Path) -> None:
    shown = ws.display(path)
    if os.path.lexists(path):
        raise ToolError(f"{shown!r} is a file, not a directory; use read_file to read it")
    raise ToolError(f"{shown!r} does not exist; use list_directory without a path to see the workspace")


# -- search_text -------------------------------------------------------------


class _SearchStats:
    """What a search skipped or could not finish, reported under the results."""

    def __init__(self, budget: float):
        self.deadline = time.monotonic() + budget
        self.binary = 0
        self.too_large = 0
        self.timed_out: list[str] = []
        self.out_of_time = False

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def notes(self) -> list[str]:
        notes = []
        skipped = [f"{self.binary} binary file(s)"] if self.binary else []
        if self.too_large:
            skipped.append(f"{self.too_large} file(s) over {SEARCH_MAX_FILE_BYTES // (1024 * 1024)} MiB")
        if skipped:
            notes.append(f"(skipped {' and '.join(skipped)})")
        if self.timed_out:
            names = ", ".join(self.timed_out[:5]) + (", ..." if len(self.timed_out) > 5 else "")
            notes.append(
                f"(the pattern took too long on {len(self.timed_out)} file(s) and they were "
                f"not fully searched: {names}; the pattern probably backtracks "
                f"catastrophically, e.g. nested quantifiers like (a+)+; simplify it)"
            )
        if self.out_of_time:
            notes.append(
                f"(the search stopped after its {SEARCH_TIME_BUDGET:g} s budget, so results are "
                f"incomplete; narrow it with path=... or glob=...)"
            )
        return notes


def search_text(ws: Workspace, args: Args) -> str:
    pattern = compile_bounded(args["pattern"], multiline=True)
    glob = compile_glob(args["glob"]) if args.get("glob") else None
    limit = min(max(args.get("max_results") or SEARCH_DEFAULT_RESULTS, 1), SEARCH_MAX_RESULTS)
    stats = _SearchStats(SEARCH_TIME_BUDGET)
    results: list[str] = []
    # closing(): stopping early must close the walk's directory fds now, not at GC.
    with contextlib.closing(_files_to_search(ws, args.get("path"), glob)) as files:
        for path, shown in files:
            if stats.remaining() <= 0:
                stats.out_of_time = True
                break
            text = _text_to_search(ws, path, stats)
            if text is not None:
                results.extend(_matching_lines(pattern, text, shown, stats, limit + 1 - len(results)))
            if len(results) > limit:
                break
    return _search_text_output(args, results, limit, stats)


def _files_to_search(ws: Workspace, user_path: str | None, glob: Glob | None) -> Iterator[tuple[Path, str]]:
    if _names_whole_workspace(user_path):
        plans = [walking.plan_walk(ws, folder.path) for folder in ws.folders]
    else:
        path = ws.resolve(user_path)
        if not os.path.isdir(path):
            # One named file: searched even if ignored, because it was asked for; a
            # file that cannot be searched is an error here, not a skip.
            ws.read_text(path, max_bytes=SEARCH_MAX_FILE_BYTES)
            yield path, ws.display(path)
            return
        plans = [walking.plan_walk(ws, path)]
    for plan in plans:
        for entry in walking.walk(ws, plan):
            if entry.is_file and (glob is None or glob.matches(entry.rel, entry.display)):
                yield entry.path, entry.display


def _text_to_search(ws: Workspace, path: Path, stats: _SearchStats) -> str | None:
    try:
        return ws.read_text(path, max_bytes=SEARCH_MAX_FILE_BYTES)
    except BinaryFileError:
        stats.binary += 1
    except FileTooLargeError:
        stats.too_large += 1
    except ToolError:
        pass  # vanished, unreadable or replaced since the walk saw it
    return None


def _matching_lines(
    pattern: regex.Pattern[str], text: str, shown: str, stats: _SearchStats, limit: int
) -> list[str]:
    """`path:line: text` for each line where a match starts, at most `limit`."""
    deadline = time.monotonic() + min(SEARCH_FILE_TIMEOUT, max(stats.remaining(), 0.01))
    found: list[str] = []
    position, line_number, line_start = 0, 1, 0
    while len(found) < limit and position < len(text):
        try:
            # concurrent=True releases the GIL while matching: the daemon's event loop
            # keeps serving (and can cancel) while a worker thread searches.
            match = pattern.search(
                text, position, timeout=max(deadline - time.monotonic(), 0.001), concurrent=True
            )
        except TimeoutError:
            stats.timed_out.append(shown)
            break
        if match is None or _past_last_line(text, match.start()):
            break
        line_number += text.count("\n", line_start, match.start())
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = _line_end(text, match.start())
        found.append(f"{shown}:{line_number}: {_trim_line(text[line_start:line_end], match.start() - line_start)}")
        position = line_end + 1  # one result per line: go on at the next line
    return found


def _past_last_line(text: str, position: int) -> bool:
    """An empty match after the final newline (like '^$') is on no line of the file."""
    return position == len(text) and (not text or text.endswith("\n"))


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end == -1 else end


def _trim_line(line: str, match_column: int) -> str:
    """The line, cut to a window around the match when it is long."""
    line = line.rstrip("\r")
    if len(line) <= SEARCH_LINE_CHARS:
        return line
    start = max(0, min(match_column - SEARCH_LINE_CHARS // 3, len(line) - SEARCH_LINE_CHARS))
    head = "..." if start > 0 else ""
    tail = "..." if start + SEARCH_LINE_CHARS < len(line) else ""
    return head + line[start : start + SEARCH_LINE_CHARS] + tail


def _search_text_output(args: Args, results: list[str], limit: int, stats: _SearchStats) -> str:
    lines = results[:limit]
    if not lines:
        where = f" in {args['path']}" if args.get("path") else ""
        where += f" (files matching {args['glob']!r})" if args.get("glob") else ""
        lines.append(f"no matches for {args['pattern']!r}{where}")
    if len(results) > limit:
        lines.append(
            f"(results capped at {limit}; there are more. Narrow the search with path=..., "
            f"glob=... or a more specific pattern, or raise max_results up to {SEARCH_MAX_RESULTS})"
        )
    return "\n".join(lines + stats.notes())


# -- find_files --------------------------------------------------------------


def find_files(ws: Workspace, args: Args) -> str:
    glob = compile_glob(args["glob"])
    matches: list[str] = []
    total = 0
    for entry in _walk_for_glob(ws, glob):
        if entry.is_dir or not glob.directories_only:
            if glob.matches(entry.rel, entry.display):
                total += 1
                if len(matches) < FIND_MAX_RESULTS:
                    matches.append(entry.display + "/" if entry.is_dir else entry.display)
    matches.sort()
    if not matches:
        return f"no files match {args['glob']!r}" + _glob_hint(glob)
    if total > len(matches):
        matches.append(
            f"... {total - len(matches)} more not shown (capped at {FIND_MAX_RESULTS}); "
            f"use a more specific glob such as 'src/**/*.py'"
        )
    return "\n".join(matches)


def _walk_for_glob(ws: Workspace, glob: Glob) -> Iterable[walking.Entry]:
    """Walk only below the glob's literal directory ("src" for "src/**/*.ts") when it exists."""
    prefix = glob.literal_prefix
    if prefix and len(ws.folders) == 1:  # with several, "src/x" may match in every folder
        try:
            start = ws.resolve(prefix)
        except ToolError:
            start = None
        if start is not None and os.path.isdir(start):
            return walking.walk(ws, walking.plan_walk(ws, start))
    return (entry for plan in _walk_plans(ws, None) for entry in walking.walk(ws, plan))


def _glob_hint(glob: Glob) -> str:
    if "/" in glob.text.strip("/") and "**" not in glob.text:
        return "; note that '*' does not cross '/': use '**/' to match any depth, as in 'src/**/*.py'"
    return ""
