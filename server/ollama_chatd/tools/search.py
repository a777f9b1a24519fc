"""search_text and find_files: ripgrep proposes, the workspace decides.

With `rg` installed (the `ripgrep` dependency), it lists the files that may hold a
match, or the files a glob names, in a fraction of the time a Python walk takes;
`proposals` (in `proposed`) turns its answer into the same files, in the same order,
that the walk would give, and the search reads and matches each as before (through
`Workspace.read_text`: confinement, unsaved buffers). Without rg, or for a pattern rg
would read differently, the Python walk does it all.

Both answer within a time budget: what was found by then, and a note saying the
results are incomplete and how to narrow the search.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import interrupt, proposed, ripgrep
from . import walk as walking
from .builtin import names_whole_workspace, walk_plans
from .globs import Glob, compile_glob
from .regex_limits import compile_bounded
from .workspace import BinaryFileError, FileTooLargeError, ToolError, Workspace

if TYPE_CHECKING:
    import regex

Args = dict[str, Any]

SEARCH_DEFAULT_RESULTS = 100
SEARCH_MAX_RESULTS = 500
SEARCH_MAX_FILE_BYTES = 2 * 1024 * 1024
SEARCH_FILE_TIMEOUT = 1.0  # seconds one file may take: bounds catastrophic backtracking
SEARCH_TIME_BUDGET = 10.0  # seconds for the whole search
SEARCH_LINE_CHARS = 300
FIND_MAX_RESULTS = 500
FIND_TIME_BUDGET = 10.0


# -- search_text -------------------------------------------------------------


class _SearchStats:
    """What a search skipped or could not finish, reported under the results."""

    def __init__(self, budget: float):
        self.started = time.monotonic()
        self.deadline = self.started + budget
        self.searched = 0
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
                f"(the search stopped at its {SEARCH_TIME_BUDGET:g} s budget after "
                f"{time.monotonic() - self.started:.1f} s, so results are incomplete: they come "
                f"from the {self.searched} file(s) read by then; narrow it with path=..., "
                f"glob=... or a more specific pattern)"
            )
        return notes


def search_text(ws: Workspace, args: Args) -> str:
    pattern = compile_bounded(args["pattern"], multiline=True)
    glob = compile_glob(args["glob"]) if args.get("glob") else None
    limit = min(max(args.get("max_results") or SEARCH_DEFAULT_RESULTS, 1), SEARCH_MAX_RESULTS)
    stats = _SearchStats(SEARCH_TIME_BUDGET)
    results: list[str] = []
    # closing(): stopping early must close the walk's directory fds now, not at GC.
    with contextlib.closing(_files_to_search(ws, args, glob, stats)) as files:
        for path, shown in files:
            if stats.remaining() <= 0 or interrupt.requested():
                stats.out_of_time = True
                break
            text = _text_to_search(ws, path, stats)
            if text is not None:
                stats.searched += 1
                results.extend(_matching_lines(pattern, text, shown, stats, limit + 1 - len(results)))
            if len(results) > limit:
                break
    return _search_text_output(args, results, limit, stats)


def _files_to_search(ws: Workspace, args: Args, glob: Glob | None, stats: _SearchStats) -> Iterator[tuple[Path, str]]:
    user_path = args.get("path")
    if names_whole_workspace(user_path):
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
        yield from _plan_files(ws, plan, args["pattern"], glob, stats)


def _plan_files(
    ws: Workspace, plan: walking.Walk, pattern: str, glob: Glob | None, stats: _SearchStats
) -> Iterator[tuple[Path, str]]:
    if ripgrep.binary() is not None and ripgrep.rust_compatible(pattern):
        # Leave a fifth of the budget (at most 2 s) to read what rg found.
        rg_deadline = stats.deadline - min(2.0, 0.2 * SEARCH_TIME_BUDGET)
        try:
            candidates = proposed.files_with_matches(ws, plan, pattern, glob, rg_deadline, SEARCH_MAX_FILE_BYTES)
        except ripgrep.RipgrepUnusable:
            pass  # searched in Python below
        else:
            stats.out_of_time |= not candidates.complete
            yield from candidates.files
            return
    for entry in walking.walk(ws, plan):
        if entry.is_file and (glob is None or glob.matches(entry.rel, entry.display)):
            yield entry.path, entry.display


def _text_to_search(ws: Workspace, path: Path, stats: _SearchStats) -> str | None:
    try:
        text = ws.read_text(path, max_bytes=SEARCH_MAX_FILE_BYTES)
        if "\0" in text:  # binary, as ripgrep judges: a NUL byte anywhere, not only in the first 8 KiB
            raise BinaryFileError(path.name)
        return text
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
    started = time.monotonic()
    deadline = started + FIND_TIME_BUDGET
    listing = None
    if ripgrep.binary() is not None and not glob.directories_only:
        with contextlib.suppress(ripgrep.RipgrepUnusable):
            listing = proposed.files_matching(ws, glob, _start_of(ws, glob), deadline)
    if listing is None:
        listing = _walk_for_glob(ws, glob, deadline)
    matches = sorted(listing.files)
    if not matches:
        answer = f"no files match {args['glob']!r}" + _glob_hint(glob)
        return answer if listing.complete else f"{answer}\n{_find_budget_note(started, 0)}"
    shown = matches[:FIND_MAX_RESULTS]
    if len(matches) > len(shown):
        shown.append(
            f"... {len(matches) - len(shown)} more not shown (capped at {FIND_MAX_RESULTS}); "
            f"use a more specific glob such as 'src/**/*.py'"
        )
    if not listing.complete:
        shown.append(_find_budget_note(started, len(matches)))
    return "\n".join(shown)


def _find_budget_note(started: float, found: int) -> str:
    return (
        f"(find_files stopped at its {FIND_TIME_BUDGET:g} s budget after "
        f"{time.monotonic() - started:.1f} s with {found} match(es) so far, so the list is incomplete; "
        f"narrow the glob to a folder, such as 'src/**/*.py')"
    )


def _start_of(ws: Workspace, glob: Glob) -> Path | None:
    """The glob's literal folder ("src" for "src/**/*.ts") when it exists (one workspace
    folder only: with several, "src/x" may match in every folder); None: the whole workspace."""
    prefix = glob.literal_prefix
    if prefix and len(ws.folders) == 1:
        try:
            start = ws.resolve(prefix)
        except ToolError:
            return None
        if os.path.isdir(start):
            return start
    return None


def _walk_for_glob(ws: Workspace, glob: Glob, deadline: float) -> proposed.Found:
    start = _start_of(ws, glob)
    plans = [walking.plan_walk(ws, start)] if start is not None else walk_plans(ws, None)
    found: list[str] = []
    with contextlib.closing(_entries(ws, plans)) as entries:
        for entry in entries:
            if time.monotonic() > deadline or interrupt.requested():
                return proposed.Found(found, complete=False)
            # Regular files, as rg lists them; folders only for a glob ending in "/".
            if (entry.is_dir if glob.directories_only else entry.is_file) and glob.matches(entry.rel, entry.display):
                found.append(entry.display + "/" if entry.is_dir else entry.display)
    return proposed.Found(found, complete=True)


def _entries(ws: Workspace, plans: Iterable[walking.Walk]) -> Iterator[walking.Entry]:
    for plan in plans:
        yield from walking.walk(ws, plan)


def _glob_hint(glob: Glob) -> str:
    if "/" in glob.text.strip("/") and "**" not in glob.text:
        return "; note that '*' does not cross '/': use '**/' to match any depth, as in 'src/**/*.py'"
    return ""
