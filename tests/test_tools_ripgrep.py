"""With rg as the engine, search_text and find_files answer exactly as the Python walk does:
the same files (.gitignore at every level, hidden files, .git, symlinks, unsaved buffers),
the same lines, for every pattern (rg's Rust dialect or not), and rg stops when told."""

from __future__ import annotations

import contextvars
import os
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest
import regex
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ollama_chatd.tools import interrupt, ripgrep, search
from ollama_chatd.tools.registry import check_arguments, find_tool
from ollama_chatd.tools.workspace import Folder, ToolError, Workspace
from test_tools_builtin import make_tree
from test_tools_gitignore import FILES, FOLDERS, GITIGNORE

pytestmark = pytest.mark.skipif(ripgrep.binary() is None, reason="rg missing: scripts/setup/10-python.sh installs it")


def both_engines(monkeypatch: pytest.MonkeyPatch, ws: Workspace, name: str, **arguments: Any) -> tuple[str, str]:
    """(rg's answer, the Python walk's answer) to the same call."""
    tool = find_tool(name)
    assert tool is not None
    checked = check_arguments(tool, arguments)
    with_rg = tool.run(ws, checked)
    with monkeypatch.context() as patch:
        patch.setattr(ripgrep, "binary", lambda: None)
        in_python = tool.run(ws, checked)
    assert isinstance(with_rg, str) and isinstance(in_python, str)
    return _without_skip_counts(with_rg), _without_skip_counts(in_python)


def _without_skip_counts(answer: str) -> str:
    """The walk counts the binary files it meets; rg skips them without counting."""
    return "\n".join(line for line in answer.splitlines() if not line.startswith("(skipped "))


@pytest.fixture
def tricky(tmp_path: Path) -> Path:
    """git's own test cases (test_tools_gitignore), nested and negating .gitignore files, hidden
    files, git's folder in any case, links out, a folder ignored only from above."""
    root = (tmp_path / "project").resolve()
    make_tree(root, {**{f: "HIT " + f + "\n" for f in FILES}, **{f"{d}/in.txt": f"HIT {d}\n" for d in FOLDERS}})
    make_tree(
        root,
        {
            ".gitignore": GITIGNORE + "nested/skip/\n",
            "src/.gitignore": "*.tmp\n!keep.tmp\n",
            "src/a.tmp": "HIT tmp\n", "src/keep.tmp": "HIT keep tmp\n",
            "src/lib/.gitignore": "/local.py\n",
            "src/lib/local.py": "HIT local\n", "src/lib/deeper/local.py": "HIT deeper local\n",
            "src/lib/nested/skip/x.py": "HIT skipped\n", "src/lib/nested/ok.py": "HIT ok\n",
            ".hidden/h.py": "HIT hidden\n", ".env": "HIT env\n",
            ".git/config": "HIT git\n", "sub/.GIT/config": "HIT GIT\n",
            "sub/repo/.git/HEAD": "HIT nested git\n", "sub/repo/a.log": "HIT nested log\n",
            "bin.dat": b"HIT\0binary", "late-nul.txt": "HIT\n" + "x" * 9000 + "\0",
            "lines.txt": "a tmp\nHIT across\nx\n\nHIT after a blank\n",
        },
    )
    outside = tmp_path / "outside"
    make_tree(outside, {"secret.py": "HIT secret\n"})
    (root / "src" / "out").symlink_to(outside)
    (root / "src" / "secret.py").symlink_to(outside / "secret.py")
    return root


@pytest.fixture
def buffers() -> dict[Path, str]:
    return {}


@pytest.fixture
def ws(tricky: Path, buffers: dict[Path, str]) -> Workspace:
    return Workspace([Folder("project", tricky)], open_document=buffers.get, open_paths=buffers.keys)


@pytest.mark.parametrize("path", [None, "src", "src/lib", "src/lib/nested", "build", "sub"])
def test_search_finds_the_same_lines(monkeypatch: pytest.MonkeyPatch, ws: Workspace, path: str | None) -> None:
    with_rg, in_python = both_engines(monkeypatch, ws, "search_text", pattern="HIT", path=path, max_results=500)
    assert with_rg == in_python
    assert "secret" not in with_rg and "git" not in with_rg.lower()


def test_the_same_lines_with_a_glob_and_a_cap(monkeypatch: pytest.MonkeyPatch, ws: Workspace) -> None:
    for glob in ["*.py", "src/**/*.py", "*.{log,tmp}", "**/[ab]*", "src/*"]:
        for cap in [1, 3, 500]:
            with_rg, in_python = both_engines(monkeypatch, ws, "search_text", pattern="HIT", glob=glob, max_results=cap)
            assert with_rg == in_python, (glob, cap)


def test_find_files_lists_the_same_files(monkeypatch: pytest.MonkeyPatch, ws: Workspace) -> None:
    for glob in ["**/*.py", "*.log", "src/**/*.py", "src/lib/*.py", "*.{txt,tmp}", "**/*", "a/**/b", "?ingle", "src/**"]:
        with_rg, in_python = both_engines(monkeypatch, ws, "find_files", glob=glob)
        assert with_rg == in_python, glob
        assert "src/out" not in with_rg.splitlines() and "src/secret.py" not in with_rg  # links: not files


def test_unsaved_buffers_are_searched_instead_of_the_disk(
    monkeypatch: pytest.MonkeyPatch, ws: Workspace, tricky: Path, buffers: dict[Path, str]
) -> None:
    buffers[tricky / "src" / "lib" / "nested" / "ok.py"] = "no longer\nUNSAVED here\n"  # disk says HIT
    buffers[tricky / "src" / "keep.tmp"] = "UNSAVED too\n"
    buffers[tricky / "src" / "a.tmp"] = "UNSAVED but ignored\n"
    buffers[tricky / "src" / "out" / "secret.py"] = "UNSAVED outside\n"  # through a link: not the walk's
    for pattern in ["UNSAVED", "HIT"]:
        with_rg, in_python = both_engines(monkeypatch, ws, "search_text", pattern=pattern, max_results=500)
        assert with_rg == in_python
    assert both_engines(monkeypatch, ws, "search_text", pattern="UNSAVED")[0] == (
        "src/keep.tmp:1: UNSAVED too\nsrc/lib/nested/ok.py:2: UNSAVED here"
    )


@pytest.mark.parametrize(
    "pattern",
    [
        r"HIT \w+", r"(?i)hit (?:tmp|keep)", r"^HIT [a-c]", r"HIT$", r"\bkeep\b", r"x{2,5}\0?",
        # Read differently by Rust's regex, or not at all: searched in Python.
        r"HIT(?= keep)", r"(?<=HIT )keep", r"(HIT) \1", r"HIT [[k]]eep", r"hit(?i) KEEP", r"HI\Z",
        r"H\x49T", r"a++", r"[\w&&k]eep", r"\<HIT", r"HIT{,2}", r"(?x) H I T",
        # May cross a line: rg reads whole files (--multiline) like Python does.
        r"HIT tmp\s+", r"tmp[^x]$", r"x\nH", r"tmp[\t-\r]HIT", "tmp\nHIT", r"tmp\W+HIT", r"x\D+HIT",
    ],
)
def test_every_pattern_gives_the_same_lines(monkeypatch: pytest.MonkeyPatch, ws: Workspace, pattern: str) -> None:
    with_rg, in_python = both_engines(monkeypatch, ws, "search_text", pattern=pattern, max_results=500)
    assert with_rg == in_python


# Pieces of patterns, both dialects' syntax and not: any pattern built of them that
# rust_compatible lets through must give the walk's answer.
_ATOMS = ["HIT", "tmp", "a", "x", " ", ".", r"\w", r"\W", r"\s", r"\S", r"\d", r"\D", r"\b", "^", "$",
          "[a-k]", "[^x]", r"[\t-\r]", r"\n", r"\.", "(?i)", "[[:alpha:]]", r"\Z", "(?=x)", "{"]
_REPEATS = ["", "*", "+", "?", "*?", "+?", "{1,3}", "{2}", "++", "{,2}"]


@st.composite
def _patterns(draw: st.DrawFn, depth: int = 2) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 4))):
        if depth and draw(st.booleans()):
            inner = draw(_patterns(depth=depth - 1))
            pieces.append(draw(st.sampled_from(["(", "(?:"])) + inner + ")")
        else:
            pieces.append(draw(st.sampled_from(_ATOMS)))
        pieces[-1] += draw(st.sampled_from(_REPEATS))
    joined = "".join(pieces)
    return joined + "|" + draw(_patterns(depth=0)) if depth and draw(st.booleans()) else joined


@settings(
    max_examples=80, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(pattern=_patterns())
def test_any_pattern_rg_takes_gives_the_walks_lines(monkeypatch: pytest.MonkeyPatch, ws: Workspace, pattern: str) -> None:
    try:
        regex.compile(pattern)
    except regex.error:
        return  # refused before either engine runs
    assume(ripgrep.rust_compatible(pattern))  # else both answers come from the walk
    with_rg, in_python = both_engines(monkeypatch, ws, "search_text", pattern=pattern, max_results=500)
    # A pattern that backtracks catastrophically is cut off after a time, which no two runs share.
    assume("took too long" not in with_rg + in_python)
    assert with_rg == in_python


_GLOB_PIECES = ["*", "?", "**/", "**", "/", "src", "lib", ".py", ".log", "a", "e", "[a-c]", "[!q]", "{py,tmp}", "{", "\\"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(glob=st.lists(st.sampled_from(_GLOB_PIECES), min_size=1, max_size=5).map("".join))
def test_any_glob_lists_the_walks_files(monkeypatch: pytest.MonkeyPatch, ws: Workspace, glob: str) -> None:
    try:
        with_rg, in_python = both_engines(monkeypatch, ws, "find_files", glob=glob)
    except ToolError:
        return  # refused (empty, "..") before either engine runs
    assert with_rg == in_python
    searched = both_engines(monkeypatch, ws, "search_text", pattern="HIT", glob=glob, max_results=500)
    assert searched[0] == searched[1]


def test_rust_compatible_keeps_rg_to_what_it_reads_as_python() -> None:
    for pattern in [r"def \w+", r"(?i)todo|fixme", r"[a-z_]+\(", r"^\s*$", r"a{2,3}?", r"(?P<n>x)", r"\.\*"]:
        assert ripgrep.rust_compatible(pattern), pattern
    for pattern in [r"a(?=b)", r"(a)\1", r"a++", r"x(?i)y", r"[[a]]", r"[a&&b]", r"\Z", r"\<", r"a{,3}", r"\x41", r"{"]:
        assert not ripgrep.rust_compatible(pattern), pattern


def test_cancelling_kills_rg(tmp_path: Path) -> None:
    make_tree(tmp_path, {"hit.py": "NEEDLE\n", "sub/x.py": "NEEDLE\n"})
    os.mkfifo(tmp_path / "sub" / ".gitignore")  # rg blocks opening it, until killed
    ws = Workspace([Folder("project", tmp_path)])
    outcome: dict[str, str] = {}

    def searching() -> None:
        outcome["text"] = search.search_text(ws, {"pattern": "NEEDLE"})

    with interrupt.interruptible() as stop:
        worker = threading.Thread(target=contextvars.copy_context().run, args=(searching,))
        worker.start()
    rg = _wait_for_child("rg")
    stop.cancel()
    rg.wait(timeout=5)  # gone: psutil raises TimeoutExpired otherwise
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert "results are incomplete" in outcome["text"]


def _wait_for_child(name: str) -> psutil.Process:
    me = psutil.Process()
    for _ in range(5000):
        children = [child for child in me.children() if child.name() == name]
        if children:
            return children[0]
        threading.Event().wait(0.001)
    raise AssertionError(f"no {name} child process appeared")
