"""Glob patterns as models write them: `**/*.py`, `src/*.ts`, `*.{ts,tsx}`.

A glob without a `/` matches a file name at any depth (`*.py` finds
`src/app.py`), like ripgrep's `--glob`; a glob with a `/` matches the whole
path from the workspace root.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from .workspace import ToolError

_GLOB_CHARS = re.compile(r"[*?\[{]")


@attrs.frozen
class Glob:
    text: str
    matches_path: Callable[[str], bool]
    directories_only: bool  # the glob ended with "/"

    def matches(self, *paths: str) -> bool:
        """Whether any of the spellings of one path (folder-relative, display) matches."""
        return any(self.matches_path(p) for p in paths)

    @property
    def literal_prefix(self) -> str:
        """The leading directories without wildcards ("src/lib" for "src/lib/**/*.ts")."""
        body = normalize(self.text)
        if "/" not in body:
            return ""
        head = _GLOB_CHARS.split(body, maxsplit=1)[0]
        return head.rsplit("/", 1)[0] if "/" in head else ""


def normalize(glob: str) -> str:
    glob = glob.strip().replace("\\", "/")
    while glob.startswith("./"):
        glob = glob[2:]
    return glob.lstrip("/").rstrip("/")


def compile_glob(glob: str) -> Glob:
    if not isinstance(glob, str) or not normalize(glob):
        raise ToolError("glob is empty; write a pattern such as '**/*.py' or 'src/*.ts'")
    body = normalize(glob)
    if ".." in body.split("/"):
        raise ToolError(
            f"glob {glob!r} contains '..', which is not allowed: globs match paths inside the "
            f"workspace, such as '**/*.py' or 'src/*.ts'"
        )
    if "/" not in body:
        body = "**/" + body
    pattern = re.compile(_translate(body), re.DOTALL)
    return Glob(glob, lambda path: pattern.fullmatch(path) is not None, glob.rstrip().endswith("/"))


def _translate(glob: str) -> str:
    """The regular expression for a glob (no anchors; used with fullmatch)."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        i = _translate_one(glob, i, out)
    return "".join(out)


def _translate_one(glob: str, i: int, out: list[str]) -> int:
    if glob.startswith("**/", i):
        out.append("(?:.*/)?")
        return i + 3
    if glob.startswith("**", i):
        out.append(".*")
        return i + 2
    char = glob[i]
    if char == "*":
        out.append("[^/]*")
    elif char == "?":
        out.append("[^/]")
    elif char == "[" and (end := _class_end(glob, i)) != -1:
        out.append(_character_class(glob[i + 1 : end]))
        return end + 1
    elif char == "{" and (end := _brace_end(glob, i)) != -1:
        options = _split_braces(glob[i + 1 : end])
        out.append("(?:" + "|".join(_translate(o) for o in options) + ")")
        return end + 1
    else:
        out.append(re.escape(char))
    return i + 1


def _class_end(glob: str, start: int) -> int:
    i = start + 1
    if i < len(glob) and glob[i] in "!^":
        i += 1
    if i < len(glob) and glob[i] == "]":
        i += 1  # a leading "]" is part of the class
    return glob.find("]", i)


def _character_class(body: str) -> str:
    negate = body[:1] in ("!", "^")
    if negate:
        body = body[1:]
    # Escape what `re` gives a meaning inside a class ("[", "&&", "~~", "||"), keep "-".
    escaped = re.sub(r"([\\\[&~|])", r"\\\1", body)
    if escaped.startswith("]"):
        escaped = "\\" + escaped
    return ("[^/" if negate else "[") + escaped + "]"


def _brace_end(glob: str, start: int) -> int:
    depth = 0
    for i in range(start, len(glob)):
        if glob[i] == "{":
            depth += 1
        elif glob[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _split_braces(body: str) -> list[str]:
    options, depth, current = [], 0, []
    for char in body:
        if char == "," and depth == 0:
            options.append("".join(current))
            current = []
            continue
        depth += char == "{"
        depth -= char == "}"
        current.append(char)
    options.append("".join(current))
    return options
