"""Noticing that the editor process died, so the daemon never outlives it."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.5


def watch_parent(pid: int, on_exit: Callable[[], None]) -> asyncio.Task[None]:
    """Call `on_exit` soon after process `pid` ends (at once on Linux, via a pidfd)."""
    return asyncio.ensure_future(_watch(pid, on_exit))


async def _watch(pid: int, on_exit: Callable[[], None]) -> None:
    try:
        await _wait_pidfd(pid)
    except (AttributeError, OSError):
        await _poll(pid)
    logger.warning("editor process %d is gone; shutting down", pid)
    on_exit()


async def _wait_pidfd(pid: int) -> None:
    fd = os.pidfd_open(pid)
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    loop.add_reader(fd, lambda: exited.done() or exited.set_result(None))
    try:
        await exited
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def _poll(pid: int) -> None:
    while _alive(pid):
        await asyncio.sleep(POLL_SECONDS)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
