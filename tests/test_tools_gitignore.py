""".gitignore lines and globs: the daemon's linear-time matcher says what real git says,
and a pattern that makes a backtracking matcher explode costs what a plain one costs."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from ollama_chatd.tools.gitignore import parse_gitignore
from ollama_chatd.tools.globs import compile_glob

GITIGNORE = r"""*.log
!keep.log
build/
/root-only.txt
docs/*.md
**/deep
a/**/b
x/**
\#hash
name\ 
?ingle
[abc]z.txt
[!q]y.txt
# a comment
foo*bar
*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?Q
"""
FILES = [
    "a.log", "keep.log", "sub/x.log", "root-only.txt", "sub/root-only.txt", "docs/a.md",
    "docs/sub/a.md", "sub/docs/a.md", "deep", "sub/deep", "a/b", "a/q/w/b", "a/bb", "x/y/z",
    "#hash", "name ", "single", "ingle", "az.txt", "qz.txt", "ay.txt", "qy.txt", "sub/az.txt",
    "fooXbar", "fooYYbar", "foo/bar", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaQ", "a" * 60,
]
FOLDERS = ["build", "sub/build", "x", "x/y", "a"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignore_verdicts_are_gits(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text(GITIGNORE)
    rules = parse_gitignore(GITIGNORE)
    assert rules is not None
    paths = [(p, False) for p in FILES] + [(p, True) for p in FOLDERS]
    asked = [p + "/" if is_dir else p for p, is_dir in paths]
    git = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-z", "--verbose", "--non-matching"],
        cwd=tmp_path, input="\0".join(asked) + "\0", capture_output=True, text=True, check=False,
    )
    fields = git.stdout.split("\0")
    # --verbose -z: source, line number, pattern, path; a pattern starting "!" re-includes.
    git_says = {fields[i + 3]: bool(fields[i]) and not fields[i + 2].startswith("!") for i in range(0, len(fields) - 1, 4)}
    ours = {path: bool(rules.verdict(p, is_dir)) for path, (p, is_dir) in zip(asked, paths, strict=True)}
    assert ours == git_says


def test_a_backtracking_pattern_costs_what_a_plain_one_costs() -> None:
    stars = "*?" * 16 + "Q"
    rules = parse_gitignore(f"{stars}\n")
    glob = compile_glob(stars)
    assert rules is not None
    started = time.monotonic()
    for n in range(2000):
        path = f"src/{'a' * (n % 80)}/{'b' * 60}"
        assert not glob.matches(path)
        assert rules.verdict(path, False) is None
    assert time.monotonic() - started < 5  # Python's `re` takes hours on one of these paths


def test_braces_nest_and_unclosed_ones_are_characters() -> None:
    glob = compile_glob("src/{a,b{c,d}}/*.{ts,tsx}")
    assert [glob.matches(p) for p in ("src/a/x.ts", "src/bd/y.tsx", "src/b/x.ts", "src/a/x.js")] == [True, True, False, False]
    assert compile_glob("{a,b").matches("{a,b")
    assert compile_glob("**/[!.]*.py").matches("pkg/mod.py")
    assert not compile_glob("**/[!.]*.py").matches("pkg/.hidden.py")
