"""Reverting turns: putting the files they changed back as they were before.

Each file goes back through the same `EditApplier` as the model's own changes (the
editor's `workspace/applyEdit` when it can, else the atomic write to disk), as a
change from what the model's edit left to what was there before. A file that is no
longer what the model left (the user or anything else changed it since) is left
alone and reported, so a revert never throws away work that is not the model's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ollama_chatd.events import FileChange, RestoreReport, SkippedFile
from ollama_chatd.tools.edits import ProposedEdit
from ollama_chatd.tools.runner import EditApplier
from ollama_chatd.tools.workspace import ToolError, Workspace

logger = logging.getLogger(__name__)

CHANGED_SINCE = "changed since the model's edit (by you or another program); left as it is"
NEVER_FINISHED = "the model's change to it never finished (it failed, or the daemon stopped); left as it is"


class Restorer:
    """The `FileRestorer` of one workspace."""

    def __init__(self, workspace: Workspace, applier: EditApplier):
        self._workspace = workspace
        self._applier = applier

    async def restore(self, changes: Sequence[FileChange]) -> RestoreReport:
        restored: list[str] = []
        skipped: list[SkippedFile] = []
        for change in changes:
            try:
                if await self._restore(change):
                    restored.append(change.display_path)
            except ToolError as error:
                skipped.append(SkippedFile(change.display_path, str(error)))
            except Exception as error:  # the editor's answer, a disk: the other files still go back
                logger.error("could not restore %s", change.display_path, exc_info=error)
                skipped.append(SkippedFile(change.display_path, f"could not be restored ({type(error).__name__}: {error})"))
        return RestoreReport(tuple(restored), tuple(skipped))

    async def _restore(self, change: FileChange) -> bool:
        """Put one file back; False when it already is as before. Raises ToolError with
        the reason it was left alone."""
        path = Path(change.path)
        current = await asyncio.to_thread(self._text_now, change, path)
        if current == change.before_text:
            return change.after_known  # a change that never finished did nothing to undo
        if not change.after_known:
            raise ToolError(NEVER_FINISHED)
        if current != change.after_text:
            raise ToolError(CHANGED_SINCE)
        await self._applier.apply(
            ProposedEdit(path, change.display_path, current, change.before_text, mode=change.before_mode)
        )
        return True

    def _text_now(self, change: FileChange, path: Path) -> str | None:
        """The file's text now (the editor's buffer first; None: it does not exist)."""
        if self._workspace.resolve(change.display_path) != path:
            raise ToolError("its path leads to another file now (a symbolic link changed); left as it is")
        if not os.path.lexists(path):
            return None
        try:
            return self._workspace.read_text(path)
        except ToolError:
            raise ToolError(f"{CHANGED_SINCE} (it is not a text file any more)") from None
