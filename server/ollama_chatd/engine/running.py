"""Tasks running under a key (a chat's turn, a model call), each stoppable two ways.

`stop(key)` cancels the task and marks it stopped on request: the task then ends
normally with what it has (a `"cancelled"` result). Any other cancellation (the
front-end's `$/cancelRequest`, shutdown) propagates as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import attrs


@attrs.define
class Running:
    task: asyncio.Task[Any]
    stop_requested: bool = False

    def stopped_on_request(self) -> bool:
        """Called on CancelledError: True (and the task no longer cancelling) when
        `stop()` asked for it, whatever cancellations came after; False to re-raise."""
        if not self.stop_requested:
            return False
        while self.task.uncancel():
            pass
        return True


class RunningTasks:
    def __init__(self) -> None:
        self._running: dict[str, Running] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._running

    @contextlib.contextmanager
    def register(self, key: str) -> Iterator[Running]:
        """The current task runs under `key` until the block ends (the caller checks it is free)."""
        task = asyncio.current_task()
        assert task is not None
        running = self._running[key] = Running(task)
        try:
            yield running
        finally:
            del self._running[key]

    def stop(self, key: str) -> asyncio.Task[Any] | None:
        """Stop the task running under `key` and return it; None when none runs, or it
        is already being stopped (the first stop decides)."""
        running = self._running.get(key)
        if running is None or running.stop_requested or running.task.cancelling():
            return None
        running.stop_requested = True
        running.task.cancel()
        return running.task

    def stop_all(self) -> list[asyncio.Task[Any]]:
        return [task for key in list(self._running) if (task := self.stop(key))]
