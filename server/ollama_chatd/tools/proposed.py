"""The files rg proposes, made into the files our own walk would give.

rg runs in the workspace folder with our ignore rules (ripgrep.IGNORE_FLAGS) on the
walk's start. What it cannot know is added or checked here:
- the .gitignore files between the workspace folder and the start (rg is told
  about the folder's own with --ignore-file; deeper ones are checked by `walk.Reach`);
- the editor's unsaved buffers: a file whose buffer matches is added even when its
  disk text does not (the search then reads the buffer, as for every file);
- the walk's order (sorted, folder by folder), so that capped results are the same.
Reads still go through `Workspace.read_text`, which confines every path again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from . import ripgrep
from . import walk as walking
from .globs import Glob
from .workspace import Workspace, display_join


@attrs.define
class Found:
    files: list[str]  # as the model writes them
    complete: bool  # False: the time budget ran out first


@attrs.define
class Candidates:
    files: Iterator[tuple[Path, str]]  # (path, as the model writes it), in walk order
    complete: bool


@attrs.frozen
class _Scope:
    """How rg runs for one walk: in its workspace folder, on the walk's start."""

    arguments: list[str]
    start_rel: str  # "" for the folder itself
    exact: bool  # rg alone applies every rule the walk would (nothing between folder and start)

    @classmethod
    def of(cls, plan: walking.Walk) -> _Scope:
        start_rel = plan.start.relative_to(plan.folder.path).as_posix()
        start_rel = "" if start_rel == "." else start_rel
        path = ["--", start_rel or "."]
        if plan.rules is None:  # an ignored folder asked for by name: the walk ignores nothing in it
            return cls(["--no-ignore-vcs", *path], start_rel, exact=True)
        bases = {base for base, _ in plan.rules.layers}
        # --ignore-file patterns are relative to rg's working directory: right for the folder's own.
        own = [f"--ignore-file={plan.folder.path / '.gitignore'}"] if "" in bases else []
        return cls([*own, *path], start_rel, exact=bases <= {""})

    def below(self, rel: str) -> str:
        """rg's path (relative to the folder) relative to the start."""
        return rel[len(self.start_rel) + 1 :] if self.start_rel else rel


def files_with_matches(
    ws: Workspace, plan: walking.Walk, pattern: str, glob: Glob | None, deadline: float, max_bytes: int
) -> Candidates:
    """The files under `plan` whose disk text rg finds `pattern` in, plus the open buffers.
    Reading whole files (--multiline), rg skips those over `max_bytes`, which the search
    skips anyway: it would hold them in memory. (Line by line it does not: the size limit
    costs rg a stat of every file.)"""
    scope = _Scope.of(plan)
    names = ripgrep.name_filter(list(glob.alternatives)) if glob else None
    only_names = names.arguments() if names and names.folder == "" and names.any_depth else []
    whole_files = ["--multiline", f"--max-filesize={max_bytes}"] if ripgrep.may_cross_lines(pattern) else []
    arguments = ["--files-with-matches", *whole_files, *ripgrep.REGEX_LIMITS, *only_names, f"--regexp={pattern}"]
    listing = ripgrep.run([*arguments, *scope.arguments], plan.folder.path, deadline)
    below = {scope.below(rel) for rel in listing.paths}
    below.update(_open_files_below(ws, plan.start))
    return Candidates(_in_walk_order(ws, plan, scope, below, glob), listing.complete)


def _in_walk_order(
    ws: Workspace, plan: walking.Walk, scope: _Scope, below: set[str], glob: Glob | None
) -> Iterator[tuple[Path, str]]:
    reach = walking.Reach(ws, plan)
    start_display = ws.display(plan.start)
    for path in sorted(below, key=lambda p: p.split("/")):  # the walk's order: folder by folder
        shown = display_join(start_display, path)
        rel = f"{scope.start_rel}/{path}" if scope.start_rel else path
        if reach.reaches(path) and (glob is None or glob.matches(rel, shown)):
            yield plan.start / path, shown


def _open_files_below(ws: Workspace, start: Path) -> Iterable[str]:
    """The open buffers the walk from `start` would meet: regular files, reached without a symlink."""
    prefix = os.path.join(os.fspath(start), "")
    for path in map(os.fspath, ws.open_paths()):
        if path.startswith(prefix) and os.path.realpath(path) == path and walking.is_regular_file(path):
            yield path[len(prefix) :]


def files_matching(ws: Workspace, glob: Glob, start: Path | None, deadline: float) -> Found:
    """The regular files `glob` names, below `start` or in every workspace folder."""
    plans = [walking.plan_walk(ws, start)] if start else [walking.plan_walk(ws, f.path) for f in ws.folders]
    names = ripgrep.name_filter(list(glob.alternatives))
    found: list[str] = []
    for plan in plans:
        scope = _Scope.of(plan)
        # rg's file types name the glob exactly when its folder is where rg starts.
        exact_names = names is not None and names.folder == scope.start_rel
        listing = ripgrep.run(
            ["--files", *(names.arguments() if names and exact_names else []), *scope.arguments],
            plan.folder.path,
            deadline,
        )
        reach = None if scope.exact else walking.Reach(ws, plan)
        start_display = ws.display(plan.start)
        if reach is None and exact_names and not scope.start_rel and start_display in ("", "."):
            found += listing.paths  # rg alone decided, and its paths are the ones shown
        else:
            found += _kept(listing.paths, scope, reach, start_display, None if exact_names else glob)
        if not listing.complete:
            return Found(found, complete=False)
    return Found(found, complete=True)


def _kept(
    paths: list[str], scope: _Scope, reach: walking.Reach | None, start_display: str, glob: Glob | None
) -> Iterator[str]:
    """The shown paths of rg's `paths` that the walk reaches and `glob` (None: rg applied it) matches."""
    for rel in paths:
        below = scope.below(rel)
        shown = display_join(start_display, below)
        if (reach is None or reach.reaches(below)) and (glob is None or glob.matches(rel, shown)):
            yield shown
