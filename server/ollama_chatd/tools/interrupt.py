"""Stopping a tool that runs in a worker thread when its turn is cancelled.

A cancelled turn cancels the coroutine awaiting the worker thread, but the thread
itself (and any `rg` it started) would run on. The runner hands each call an
`Interrupt` through a context variable (`asyncio.to_thread` copies the context
into the thread); cancelling it kills the call's child processes at once and
tells the Python loops to stop at their next file.
"""

from __future__ import annotations

import contextlib
import contextvars
import subprocess
import threading
from collections.abc import Iterator


class Interrupt:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen[bytes]] = set()
        self.requested = False

    def cancel(self) -> None:
        with self._lock:
            self.requested = True
            processes = list(self._processes)
        for process in processes:
            _kill(process)

    @contextlib.contextmanager
    def watching(self, process: subprocess.Popen[bytes]) -> Iterator[None]:
        """Kill `process` if the call is cancelled while the block runs."""
        with self._lock:
            self._processes.add(process)
            cancelled = self.requested
        if cancelled:
            _kill(process)
        try:
            yield
        finally:
            with self._lock:
                self._processes.discard(process)


_current: contextvars.ContextVar[Interrupt | None] = contextvars.ContextVar("tool_interrupt", default=None)


@contextlib.contextmanager
def interruptible() -> Iterator[Interrupt]:
    """Within this block (and the worker threads it starts), tools obey the returned Interrupt."""
    interrupt = Interrupt()
    token = _current.set(interrupt)
    try:
        yield interrupt
    finally:
        _current.reset(token)


def current() -> Interrupt:
    """The running call's Interrupt (a fresh one, never cancelled, outside any call)."""
    return _current.get() or Interrupt()


def requested() -> bool:
    interrupt = _current.get()
    return interrupt is not None and interrupt.requested


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        process.kill()
