"""Workspace confinement, safe reads, and applying edits to disk."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ollama_chatd.tools.edits import ProposedEdit, apply_to_disk, unified_diff
from ollama_chatd.tools.workspace import (
    BinaryFileError,
    FileTooLargeError,
    Folder,
    NotRegularFileError,
    ToolError,
    Workspace,
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("print('hi')\n")
    return root.resolve()


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace([Folder("project", root)])


# -- resolve / display ---------------------------------------------------------


def test_resolve_relative_paths(ws: Workspace, root: Path) -> None:
    assert ws.resolve("src/app.py") == root / "src" / "app.py"
    assert ws.resolve("./src//app.py") == root / "src" / "app.py"
    assert ws.resolve("src\\app.py") == root / "src" / "app.py"
    assert ws.resolve("") == root
    assert ws.resolve(".") == root
    assert ws.resolve("new/file.txt") == root / "new" / "file.txt"


@pytest.mark.parametrize(
    "bad, reason",
    [
        ("../x", "outside the workspace"),
        ("src/../../x", "outside the workspace"),
        ("..\\x", "outside the workspace"),
        ("%2e%2e/x", "percent-escaped"),
        ("%252e%252e/x", "percent-escaped"),
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\win.ini", "absolute"),
        ("~/x", "home directory"),
        ("file:///etc/passwd", "URI"),
        ("http://x/y", "URI"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a" * 5000, "too long"),
        ("a" * 300, "longer than 255 bytes"),
    ],
)
def test_resolve_refuses_escapes_with_a_reason(ws: Workspace, bad: str, reason: str) -> None:
    with pytest.raises(ToolError, match=reason) as error:
        ws.resolve(bad)
    assert "src/app.py" in str(error.value) or "too long" in reason or "255" in reason


def test_absolute_path_inside_suggests_the_relative_form(ws: Workspace, root: Path) -> None:
    with pytest.raises(ToolError, match="'src/app.py'"):
        ws.resolve(str(root / "src" / "app.py"))


def test_dot_names_that_are_not_parent_are_legit(ws: Workspace, root: Path) -> None:
    (root / "....").mkdir()
    (root / "...." / "f").write_text("ok")
    assert ws.resolve("....//f") == root / "...." / "f"
    assert ws.resolve("a..b") == root / "a..b"
    assert ws.resolve("100%.txt") == root / "100%.txt"
    assert ws.resolve("./~name") == root / "~name"


def test_symlinks_pointing_out_are_refused(ws: Workspace, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    (root / "out_file").symlink_to(outside / "secret")
    (root / "out_dir").symlink_to(outside)
    (root / "hop2").symlink_to(outside)
    (root / "hop1").symlink_to(root / "hop2")
    for path in ["out_file", "out_dir", "out_dir/secret", "hop1/secret", "out_dir/new_file"]:
        with pytest.raises(ToolError, match="outside the workspace"):
            ws.resolve(path)


def test_symlink_inside_the_workspace_is_followed(ws: Workspace, root: Path) -> None:
    (root / "alias").symlink_to(root / "src")
    assert ws.resolve("alias/app.py") == root / "src" / "app.py"


def test_git_internals_are_refused(ws: Workspace, root: Path) -> None:
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    (root / "sub" / ".git").mkdir(parents=True)
    for path in [".git", ".git/config", ".git/hooks/pre-commit", "sub/.git/HEAD", ".GIT/config"]:
        with pytest.raises(ToolError, match=r"\.git directory"):
            ws.resolve(path)
    (root / "gitlink").symlink_to(root / ".git")
    with pytest.raises(ToolError, match=r"\.git directory"):
        ws.resolve("gitlink/config")
    assert ws.resolve(".gitignore") == root / ".gitignore"


def test_several_folders_are_addressed_by_name(tmp_path: Path) -> None:
    first, second = tmp_path / "front", tmp_path / "back"
    for folder in (first, second):
        folder.mkdir()
        (folder / "main.txt").write_text(folder.name)
    ws = Workspace([Folder("front", first), Folder("back", second)])
    assert ws.resolve("back/main.txt") == second / "main.txt"
    assert ws.resolve("main.txt") == first / "main.txt"  # no folder name: the first folder
    assert ws.display(second / "main.txt") == "back/main.txt"
    assert ws.display(first / "main.txt") == "front/main.txt"
    assert ws.resolve(ws.display(first / "main.txt")) == first / "main.txt"
    assert ws.display(second) == "back"


def test_duplicate_folder_names_stay_addressable(tmp_path: Path) -> None:
    one, two = tmp_path / "a" / "app", tmp_path / "b" / "app"
    one.mkdir(parents=True)
    two.mkdir(parents=True)
    ws = Workspace([Folder("app", one), Folder("app", two)])
    assert ws.display(two / "x") == "app-2/x"
    assert ws.resolve("app-2/x") == two / "x"


def test_display_single_folder(ws: Workspace, root: Path) -> None:
    assert ws.display(root / "src" / "app.py") == "src/app.py"
    assert ws.resolve(ws.display(root / "src" / "app.py")) == root / "src" / "app.py"


# -- read_text -------------------------------------------------------------------


def test_read_text_prefers_the_editor_buffer(root: Path) -> None:
    app = root / "src" / "app.py"
    ws = Workspace([Folder("p", root)], open_document={app: "unsaved\n"}.get)
    assert ws.read_text(app) == "unsaved\n"
    assert ws.read_bytes(app) == b"print('hi')\n"  # the disk is untouched


def test_read_text_never_serves_a_buffer_from_outside(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.txt"
    ws = Workspace([Folder("p", root)], open_document={outside: "secret"}.get)
    with pytest.raises(ToolError, match="outside"):
        ws.read_text(outside)


def test_read_text_refuses_binary_and_non_utf8(ws: Workspace, root: Path) -> None:
    (root / "nul.bin").write_bytes(b"abc\0def")
    (root / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(BinaryFileError, match="NUL"):
        ws.read_text(root / "nul.bin")
    with pytest.raises(BinaryFileError, match="not UTF-8"):
        ws.read_text(root / "latin1.txt")


def test_read_text_refuses_too_large(ws: Workspace, root: Path) -> None:
    (root / "big.txt").write_text("x" * 2000)
    with pytest.raises(FileTooLargeError, match="too large"):
        ws.read_text(root / "big.txt", max_bytes=1000)


def test_read_text_of_a_directory_and_a_missing_file(ws: Workspace, root: Path) -> None:
    with pytest.raises(NotRegularFileError, match="is a directory"):
        ws.read_text(root / "src")
    with pytest.raises(ToolError, match="does not exist"):
        ws.read_text(root / "nope.txt")


def test_file_replaced_by_a_directory_after_resolve(ws: Workspace, root: Path) -> None:
    path = ws.resolve("src/app.py")
    path.unlink()
    path.mkdir()
    with pytest.raises(NotRegularFileError, match="is a directory"):
        ws.read_text(path)


def test_symlink_swapped_in_after_resolve_is_caught(ws: Workspace, root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    path = ws.resolve("src/app.py")
    path.unlink()
    path.symlink_to(secret)  # the final component
    with pytest.raises(ToolError) as error:
        ws.read_text(path)
    assert "SECRET" not in str(error.value)


def test_parent_directory_swapped_for_a_symlink_is_caught(ws: Workspace, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "app.py").write_text("SECRET")
    path = ws.resolve("src/app.py")
    (root / "src").rename(root / "src_old")
    (root / "src").symlink_to(outside)  # an intermediate component: O_NOFOLLOW alone misses it
    with pytest.raises(ToolError, match="outside the workspace"):
        ws.read_text(path)


def test_fifo_is_refused_without_blocking(ws: Workspace, root: Path) -> None:
    os.mkfifo(root / "pipe")
    with pytest.raises(NotRegularFileError, match="FIFO"):
        ws.read_text(root / "pipe")


# -- ProposedEdit / apply_to_disk ----------------------------------------------------


def _edit(ws: Workspace, path: str, old: str | None, new: str) -> ProposedEdit:
    real = ws.resolve(path)
    return ProposedEdit(real, ws.display(real), old, new)


def test_diff_of_a_change_and_of_a_creation() -> None:
    change = unified_diff("a\nb\n", "a\nc\n", "src/x.txt")
    assert change.startswith("--- a/src/x.txt\n+++ b/src/x.txt\n")
    assert "-b\n+c\n" in change
    create = unified_diff(None, "new\n", "x.txt")
    assert create.startswith("--- /dev/null\n+++ b/x.txt\n")
    assert "+new\n" in create
    assert "\\ No newline at end of file" in unified_diff("a", "b", "x")
    assert unified_diff(None, "", "empty.txt") == "--- /dev/null\n+++ b/empty.txt\n"


def test_apply_replaces_atomically_and_keeps_the_mode(ws: Workspace, root: Path) -> None:
    target = root / "src" / "app.py"
    target.chmod(0o751)
    apply_to_disk(ws, _edit(ws, "src/app.py", "print('hi')\n", "print('bye')\n"))
    assert target.read_text() == "print('bye')\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o751
    assert sorted(p.name for p in (root / "src").iterdir()) == ["app.py"]  # no temp file left


def test_apply_creates_a_file_and_its_directories(ws: Workspace, root: Path) -> None:
    apply_to_disk(ws, _edit(ws, "deep/er/new.txt", None, "hello"))
    assert (root / "deep" / "er" / "new.txt").read_text() == "hello"


def test_apply_refuses_when_the_file_changed_on_disk(ws: Workspace, root: Path) -> None:
    edit = _edit(ws, "src/app.py", "print('hi')\n", "print('bye')\n")
    (root / "src" / "app.py").write_text("someone else\n")
    with pytest.raises(ToolError, match="differs from the text the change was based on"):
        apply_to_disk(ws, edit)
    assert (root / "src" / "app.py").read_text() == "someone else\n"
    assert sorted(p.name for p in (root / "src").iterdir()) == ["app.py"]


def test_apply_refuses_a_file_created_or_deleted_meanwhile(ws: Workspace, root: Path) -> None:
    create = _edit(ws, "late.txt", None, "mine")
    (root / "late.txt").write_text("theirs")
    with pytest.raises(ToolError, match="created"):
        apply_to_disk(ws, create)
    assert (root / "late.txt").read_text() == "theirs"
    change = _edit(ws, "src/app.py", "print('hi')\n", "x")
    (root / "src" / "app.py").unlink()
    with pytest.raises(ToolError, match="deleted"):
        apply_to_disk(ws, change)
    assert not (root / "src" / "app.py").exists()


def test_apply_refuses_a_file_replaced_by_a_directory(ws: Workspace, root: Path) -> None:
    edit = _edit(ws, "src/app.py", "print('hi')\n", "x")
    (root / "src" / "app.py").unlink()
    (root / "src" / "app.py").mkdir()
    with pytest.raises(ToolError, match="directory"):
        apply_to_disk(ws, edit)


def test_apply_refuses_when_a_symlink_now_leads_out(ws: Workspace, root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "app.py").write_text("print('hi')\n")
    edit = _edit(ws, "src/app.py", "print('hi')\n", "PWNED")
    (root / "src").rename(root / "src_old")
    (root / "src").symlink_to(outside)
    with pytest.raises(ToolError):
        apply_to_disk(ws, edit)
    assert (outside / "app.py").read_text() == "print('hi')\n"
    assert sorted(p.name for p in outside.iterdir()) == ["app.py"]


def test_apply_leaves_no_temp_file_when_the_write_fails(
    ws: Workspace, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(ToolError, match="No space left on device; the file was not changed"):
        apply_to_disk(ws, _edit(ws, "src/app.py", "print('hi')\n", "new"))
    assert (root / "src" / "app.py").read_text() == "print('hi')\n"
    assert sorted(p.name for p in (root / "src").iterdir()) == ["app.py"]
