"""Walking the workspace as git sees it: `.gitignore` respected, `.git/` hidden.

The walk goes directory by directory through file descriptors opened with
O_NOFOLLOW relative to their parent, so a directory swapped for a symlink while
we walk cannot lead it outside. Symlinks are listed but never followed. Ignored
directories are pruned, not walked and filtered, which is what keeps a
`node_modules/` from costing anything.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import attrs

from .gitignore import GitignoreFile, parse_gitignore
from .workspace import Folder, ToolError, Workspace, display_join, is_git_directory

MAX_WALK_DEPTH = 64
GITIGNORE_MAX_BYTES = 1024 * 1024
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW


@attrs.frozen
class IgnoreRules:
    """The .gitignore files in force in one directory, innermost first.

    Each layer is (directory relative to the folder root, its rules); git lets a
    deeper .gitignore override a shallower one, so the first layer with an opinion wins.
    """

    layers: tuple[tuple[str, GitignoreFile], ...] = ()

    def with_gitignore(self, base_rel: str, text: str) -> IgnoreRules:
        rules = parse_gitignore(text)
        if rules is None:
            return self
        return IgnoreRules(((base_rel, rules), *self.layers))

    def ignores(self, rel: str, is_dir: bool) -> bool:
        for base, rules in self.layers:
            verdict = rules.verdict(rel[len(base) + 1 :] if base else rel, is_dir)
            if verdict is not None:
                return verdict
        return False


@attrs.frozen
class Entry:
    path: Path  # real path (nothing followed on the way)
    rel: str  # relative to its workspace folder: "src/app.py"
    display: str  # as the model writes it (folder name prefixed with several folders)
    is_dir: bool  # a real directory; a symlink to one is not
    is_file: bool  # a regular file; a symlink to one is not
    depth: int  # 1 for the direct children of the start


@attrs.frozen
class Walk:
    """Where a walk starts and which ignore rules apply there."""

    start: Path
    folder: Folder
    rules: IgnoreRules | None  # None: the start itself is ignored and was asked for by name

    @property
    def start_was_ignored(self) -> bool:
        return self.rules is None


def plan_walk(ws: Workspace, start: Path) -> Walk:
    """The rules in force at `start`, from the .gitignore files of its ancestors
    (within its workspace folder: a folder is its own root, as in a repository)."""
    folder = ws.folder_of(start)
    if folder is None:
        raise ToolError(f"{str(start)!r} is outside the workspace")
    rules, rel, directory = IgnoreRules(), "", folder.path
    for part in start.relative_to(folder.path).parts:
        rules = _load_gitignore(ws, rules, directory, rel)
        rel, directory = (f"{rel}/{part}" if rel else part), directory / part
        if is_git_directory(part) or rules.ignores(rel, is_dir=True):
            return Walk(start, folder, None)
    return Walk(start, folder, rules)  # the walk itself loads the start's own .gitignore


def walk(ws: Workspace, plan: Walk, *, max_depth: int = MAX_WALK_DEPTH) -> Iterator[Entry]:
    """Entries under `plan.start` in sorted pre-order, ignored ones pruned."""
    rel = plan.start.relative_to(plan.folder.path).as_posix()
    rel = "" if rel == "." else rel
    fd = ws.open_directory(plan.start)
    try:
        yield from _walk_directory(
            ws, fd, plan.start, rel, ws.display(plan.start), plan.rules, 1, max_depth
        )
    finally:
        os.close(fd)


def _walk_directory(
    ws: Workspace,
    fd: int,
    path: Path,
    rel: str,
    display: str,
    rules: IgnoreRules | None,
    depth: int,
    max_depth: int,
) -> Iterator[Entry]:
    try:
        with os.scandir(fd) as scan:
            entries = sorted(scan, key=lambda e: e.name)
    except OSError:
        return  # vanished or unreadable directory: nothing to show
    if rules is not None and any(e.name == ".gitignore" and _is_file(e) for e in entries):
        rules = _load_gitignore(ws, rules, path, rel)
    for entry in entries:
        if is_git_directory(entry.name):
            continue  # git's internals are never listed nor searched
        is_dir = _is_dir(entry)
        child_rel = f"{rel}/{entry.name}" if rel else entry.name
        if rules is not None and rules.ignores(child_rel, is_dir):
            continue
        child = Entry(
            path / entry.name,
            child_rel,
            display_join(display, entry.name),
            is_dir,
            not is_dir and _is_file(entry),
            depth,
        )
        yield child
        if is_dir and depth < max_depth:
            yield from _descend(ws, fd, child, rules, max_depth)


def _descend(
    ws: Workspace, parent_fd: int, child: Entry, rules: IgnoreRules | None, max_depth: int
) -> Iterator[Entry]:
    try:
        fd = os.open(child.path.name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError:
        return  # replaced by a symlink or removed meanwhile: skip it
    try:
        yield from _walk_directory(
            ws, fd, child.path, child.rel, child.display, rules, child.depth + 1, max_depth
        )
    finally:
        os.close(fd)


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _load_gitignore(ws: Workspace, rules: IgnoreRules, directory: Path, rel: str) -> IgnoreRules:
    try:
        text = ws.read_text(directory / ".gitignore", max_bytes=GITIGNORE_MAX_BYTES)
    except ToolError:
        return rules  # absent or unreadable: no rules from it
    return rules.with_gitignore(rel, text)


class Reach:
    """Whether `walk(ws, plan)` reaches a file, asked one path at a time (for files that
    ripgrep proposes or the editor has open), each folder's rules loaded once."""

    def __init__(self, ws: Workspace, plan: Walk):
        self._ws = ws
        self._plan = plan
        start_rel = plan.start.relative_to(plan.folder.path).as_posix()
        self._prefix = "" if start_rel == "." else start_rel + "/"
        # folder below the start -> (the walk skips it, the rules in force inside it)
        self._folders: dict[str, tuple[bool, IgnoreRules | None]] = {}

    def reaches(self, below: str) -> bool:
        """`below`: the file's path relative to the walk's start ("sub/x.py")."""
        parts = below.split("/")
        if len(parts) > MAX_WALK_DEPTH or any(is_git_directory(part) for part in parts):
            return False
        pruned, rules = self._folder(below.rpartition("/")[0])
        return not pruned and (rules is None or not rules.ignores(self._prefix + below, is_dir=False))

    def _folder(self, below_dir: str) -> tuple[bool, IgnoreRules | None]:
        known = self._folders.get(below_dir)
        if known is not None:
            return known
        if below_dir == "":
            pruned, rules = False, self._plan.rules
        else:
            pruned, rules = self._folder(below_dir.rpartition("/")[0])
            pruned = pruned or (rules is not None and rules.ignores(self._prefix + below_dir, is_dir=True))
        if not pruned and rules is not None:
            directory = self._plan.start / below_dir if below_dir else self._plan.start
            if is_regular_file(directory / ".gitignore"):
                rules = _load_gitignore(self._ws, rules, directory, (self._prefix + below_dir).rstrip("/"))
        self._folders[below_dir] = (pruned, rules)
        return pruned, rules


def is_regular_file(path: Path | str) -> bool:
    """A regular file itself (a symbolic link to one is not)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False
