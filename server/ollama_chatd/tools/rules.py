"""The project's own rules for the model: `AGENTS.md` at the workspace root.

Read through the workspace like any tool read (a symlink leading outside it, a
FIFO or a device is not read), from the file on disk: an unsaved editor buffer
of AGENTS.md is not used, so what the model follows is what the project holds
and the rules change when the file is saved. Looked at at the start of every
turn, but only re-read when the file's stat changes, so an unchanged file costs
one stat and gives byte-identical text (the model server's prompt cache stays warm).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import attrs

from ollama_chatd.events import ProjectRules
from ollama_chatd.tools.workspace import ToolError, Workspace, decode_text

RULES_FILE = "AGENTS.md"
MAX_RULES_BYTES = 32 * 1024

logger = logging.getLogger(__name__)


@attrs.frozen
class _Cached:
    identity: tuple[int, int, int, int]  # device, inode, size, mtime_ns
    rules: ProjectRules | None


class RulesFile:
    """The `RulesSource` of one workspace: AGENTS.md in its first folder."""

    def __init__(self, workspace: Workspace, name: str = RULES_FILE, max_bytes: int = MAX_RULES_BYTES):
        self._workspace = workspace
        self._name = name
        self._max_bytes = max_bytes
        self._cached: _Cached | None = None

    def read(self) -> ProjectRules | None:
        """The rules now (None: no usable file). Blocking: called in a worker thread."""
        if self._workspace.refusal is not None:
            return None
        try:
            path = self._workspace.resolve(self._name)
            found = os.stat(path)
        except (ToolError, OSError):  # absent, or a symlink leading outside: no rules
            return None
        identity = (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns)
        if self._cached is None or self._cached.identity != identity:
            self._cached = _Cached(identity, self._load(path))
        return self._cached.rules

    def _load(self, path: Path) -> ProjectRules | None:
        try:
            data, size = self._workspace.read_head(path, self._max_bytes)
            text = _decode_head(data, cut=size > len(data), shown=self._name)
        except ToolError as error:
            logger.info("%s is not used: %s", self._name, error)
            return None
        return ProjectRules(self._name, text, cut_bytes=max(size - len(text.encode("utf-8")), 0))


def _decode_head(data: bytes, *, cut: bool, shown: str) -> str:
    """The text of `data`; when the file was cut, a character split by the cut is left out."""
    if cut:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as error:
            if error.reason == "unexpected end of data":
                data = data[: error.start]
    return decode_text(data, shown)
