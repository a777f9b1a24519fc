"""The workspace the tools act on: path confinement and safe reads.

Every path the model gives goes through `Workspace.resolve`, which refuses
anything that could land outside the editor's workspace folders, and every read
goes through `Workspace.read_text`, which sees the editor's unsaved text first
and otherwise opens the file so that a symlink swapped in after the check, a
FIFO or a device cannot make it read outside or hang.

Hard links cannot be told apart from ordinary files: a hard link inside the
workspace to a file outside it *is* a workspace file as far as the filesystem
can say, so it is read and written like any other. Only someone who can already
write both places can create one.

A little over 400 lines on purpose: everything that decides whether a path may be
touched is here, so that it can be reviewed in one read.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import attrs

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255
MAX_READ_BYTES = 10 * 1024 * 1024
BINARY_SNIFF_BYTES = 8192

# `scheme://...` and `file:...`; a bare "name:thing" stays a (legal) file name.
_URI = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|file:)", re.IGNORECASE)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:(?:/|$)")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_PROC_FD = Path("/proc/self/fd")


class ToolError(Exception):
    """A tool failure the model reads: says what was wrong and how to fix it."""


class BinaryFileError(ToolError):
    """The file is not UTF-8 text."""


class FileTooLargeError(ToolError):
    """The file is over the size limit of the read."""


class NotRegularFileError(ToolError):
    """A directory, FIFO, device or socket where a regular file was expected."""


@attrs.frozen
class Folder:
    name: str
    path: Path  # already resolved (realpath)


def quote_path(user_path: str, limit: int = 80) -> str:
    """The path as shown inside a message, shortened so a huge one stays readable."""
    shown = user_path if len(user_path) <= limit else user_path[: limit - 3] + "..."
    return repr(shown)


def _unique_names(folders: Sequence[Folder]) -> tuple[Folder, ...]:
    """Rename duplicate folder names ("app", "app-2") so every path round-trips."""
    seen: set[str] = set()
    unique = []
    for folder in folders:
        name, n = folder.name, 1
        while name in seen:
            n += 1
            name = f"{folder.name}-{n}"
        seen.add(name)
        unique.append(Folder(name, Path(os.path.realpath(folder.path))))
    return tuple(unique)


class Workspace:
    """The editor's workspace folders, seen through the editor's open buffers."""

    def __init__(
        self,
        folders: Sequence[Folder],
        open_document: Callable[[Path], str | None] = lambda p: None,
        *,
        open_paths: Callable[[], Iterable[Path]] = tuple,
        refusal: str | None = None,
    ):
        if not folders:
            raise ValueError("a workspace needs at least one folder")
        # Why no tool may use this workspace (the editor opened none and the client did
        # not opt into the daemon's working directory); None: the tools may.
        self.refusal = refusal
        self.folders = _unique_names(folders)
        self._by_name = {folder.name: folder for folder in self.folders}
        # Innermost first, as strings: folder_of runs for every file a search reads,
        # and pathlib's relative_to/is_relative_to cost more than the read itself.
        self._prefixes = sorted(
            ((str(f.path), f) for f in self.folders), key=lambda item: -len(item[0])
        )
        self._open_document = open_document
        self._open_paths = open_paths  # the paths open_document knows: searches add them

    # -- paths -------------------------------------------------------------

    @property
    def example_path(self) -> str:
        """A path in the right form, for error messages."""
        if len(self.folders) > 1:
            return f"{self.folders[0].name}/src/app.py"
        return "src/app.py"

    def resolve(self, user_path: str) -> Path:
        """The real path `user_path` names, refusing anything outside the folders
        and anything inside a `.git` directory."""
        segments = self._segments(user_path)
        folder, rest = self._pick_folder(segments)
        try:
            real = Path(os.path.realpath(folder.path.joinpath(*rest)))
        except (OSError, ValueError) as e:
            raise ToolError(f"cannot resolve path {quote_path(user_path)}: {e}") from None
        if self.folder_of(real) is None:
            raise ToolError(
                f"path {quote_path(user_path)} leads outside the workspace through a "
                f"symbolic link; only files inside the workspace can be used"
            )
        self._check_not_git(real, user_path)
        return real

    def folder_of(self, path: Path) -> Folder | None:
        """The innermost workspace folder containing the real `path`, if any."""
        return self._locate(os.fspath(path))[0]

    def _locate(self, path: str) -> tuple[Folder | None, str]:
        """(innermost folder containing `path`, the rest of the path inside it)."""
        for prefix, folder in self._prefixes:
            if path == prefix:
                return folder, ""
            if path.startswith(prefix) and path[len(prefix)] == os.sep:
                return folder, path[len(prefix) + 1 :]
            if prefix == os.sep and path.startswith(os.sep):  # a folder at "/"
                return folder, path[1:]
        return None, path

    def display(self, path: Path) -> str:
        """The form the model uses: "src/app.py", or "name/src/app.py" with several folders."""
        folder, relative = self._locate(os.fspath(path))
        if folder is None:
            return str(path)
        if len(self.folders) == 1:
            return relative or "."
        return f"{folder.name}/{relative}" if relative else folder.name

    def _segments(self, user_path: str) -> list[str]:
        """Split the model's path into plain name segments, refusing every escape."""
        if not isinstance(user_path, str):
            raise ToolError(f"path must be a string such as {self.example_path!r}")
        shown = quote_path(user_path)
        if _CONTROL_CHARS.search(user_path):
            raise ToolError(
                f"path {shown} contains a control character (NUL, newline, ...); "
                f"write the path as plain text such as {self.example_path!r}"
            )
        if len(user_path) > MAX_PATH_CHARS:
            raise ToolError(
                f"path {shown} is too long ({len(user_path)} characters; the limit is "
                f"{MAX_PATH_CHARS})"
            )
        if _URI.match(user_path):
            raise ToolError(
                f"path {shown} is a URI; use a path relative to the workspace root "
                f"such as {self.example_path!r}"
            )
        # Models trained on Windows paths write backslashes; treat them as separators
        # so "..\\x" cannot slip past the ".." check.
        path = user_path.replace("\\", "/")
        if path.startswith("/") or _WINDOWS_DRIVE.match(path):
            raise ToolError(self._absolute_path_message(path, shown))
        if path.startswith("~"):
            raise ToolError(
                f"path {shown} refers to a home directory, which is outside the "
                f"workspace; use a path relative to the workspace root such as "
                f"{self.example_path!r} (write './~name' for a file really named '~name')"
            )
        segments = [s for s in path.split("/") if s not in ("", ".")]
        if ".." in segments:
            raise ToolError(
                f"path {shown} is outside the workspace: '..' is not allowed; use a "
                f"path relative to the workspace root such as {self.example_path!r}"
            )
        if _decodes_to_parent(path):
            raise ToolError(
                f"path {shown} contains a percent-escaped '..'; paths are taken "
                f"literally, not URL-decoded. Use a plain path relative to the "
                f"workspace root such as {self.example_path!r}"
            )
        if any(len(s.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for s in segments):
            raise ToolError(
                f"path {shown} has a name longer than {MAX_NAME_BYTES} bytes, which no "
                f"file can have"
            )
        return segments

    def _absolute_path_message(self, path: str, shown: str) -> str:
        message = f"path {shown} is absolute; use a path relative to the workspace root"
        normalized = Path(os.path.normpath(path))
        if normalized.is_absolute() and self.folder_of(normalized) is not None:
            return f"{message}: {self.display(normalized)!r}"
        return f"{message} such as {self.example_path!r}"

    def _pick_folder(self, segments: list[str]) -> tuple[Folder, list[str]]:
        if len(self.folders) > 1 and segments and segments[0] in self._by_name:
            return self._by_name[segments[0]], segments[1:]
        return self.folders[0], segments

    def _check_not_git(self, real: Path, user_path: str) -> None:
        """git's internals are out of every tool: hooks run code, and remote URLs in
        .git/config can carry credentials."""
        folder = self.folder_of(real)
        assert folder is not None
        if any(is_git_directory(part) for part in real.relative_to(folder.path).parts):
            raise ToolError(
                f"path {quote_path(user_path)} is inside a .git directory; git's internal "
                f"files are not available to tools (use the files of the working tree)"
            )

    # -- reads -------------------------------------------------------------

    def open_paths(self) -> list[Path]:
        """The files the editor has open, whose unsaved text reads see instead of the disk."""
        return list(self._open_paths())

    def read_text(self, path: Path, *, max_bytes: int = MAX_READ_BYTES) -> str:
        """The text of `path`: the editor's buffer when open, else the file on disk.

        Raises ToolError (or a subclass) for missing, binary, too large or
        non-regular files and for anything found to lie outside the workspace.
        """
        if self.folder_of(path) is None:
            raise ToolError(f"path {str(path)!r} is outside the workspace")
        buffer = self._open_document(path)
        if buffer is not None:
            return buffer
        shown = self.display(path)
        return decode_text(self._read_bytes(path, max_bytes, shown), shown)

    def read_bytes(self, path: Path, *, max_bytes: int = MAX_READ_BYTES) -> bytes:
        """The bytes of the regular file `path` on disk, opened safely."""
        return self._read_bytes(path, max_bytes, self.display(path))

    def read_head(self, path: Path, max_bytes: int) -> tuple[bytes, int]:
        """The first `max_bytes` of the regular file `path` on disk, and its size."""
        fd, size = self._open_regular_file(path, self.display(path))
        try:
            return _read_at_most(fd, max_bytes, first_read=max_bytes), size
        finally:
            os.close(fd)

    def _read_bytes(self, path: Path, max_bytes: int, shown: str) -> bytes:
        fd, size = self._open_regular_file(path, shown)
        try:
            if size > max_bytes:
                raise _too_large(shown, size, max_bytes)
            data = _read_at_most(fd, max_bytes + 1, first_read=size + 1)
        finally:
            os.close(fd)
        if len(data) > max_bytes:  # the file grew while being read
            raise _too_large(shown, len(data), max_bytes)
        return data

    def _open_regular_file(self, path: Path, shown: str) -> tuple[int, int]:
        """(read-only fd, size) of the regular file `path`, proven to be inside the workspace.

        The lstat first keeps us from even opening a device or FIFO (opening some
        devices has side effects); O_NONBLOCK keeps a FIFO swapped in afterwards
        from blocking the open; O_NOFOLLOW refuses a final symlink; the fstat and
        the fd's own path catch any swap between the check and the open.
        """
        try:
            _require_regular(os.lstat(path).st_mode, shown)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as e:
            raise os_error_message(e, shown) from None
        try:
            opened = os.fstat(fd)
            _require_regular(opened.st_mode, shown)
            if self._locate(_opened_path(fd, path))[0] is None:
                raise ToolError(
                    f"{shown!r} was changed to point outside the workspace while it was "
                    f"being opened; refusing to read it"
                )
        except BaseException:
            os.close(fd)
            raise
        return fd, opened.st_size

    def open_directory(self, path: Path) -> int:
        """A read-only fd on the directory `path`, proven to be inside the workspace."""
        shown = self.display(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError as e:
            if e.errno == errno.ENOTDIR:
                raise NotRegularFileError(
                    f"{shown!r} is a file, not a directory; use read_file to read it"
                ) from None
            raise os_error_message(e, shown) from None
        if self._locate(_opened_path(fd, path))[0] is None:
            os.close(fd)
            raise ToolError(
                f"{shown!r} was changed to point outside the workspace while it was "
                f"being opened; refusing to list it"
            )
        return fd


def is_git_directory(name: str) -> bool:
    # casefold: on case-insensitive filesystems ".GIT/config" is the same file.
    return name.casefold() == ".git"


def _decodes_to_parent(path: str) -> bool:
    """Whether URL-decoding (once or repeatedly) would turn the path into a '..' escape."""
    decoded = path
    for _ in range(3):
        decoded = urllib.parse.unquote(decoded).replace("\\", "/")
        if ".." in decoded.split("/"):
            return True
    return False


def _require_regular(mode: int, shown: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise NotRegularFileError(
            f"{shown!r} is a directory, not a file; use list_directory to see what it contains"
        )
    kind = (
        "a FIFO" if stat.S_ISFIFO(mode)
        else "a socket" if stat.S_ISSOCK(mode)
        else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "a symbolic link" if stat.S_ISLNK(mode)
        else "not a regular file"
    )
    raise NotRegularFileError(f"{shown!r} is {kind}; tools only read regular files")


def _opened_path(fd: int, fallback: Path) -> str:
    """Where the open fd really is (the kernel's word on Linux, else realpath)."""
    try:
        return os.readlink(f"{_PROC_FD}/{fd}")
    except OSError:
        return os.path.realpath(fallback)


def _read_at_most(fd: int, limit: int, first_read: int) -> bytes:
    chunks = []
    remaining = limit
    size = min(first_read, limit)
    while remaining > 0:
        chunk = os.read(fd, min(remaining, max(size, 1 << 16)))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _too_large(shown: str, size: int, limit: int) -> FileTooLargeError:
    return FileTooLargeError(
        f"{shown!r} is too large ({_mib(size)}; the limit is {_mib(limit)})"
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def decode_text(data: bytes, shown: str) -> str:
    """UTF-8 text, or BinaryFileError saying why the bytes are not text."""
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        raise BinaryFileError(f"{shown!r} is a binary file (it contains NUL bytes); only text files can be read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BinaryFileError(
            f"{shown!r} is not UTF-8 text (invalid byte at offset {e.start}); only "
            f"UTF-8 text files can be read"
        ) from None


def os_error_message(error: OSError, shown: str) -> ToolError:
    """A ToolError the model can act on, for an OSError about the path `shown`."""
    code = error.errno
    if code == errno.ENOENT:
        return ToolError(
            f"{shown!r} does not exist; use find_files or list_directory to find the right path"
        )
    if code == errno.ENOTDIR:
        return ToolError(f"{shown!r} does not exist (a parent of it is a file, not a directory)")
    if code == errno.EISDIR:
        return NotRegularFileError(f"{shown!r} is a directory, not a file")
    if code == errno.ELOOP:
        return ToolError(
            f"{shown!r} is a symbolic link that changed or loops; refusing to follow it"
        )
    if code == errno.ENAMETOOLONG:
        return ToolError(f"path {shown!r} is too long for the filesystem")
    if code in (errno.EACCES, errno.EPERM):
        return ToolError(f"permission denied for {shown!r}")
    if code == errno.ENXIO:
        return NotRegularFileError(f"{shown!r} is not a regular file; tools only read regular files")
    return ToolError(f"cannot access {shown!r}: {error.strerror or error}")


def display_join(parent_display: str, name: str) -> str:
    """The display path of `name` inside the directory shown as `parent_display`."""
    if parent_display in ("", "."):
        return name
    return f"{parent_display}/{name}"
