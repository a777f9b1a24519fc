"""Changes the model proposes, and writing them to disk atomically.

A write tool never touches the disk itself: it returns a `ProposedEdit`, the
caller asks the user (showing `diff`), then either hands the edit to the editor
or calls `apply_to_disk`.
"""

from __future__ import annotations

import difflib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import attrs

from .workspace import BinaryFileError, ToolError, Workspace, decode_text

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Files something runs on its own: editor tasks and settings, git hook managers, direnv.
CODE_DIRECTORIES = frozenset({".vscode", ".idea", ".devcontainer", ".husky", ".githooks"})
CODE_FILES = frozenset({".envrc", ".pre-commit-config.yaml", "lefthook.yml", ".lefthook.yml"})


@attrs.frozen
class ProposedEdit:
    path: Path  # resolved target
    display_path: str
    old_text: str | None  # None: the file does not exist yet (create)
    new_text: str | None  # None: delete the file
    mode: int | None = None  # the permission bits a created file gets (None: 0o666 minus the umask)

    @property
    def verb(self) -> str:
        """What the change does, as a permission prompt's title says it."""
        return "Create" if self.old_text is None else "Delete" if self.new_text is None else "Edit"

    @property
    def runs_code(self) -> bool:
        """Whether editors, git or the shell run this file without asking (tasks,
        hooks, environment setup): such a change is asked for every time, even
        after "allow always" or with the tool in autoApprove."""
        parts = [part.casefold() for part in self.display_path.split("/")]
        return bool(CODE_DIRECTORIES.intersection(parts[:-1])) or parts[-1] in CODE_FILES

    @property
    def diff(self) -> str:
        """A unified diff with a/ b/ display paths, for the permission prompt."""
        return unified_diff(self.old_text, self.new_text, self.display_path)


# difflib is quadratic: 40,000 lines with every second one changed took 55 s. It
# only sees the changed region (the lines both texts share at their start and end
# set aside), and only while that region is small; above this (lines before x
# lines after) the region is shown whole: every old line removed, every new one added.
MAX_DIFF_WORK = 1_000_000
DIFF_CONTEXT = 3


def unified_diff(old_text: str | None, new_text: str | None, display_path: str) -> str:
    """A unified diff with a/ b/ display paths, in bounded time (see MAX_DIFF_WORK)."""
    from_file = "/dev/null" if old_text is None else f"a/{display_path}"
    to_file = "/dev/null" if new_text is None else f"b/{display_path}"
    old, new = _lines(old_text or ""), _lines(new_text or "")
    lines = list(_hunks(old, new, _KnownOpcodes(_opcodes(old, new))))
    if lines or None in (old_text, new_text):  # creating or deleting an empty file still says so
        lines = [f"--- {from_file}\n", f"+++ {to_file}\n", *lines]
    # Like git, mark a last line without newline instead of gluing it to the next.
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _opcodes(old: list[str], new: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes, computed on the changed region only."""
    head, tail = _common_ends(old, new)
    old_middle, new_middle = old[head : len(old) - tail], new[head : len(new) - tail]
    if len(old_middle) * len(new_middle) <= MAX_DIFF_WORK:
        middle = difflib.SequenceMatcher(None, old_middle, new_middle).get_opcodes()
    else:
        middle = [("replace", 0, len(old_middle), 0, len(new_middle))]
    codes = [("equal", 0, head, 0, head)] if head else []
    codes += [(tag, i1 + head, i2 + head, j1 + head, j2 + head) for tag, i1, i2, j1, j2 in middle]
    if tail:
        codes.append(("equal", len(old) - tail, len(old), len(new) - tail, len(new)))
    return codes


def _common_ends(old: list[str], new: list[str]) -> tuple[int, int]:
    """How many lines the texts share at their start, and then at their end."""
    head = 0
    while head < min(len(old), len(new)) and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < min(len(old), len(new)) - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    return head, tail


class _KnownOpcodes(difflib.SequenceMatcher):
    """A matcher told its opcodes, for difflib's grouping into hunks with context."""

    def __init__(self, opcodes: list[tuple[str, int, int, int, int]]):
        super().__init__(None, [], [])
        self._known = opcodes

    def get_opcodes(self) -> list[tuple[str, int, int, int, int]]:
        return self._known


def _hunks(old: list[str], new: list[str], matcher: difflib.SequenceMatcher) -> Iterator[str]:
    """The hunks as difflib.unified_diff writes them."""
    for group in matcher.get_grouped_opcodes(DIFF_CONTEXT):
        first, last = group[0], group[-1]
        yield f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@\n"
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                yield from (" " + line for line in old[i1:i2])
                continue
            yield from ("-" + line for line in old[i1:i2])
            yield from ("+" + line for line in new[j1:j2])


def _range(start: int, stop: int) -> str:
    """A hunk range as difflib writes it (1-based; an empty range names the line before)."""
    length = stop - start
    return str(start + 1) if length == 1 else f"{start + (length > 0)},{length}"


def _lines(text: str) -> list[str]:
    """Lines with their "\\n" (not str.splitlines, which also splits on \\f, \\x1c...)."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def apply_to_disk(ws: Workspace, edit: ProposedEdit) -> None:
    """Write the edit: temp file in the same directory, fsync, rename over the target
    (or, for a deletion, unlink it).

    Refuses (ToolError) when the path no longer resolves to the same place, or the
    file on disk is no longer what the edit was based on (changed, created or
    deleted meanwhile, or the editor's buffer held unsaved text). Keeps the mode of
    an existing file. On any failure the target is untouched and no temp file stays.
    """
    shown = edit.display_path
    check_same_target(ws, edit)
    dir_fd = _open_parent_directory(ws, edit, create=edit.old_text is None)
    try:
        existing = _check_unchanged(ws, edit, dir_fd)
        if edit.new_text is None:
            _delete(dir_fd, edit.path.name, shown)
        else:
            _replace_atomically(dir_fd, edit.path.name, edit.new_text.encode("utf-8"), existing, shown, edit.mode)
    finally:
        os.close(dir_fd)


def check_same_target(ws: Workspace, edit: ProposedEdit) -> None:
    """Refuse (ToolError) an edit whose path no longer resolves to where it was proposed."""
    if ws.resolve(edit.display_path) != edit.path:
        raise ToolError(
            f"{edit.display_path!r} now leads to a different file than when the change was "
            f"proposed (a symbolic link changed); read it again and redo the change"
        )


def _open_parent_directory(ws: Workspace, edit: ProposedEdit, *, create: bool) -> int:
    """An fd on the target's directory, reached component by component without
    following any symlink, creating missing directories when creating a file.
    Each fd is closed in exactly one place: here, once its child is open or on failure."""
    folder = ws.folder_of(edit.path)
    assert folder is not None  # resolve() just confirmed it
    fd = ws.open_directory(folder.path)
    try:
        for part in edit.path.parent.relative_to(folder.path).parts:
            child = _enter(fd, part, create=create, shown=edit.display_path)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _enter(parent_fd: int, name: str, *, create: bool, shown: str) -> int:
    """Open (maybe create) the directory `name` inside `parent_fd`, which stays open."""
    try:
        if create:
            try:
                os.mkdir(name, 0o777, dir_fd=parent_fd)
            except FileExistsError:
                pass
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as e:
        raise _directory_error(e, name, shown) from None


def _directory_error(error: OSError, name: str, shown: str) -> ToolError:
    if error.errno == errno.ENOENT:
        return ToolError(f"the directory {name!r} of {shown!r} was deleted after the change was proposed")
    if error.errno == errno.ENOTDIR:
        return ToolError(f"cannot write {shown!r}: {name!r} is a file, not a directory")
    if error.errno == errno.ELOOP:
        return ToolError(f"cannot write {shown!r}: {name!r} became a symbolic link; refusing to follow it")
    return ToolError(f"cannot write {shown!r}: {error.strerror or error}; the file was not changed")


def _check_unchanged(ws: Workspace, edit: ProposedEdit, dir_fd: int) -> os.stat_result | None:
    """The stat of the current file (None if absent), after checking it is what the edit expects."""
    shown = edit.display_path
    try:
        current = os.stat(edit.path.name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        if edit.old_text is not None:
            raise ToolError(f"{shown!r} was deleted after the change was proposed; the change was not made") from None
        return None
    if edit.old_text is None:
        raise ToolError(
            f"{shown!r} was created by someone else after the change was proposed; read it "
            f"and propose the change again"
        )
    if stat.S_ISDIR(current.st_mode):
        raise ToolError(f"{shown!r} is a directory now; the change was not made")
    if not stat.S_ISREG(current.st_mode):
        raise ToolError(f"{shown!r} is no longer a regular file; the change was not made")
    if _disk_text(ws, edit) != edit.old_text:
        raise ToolError(
            f"{shown!r} on disk differs from the text the change was based on (it changed "
            f"meanwhile, or the editor holds unsaved changes); read it again and redo the change"
        )
    return current


def _disk_text(ws: Workspace, edit: ProposedEdit) -> str | None:
    try:
        return decode_text(ws.read_bytes(edit.path), edit.display_path)
    except BinaryFileError:
        return None


def _delete(dir_fd: int, name: str, shown: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError as e:
        raise ToolError(f"cannot delete {shown!r}: {e.strerror or e}; the file was not changed") from None
    _fsync_quietly(dir_fd)


def _replace_atomically(
    dir_fd: int, name: str, data: bytes, existing: os.stat_result | None, shown: str, mode: int | None = None
) -> None:
    temp_name = f".ollama-chatd-{secrets.token_hex(6)}.tmp"  # short: `name` may be 255 bytes
    try:
        # A new file gets 0o666 minus the umask, as any editor would create it.
        fd = os.open(temp_name, _NEW_FILE_FLAGS, 0o600 if existing else 0o666, dir_fd=dir_fd)
    except OSError as e:
        raise ToolError(f"cannot write {shown!r}: {e.strerror or e}; the file was not changed") from None
    try:
        try:
            _write_all(fd, data)
            if existing is not None:
                _keep_metadata(fd, existing)
            elif mode is not None:
                os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp_name, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException as e:
        _remove_quietly(temp_name, dir_fd)
        if isinstance(e, OSError):
            raise ToolError(f"cannot write {shown!r}: {e.strerror or e}; the file was not changed") from None
        raise
    _fsync_quietly(dir_fd)  # make the rename itself durable


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _keep_metadata(fd: int, existing: os.stat_result) -> None:
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, existing.st_uid, existing.st_gid)
        except OSError:
            pass  # only root may give a file away; the content still lands


def _remove_quietly(name: str, dir_fd: int) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except OSError:
        pass


def _fsync_quietly(dir_fd: int) -> None:
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the data is already safe
