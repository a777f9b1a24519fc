"""ripgrep (`rg`, installed by the `ripgrep` wheel, a dependency) as a fast lister of files.

rg only proposes: it lists the files that may match (`--files-with-matches`) or the
files under a folder (`--files`); what the model reads is decided by our own code
(search.py reads each proposed file through the workspace, with its confinement and
its unsaved buffers, and matches it with the same Python pattern as always). So rg is
used only where its answer is a superset of ours:

- its ignore rules are set to ours: `.gitignore` files only (no `.ignore`, no
  `.git/info/exclude`, no global excludes, none above the workspace folder), also
  outside a git repository, hidden files included, `.git` never entered, symlinks
  never followed;
- a pattern goes to rg only when it is written in the part of Python's syntax that
  Rust's regex reads the same way (`rust_compatible`); anything else (lookaround,
  backreferences, possessive repeats, \\Z, nested classes...) is searched in Python;
- binary files are skipped as rg skips them (a NUL byte: rg stops reading there), which is
  what the search counts as binary too; a file rg lists anyway is read and judged again.
"""

from __future__ import annotations

import functools
import os
import re
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path

import attrs

from . import interrupt

# Our ignore semantics (tools/walk.py), spelled as rg flags.
IGNORE_FLAGS = (
    "--no-config",  # a RIPGREP_CONFIG_PATH must not change what the tools see
    "--hidden",
    "--no-follow",
    "--no-ignore-parent",  # a workspace folder is its own root
    "--no-ignore-dot",
    "--no-ignore-exclude",
    "--no-ignore-global",
    "--no-require-git",
    "--glob-case-insensitive",
    "--glob=!.git",
    "--max-depth=64",
    "--null",
)
# Bounds on the memory rg's regex compiler may use (our own caps come first: regex_limits).
REGEX_LIMITS = ("--regex-size-limit=20M", "--dfa-size-limit=20M")
STDERR_MAX_BYTES = 64 * 1024


class RipgrepUnusable(Exception):
    """rg could not answer this request (it read the pattern differently, or failed): use Python."""


@functools.cache
def binary() -> str | None:
    """The `rg` the ripgrep wheel installed next to our interpreter, else one on PATH."""
    import sysconfig  # on the first search, not with the daemon

    for scripts in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        candidate = os.path.join(scripts, "rg")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("rg")


@attrs.define
class Listing:
    paths: list[str]  # relative to the folder rg ran in
    complete: bool  # False: the deadline stopped rg first


def run(arguments: list[str], cwd: Path, deadline: float) -> Listing:
    """Run rg in `cwd` and collect the NUL-separated paths it prints until `deadline`
    (time.monotonic()); the running call's Interrupt kills it."""
    rg = binary()
    if rg is None:
        raise RipgrepUnusable("rg is not installed")
    try:
        process = subprocess.Popen(
            [rg, *IGNORE_FLAGS, *arguments], cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True,
        )
    except OSError as error:
        raise RipgrepUnusable(f"rg could not start: {error}") from None
    with process, interrupt.current().watching(process):  # `with process`: pipes closed, rg reaped
        try:
            out, err, complete = _collect(process, deadline)
        finally:
            if process.poll() is None:
                process.kill()
    if complete and _failed(process.returncode, out, err):
        raise RipgrepUnusable(err.decode("utf-8", "replace").strip() or f"rg exited with {process.returncode}")
    return Listing(_paths(out), complete)


def _paths(out: bytes) -> list[str]:
    """rg's NUL-separated paths, without the "./" it puts before each when it searches ".".
    Decoded at once (a NUL never falls inside a UTF-8 sequence, so this equals decoding
    each path): path by path was a third of the Python time of a 40,000-file listing."""
    text = os.fsdecode(out)
    if text.startswith("./"):
        text = text[2:].replace("\0./", "\0")
    paths = text.split("\0")
    del paths[-1]  # what follows the last NUL: nothing, or a path cut short by the deadline
    return [path for path in paths if path]


def _failed(code: int, out: bytes, err: bytes) -> bool:
    """Whether rg gave no usable answer: killed, or an error that is not about some
    file (an unreadable file gives exit code 2 too, with the rest listed)."""
    return code < 0 or (code == 2 and not out and b"os error" not in err)


def _collect(process: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes, bool]:
    """(stdout, stderr, whether rg finished) read without blocking past `deadline`."""
    out: list[bytes] = []
    err = bytearray()
    assert process.stdout is not None and process.stderr is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, out)
        selector.register(process.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or interrupt.requested():
                return b"".join(out), bytes(err), False
            for key, _ in selector.select(min(remaining, 0.25)):
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.data is out:
                    out.append(chunk)
                elif len(err) < STDERR_MAX_BYTES:
                    err.extend(chunk)
    process.wait()
    return b"".join(out), bytes(err), not interrupt.requested()


# -- patterns -----------------------------------------------------------------------

_SAFE_LETTER_ESCAPES = set("wWdDsSbBtnr")
_SAFE_CLASS_ESCAPES = set("wWdDsStnr")
_UNSAFE_PUNCTUATION_ESCAPES = set("<>")  # word boundaries in Rust, literals in Python
_REPEAT = re.compile(r"\{\d+(?:,\d*)?\}")


def rust_compatible(pattern: str) -> bool:
    """Whether Rust's regex (rg) reads `pattern` as Python's `regex` does: literal
    characters, ., classes, \\w \\d \\s \\b and their negations, groups, (?:...), a
    leading (?i), named groups, alternation, anchors and greedy or lazy repeats.
    (`pattern` already compiled in Python: it is well formed.)"""
    i = 0
    after_repeat = False
    while i < len(pattern):
        if after_repeat and pattern[i] == "+":
            return False  # possessive: Python only
        end = _item_end(pattern, i)
        if end is None:
            return False
        after_repeat = pattern[i] in "*+?{"
        i = end
    return True


def _item_end(pattern: str, i: int) -> int | None:
    """The index after the item at `i` (a character, escape, class, group opening or
    repeat), or None when the two dialects may read it differently."""
    char = pattern[i]
    if char == "\\":
        return i + 2 if _safe_escape(pattern[i + 1 : i + 2], _SAFE_LETTER_ESCAPES) else None
    if char == "[":
        return _class_end(pattern, i)
    if char == "(" and pattern.startswith("?", i + 1):
        # A flag group only at the start: Python applies (?i) to the whole pattern.
        group = re.compile(r"\(\?(?::|i:|P<\w+>)" + ("|\\(\\?i\\)" if i == 0 else "")).match(pattern, i)
        return group.end() if group else None
    if char == "{":
        repeat = _REPEAT.match(pattern, i)
        return repeat.end() if repeat else None
    return i + 1


def _safe_escape(char: str, letters: set[str]) -> bool:
    if not char:
        return False
    if char.isascii() and char.isalnum():
        return char in letters
    return char.isascii() and char not in _UNSAFE_PUNCTUATION_ESCAPES


def _class_end(pattern: str, start: int) -> int | None:
    """The index after a plain class `[...]` opening at `start`; None for a class the
    two dialects read differently (nested, set operations, a leading "]")."""
    i = start + 1
    if pattern[i : i + 1] == "^":
        i += 1
    if pattern[i : i + 1] == "]":
        return None
    while i < len(pattern):
        char = pattern[i]
        if char == "]":
            return i + 1
        if char == "[" or pattern.startswith(("&&", "--", "~~"), i):
            return None
        if char == "\\":
            if not _safe_escape(pattern[i + 1 : i + 2], _SAFE_CLASS_ESCAPES):
                return None
            i += 2
        else:
            i += 1
    return None


def may_cross_lines(pattern: str) -> bool:
    """Whether a compatible `pattern` can match a line break: rg then reads whole files
    (--multiline), as Python matches the whole text; line by line is faster on binaries."""
    return bool(_LINE_BREAKING.search(pattern)) or any(ord(char) <= 10 for char in pattern)


# \s \S \W \D and [^...] include "\n"; so does a class range from \t.
_LINE_BREAKING = re.compile(r"\\[sSWDn]|\[\^|\\t-")


# -- globs -------------------------------------------------------------------------

_PLAIN_NAME_GLOB = re.compile(r"[^/\\\[\]{}:,]+")


@attrs.frozen
class NameFilter:
    """A glob that is a folder plus a file-name pattern ("src/**/*.ts", "*.py"), as rg
    file types: rg then lists only those files (and, unlike `--glob`, keeps .gitignore)."""

    folder: str  # "" for the workspace folder itself
    any_depth: bool  # "**/" before the name, or a glob without "/"
    names: tuple[str, ...]  # "*.ts", "*.tsx": only "*", "?" and plain characters

    def arguments(self) -> list[str]:
        adds = [f"--type-add=want:{name}" for name in self.names]
        return [*adds, "--type=want", *([] if self.any_depth else ["--max-depth=1"])]


def name_filter(alternatives: list[str]) -> NameFilter | None:
    """The NameFilter for a glob's brace-expanded, normalized alternatives, if they all
    share one folder and depth and differ only in a plain file-name pattern."""
    shapes = set()
    names = []
    for body in alternatives:
        folder, _, name = body.rpartition("/")
        any_depth = folder == "**" or folder.endswith("/**")
        folder = folder.removesuffix("**").rstrip("/") if any_depth else folder
        if not _PLAIN_NAME_GLOB.fullmatch(name) or "**" in name or re.search(r"[*?\[{]", folder):
            return None
        shapes.add((folder, any_depth))
        names.append(name)
    if len(shapes) != 1:
        return None
    folder, any_depth = shapes.pop()
    return NameFilter(folder, any_depth, tuple(names))
