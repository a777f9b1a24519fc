"""Glob patterns as models write them: `**/*.py`, `src/*.ts`, `*.{ts,tsx}`.

A glob without a `/` matches a file name at any depth (`*.py` finds
`src/app.py`), like ripgrep's `--glob`; a glob with a `/` matches the whole
path from the workspace root.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

from .wildmatch import AnyChar, AnyDepth, Anything, Literal, Matcher, Star, Token, parse_class
from .workspace import ToolError

_GLOB_CHARS = re.compile(r"[*?\[{]")


@attrs.frozen
class Glob:
    text: str
    matches_path: Callable[[str], bool]
    directories_only: bool  # the glob ended with "/"
    alternatives: tuple[str, ...]  # normalized, braces expanded: "**/*.ts", "**/*.tsx"

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


MAX_GLOB_CHARS = 1000
MAX_GLOB_ALTERNATIVES = 256  # what the {a,b} groups of one glob may expand to


def compile_glob(glob: str) -> Glob:
    if not isinstance(glob, str) or not normalize(glob):
        raise ToolError("glob is empty; write a pattern such as '**/*.py' or 'src/*.ts'")
    if len(glob) > MAX_GLOB_CHARS:
        raise ToolError(
            f"glob is too long ({len(glob)} characters; the limit is {MAX_GLOB_CHARS}); "
            f"write a shorter pattern such as '**/*.py'"
        )
    body = normalize(glob)
    if ".." in body.split("/"):
        raise ToolError(
            f"glob {glob!r} contains '..', which is not allowed: globs match paths inside the "
            f"workspace, such as '**/*.py' or 'src/*.ts'"
        )
    if "/" not in body:
        body = "**/" + body
    alternatives = _expand_braces(body, glob)
    matcher = Matcher([glob_tokens(option) for option in alternatives])
    return Glob(glob, matcher, glob.rstrip().endswith("/"), tuple(alternatives))


def glob_tokens(glob: str) -> list[Token]:
    """The tokens of a glob without braces: `**/`, `**`, `*`, `?`, `[...]`, characters."""
    tokens: list[Token] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            tokens.append(AnyDepth())
            i += 3
        elif glob.startswith("**", i):
            tokens.append(Anything())
            i += 2
        elif glob[i] == "[" and (parsed := parse_class(glob, i)) is not None:
            tokens.append(parsed[0])
            i = parsed[1]
        else:
            tokens.append(_SIMPLE.get(glob[i]) or Literal(glob[i]))
            i += 1
    return tokens


_SIMPLE: dict[str, Token] = {"*": Star(), "?": AnyChar()}


def _expand_braces(body: str, glob: str) -> list[str]:
    """Every spelling the {a,b} groups allow ("*.{ts,tsx}": "*.ts", "*.tsx"), one
    group at a time (no recursion, so 3,000 nested braces cost no stack)."""
    done: list[str] = []
    todo = [body]
    while todo:
        text = todo.pop()
        group = _first_group(text)
        if group is None:
            done.append(text)
            continue
        start, end = group
        todo.extend(text[:start] + option + text[end + 1 :] for option in _split_braces(text[start + 1 : end]))
        if len(done) + len(todo) > MAX_GLOB_ALTERNATIVES:
            raise ToolError(
                f"glob {_shown(glob)} has too many {{a,b}} alternatives (over "
                f"{MAX_GLOB_ALTERNATIVES}); use fewer groups, or several find_files calls"
            )
    return done


def _shown(glob: str) -> str:
    return repr(glob if len(glob) <= 80 else glob[:77] + "...")


def _first_group(text: str) -> tuple[int, int] | None:
    """Where the first closed {...} group starts and ends; an unclosed "{" is a character."""
    start = text.find("{")
    while start != -1:
        end = _brace_end(text, start)
        if end != -1:
            return start, end
        start = text.find("{", start + 1)
    return None


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
