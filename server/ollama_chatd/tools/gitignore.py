"""`.gitignore` files as git reads them, matched in linear time (see wildmatch).

A workspace's `.gitignore` is text anyone can commit: a line like `*?*?*?*?*?Q`
must not cost more than `*.log`, so its lines become wildmatch tokens, never
backtracking regular expressions.
"""

from __future__ import annotations

import attrs

from .wildmatch import AnyChar, AnyDepth, Anything, Literal, Matcher, Star, Token, parse_class

MAX_LINE_CHARS = 4096  # git's own limit on a path; a longer line is skipped


@attrs.frozen
class _Rule:
    negated: bool  # "!pattern": un-ignores
    directories_only: bool  # "pattern/": matches folders only


@attrs.frozen
class GitignoreFile:
    """The rules of one `.gitignore`, all matched in one pass over a path."""

    rules: tuple[_Rule, ...]
    matcher: Matcher

    def verdict(self, rel: str, is_dir: bool) -> bool | None:
        """True: ignored, False: re-included by a "!" line, None: no line matches.
        As in git, the last matching line decides."""
        matching = self.matcher.matching(rel)
        if is_dir:  # "build/**" ignores the folder too, as git says
            matching += self.matcher.matching(rel + "/")
        applicable = [i for i in matching if is_dir or not self.rules[i].directories_only]
        if not applicable:
            return None
        return not self.rules[max(applicable)].negated


def parse_gitignore(text: str) -> GitignoreFile | None:
    """The file's rules, or None when it has none (only comments and blank lines)."""
    rules: list[_Rule] = []
    alternatives: list[list[Token]] = []
    for line in text.splitlines():
        parsed = _parse_line(line)
        if parsed is not None:
            rules.append(parsed[0])
            alternatives.append(parsed[1])
    if not rules:
        return None
    return GitignoreFile(tuple(rules), Matcher(alternatives))


def _parse_line(line: str) -> tuple[_Rule, list[Token]] | None:
    if line.startswith("#") or len(line) > MAX_LINE_CHARS:
        return None
    line = _strip_trailing_spaces(line)
    negated = line.startswith("!")
    line = line[negated:]
    directories_only = line.endswith("/") and not line.endswith("\\/")
    line = line.rstrip("/") if directories_only else line
    if not line or line.endswith("\\") and not line.endswith("\\\\"):
        return None  # empty, or a lone trailing backslash: git matches nothing with it
    anchored = "/" in line  # a "/" at the start or in the middle ties it to this folder
    tokens = _tokens(line.lstrip("/"))
    if not anchored:
        tokens.insert(0, AnyDepth())
    return _Rule(negated, directories_only), tokens


def _strip_trailing_spaces(line: str) -> str:
    """Trailing spaces go, unless the last one is escaped ("name\\ ")."""
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        return stripped + " "
    return stripped


def _tokens(pattern: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        at_segment_start = i == 0 or pattern[i - 1] == "/"
        if at_segment_start and pattern.startswith("**", i) and pattern[i + 2 : i + 3] in ("", "/"):
            # "**" as a whole segment: any depth ("**/x", "a/**/b") or everything inside ("a/**").
            tokens.append(AnyDepth() if pattern.startswith("**/", i) else Anything())
            i += 3
        elif char == "*":
            tokens.append(Star())
            while pattern.startswith("*", i):  # other runs of "*" are one "*"
                i += 1
        elif char == "[" and (parsed := parse_class(pattern, i)) is not None:
            tokens.append(parsed[0])
            i = parsed[1]
        elif char == "\\" and i + 1 < len(pattern):  # an escaped character stands for itself
            tokens.append(Literal(pattern[i + 1]))
            i += 2
        else:
            tokens.append(AnyChar() if char == "?" else Literal(char))
            i += 1
    return tokens
