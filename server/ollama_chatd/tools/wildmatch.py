"""Wildcard patterns (globs, .gitignore lines) matched in linear time.

A pattern here is a list of alternatives, each a sequence of tokens. Matching
runs all of them at once as a set of positions (a Thompson NFA) and caches each
set of positions as a DFA state, so a path is read once, character by character,
whatever the pattern: `*?*?*?*?*?Q` costs what `*.py` costs. Python's `re`
backtracks on such patterns and can take hours on one path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

# The DFA states cached per pattern; past this the cache starts over (matching
# stays linear, only slower), so no pattern can grow memory without bound.
MAX_CACHED_STATES = 2048


@attrs.frozen
class Literal:
    char: str


@attrs.frozen
class AnyChar:
    """`?`: one character, not "/"."""


@attrs.frozen
class Star:
    """`*`: any run of characters without "/"."""


@attrs.frozen
class AnyDepth:
    """`**/`: zero or more whole folders, i.e. nothing or anything ending with "/"."""


@attrs.frozen
class Anything:
    """`**` elsewhere: any run of characters, "/" included."""


@attrs.frozen
class CharClass:
    """`[a-z_]`, `[!0-9]`: one character (never "/") in or out of the ranges."""

    ranges: tuple[tuple[str, str], ...]
    negated: bool

    def accepts(self, char: str) -> bool:
        inside = any(low <= char <= high for low, high in self.ranges)
        return char != "/" and inside != self.negated


Token = Literal | AnyChar | Star | AnyDepth | Anything | CharClass
_SKIPPABLE = (Star, AnyDepth, Anything)

# (alternative, position in it, inside): `inside` marks an AnyDepth that has read
# something and so may only end with a "/", no longer match nothing.
Position = tuple[int, int, bool]
State = frozenset[Position]


class _Node:
    """A DFA state: the NFA positions it stands for, and the edges found so far."""

    __slots__ = ("accepting", "edges", "state")

    def __init__(self, state: State, accepting: tuple[int, ...]):
        self.state = state
        self.accepting = accepting
        self.edges: dict[str, _Node] = {}


class Matcher:
    """Whether a whole string matches any of the token sequences."""

    def __init__(self, alternatives: Sequence[Sequence[Token]]):
        self._alternatives = tuple(tuple(tokens) for tokens in alternatives)
        self._nodes: dict[State, _Node] = {}
        self._start = self._node(self._closure((alt, 0, False) for alt in range(len(self._alternatives))))

    def __call__(self, text: str) -> bool:
        return bool(self.matching(text))

    def matching(self, text: str) -> list[int]:
        """The indexes of the alternatives that match the whole of `text`."""
        node = self._start
        for char in text:
            following = node.edges.get(char)
            if following is None:
                following = self._node(self._step(node.state, char))
                node.edges[char] = following
            if not following.state:
                return []
            node = following
        return list(node.accepting)

    def _node(self, state: State) -> _Node:
        node = self._nodes.get(state)
        if node is None:
            if len(self._nodes) >= MAX_CACHED_STATES:  # forget the DFA built so far; start anew
                self._nodes.clear()
                self._start.edges.clear()
            accepting = tuple(sorted(alt for alt, position, _ in state if position == len(self._alternatives[alt])))
            node = self._nodes[state] = _Node(state, accepting)
        return node

    def _step(self, state: State, char: str) -> State:
        reached: list[Position] = []
        for alt, position, _ in state:
            tokens = self._alternatives[alt]
            if position == len(tokens):
                continue
            token = tokens[position]
            if _consumes(token, char):
                reached.append((alt, position + 1, False))
            if _stays(token, char):
                reached.append((alt, position, isinstance(token, AnyDepth)))
        return self._closure(reached)

    def _closure(self, positions: Iterable[Position]) -> State:
        """The positions plus those reachable by skipping wildcards that may match nothing."""
        seen: set[Position] = set()
        todo = list(positions)
        while todo:
            alt, position, inside = todo.pop()
            if (alt, position, inside) in seen:
                continue
            seen.add((alt, position, inside))
            tokens = self._alternatives[alt]
            if not inside and position < len(tokens) and isinstance(tokens[position], _SKIPPABLE):
                todo.append((alt, position + 1, False))
        return frozenset(seen)


def _consumes(token: Token, char: str) -> bool:
    """Whether `token` is done after reading `char` (moves to the next position)."""
    if isinstance(token, Literal):
        return token.char == char
    if isinstance(token, AnyChar):
        return char != "/"
    if isinstance(token, CharClass):
        return token.accepts(char)
    if isinstance(token, AnyDepth):
        return char == "/"  # the "/" that ends the folders
    return False


def _stays(token: Token, char: str) -> bool:
    """Whether `token` may go on after reading `char` (a wildcard still matching)."""
    if isinstance(token, Star):
        return char != "/"
    return isinstance(token, Anything | AnyDepth)


def parse_class(pattern: str, start: int) -> tuple[CharClass, int] | None:
    """The class `[...]` opening at `start` and the index after its "]", or None
    when it is not closed (then "[" is an ordinary character)."""
    i = start + 1
    negated = i < len(pattern) and pattern[i] in "!^"
    i += negated
    ranges: list[tuple[str, str]] = []
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "]" and not first:
            return CharClass(tuple(ranges), negated), i + 1
        if char == "\\" and i + 1 < len(pattern):
            i += 1
            char = pattern[i]
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            ranges.append((char, pattern[i + 2]))
            i += 3
        else:
            ranges.append((char, char))
            i += 1
        first = False
    return None
