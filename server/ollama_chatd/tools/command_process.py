"""Starting a command (under `command_supervisor`, or in a bubblewrap sandbox) in its own
process group, reading what it writes, and ending every process of it.

Two nets, so that no process of a command survives it. The process group: the shell's
children (a test runner and its workers) stay in it, so one `killpg` reaches them all,
grandchildren that trap SIGTERM included (SIGKILL follows after a grace period). And
the supervisor, a child subreaper, for a process that leaves the group (`setsid`, a
daemonizing server): it stays the supervisor's descendant, and the supervisor ends it.
In the sandbox, its PID namespace does that job: the kernel kills everything in it
when the command ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .command_output import CommandOutput

KILL_GRACE_SECONDS = 2.0
# The supervisor's own SIGKILLs come at KILL_GRACE_SECONDS: ours, to the group, only after it
# had time to send them (killing it first would let escapers of the group live on).
_SUPERVISOR_SECONDS = KILL_GRACE_SECONDS + 1.0
_SUPERVISOR = str(Path(__file__).with_name("command_supervisor.py"))
_POLL_SECONDS = 0.05


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def shell_argv(command: str, shell: str) -> list[str]:
    return [shell, "-c", command]


def supervised(argv: Sequence[str]) -> list[str]:
    """`argv` under `command_supervisor`, which ends every process it starts (escapers of
    the process group included) when it exits, is stopped, or the daemon dies."""
    return [sys.executable, "-I", "-S", _SUPERVISOR, f"{KILL_GRACE_SECONDS:g}", *argv]


def sandboxed(argv: Sequence[str], bwrap: str, writable: Sequence[Path], cwd: Path) -> list[str]:
    """`argv` under bubblewrap: the file system read-only but `writable` and a private
    /tmp, no network, its own PID namespace (it dies with the command and with the
    daemon). The process group is ours (no --new-session), so killpg still reaches it."""
    binds = [arg for path in writable for arg in ("--bind", str(path), str(path))]
    return [
        bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
        *binds, "--unshare-net", "--unshare-pid", "--die-with-parent", "--chdir", str(cwd), "--", *argv,
    ]  # fmt: skip


class _Collector(asyncio.SubprocessProtocol):
    """Feeds the output as it comes (no buffer grows), and notes the exit and the end."""

    def __init__(self, output: CommandOutput):
        loop = asyncio.get_running_loop()
        self.output = output
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.output.feed(data)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class RunningCommand:
    """One command's processes: its shell (the group's leader) and all in its group."""

    def __init__(self, transport: asyncio.SubprocessTransport, collector: _Collector):
        self._transport = transport
        self._collector = collector
        self.pgid = transport.get_pid()
        self.started = time.monotonic()

    @classmethod
    async def start(cls, argv: Sequence[str], cwd: Path, env: dict[str, str], output: CommandOutput) -> RunningCommand:
        """Raises OSError when the program cannot be started."""
        loop = asyncio.get_running_loop()
        collector = _Collector(output)
        transport, _ = await loop.subprocess_exec(
            lambda: collector, *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            cwd=cwd, env=env, start_new_session=True,
        )  # fmt: skip
        return cls(transport, collector)

    @property
    def exit_code(self) -> int | None:
        """The shell's exit status; negative: the signal that ended it."""
        return self._transport.get_returncode()

    async def wait(self, timeout: float) -> bool:
        """Wait for the shell to exit; False if it had not within `timeout` seconds."""
        try:
            await asyncio.wait_for(asyncio.shield(self._collector.exited), timeout)
        except TimeoutError:
            return False
        return True

    async def end(self) -> None:
        """End every process left in the group: SIGTERM, then SIGKILL after the grace
        period; then read what they wrote until the pipe closes (briefly: a process
        that escaped the group may hold it open)."""
        if _signal_group(self.pgid, signal.SIGTERM):
            deadline = time.monotonic() + _SUPERVISOR_SECONDS
            while await asyncio.to_thread(_group_alive, self.pgid) and time.monotonic() < deadline:
                await asyncio.sleep(_POLL_SECONDS)
            _signal_group(self.pgid, signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(self._collector.closed), 1.0)
        except TimeoutError:
            pass
        self.close()

    def kill_now(self) -> None:
        """At the daemon's exit: no grace period."""
        _signal_group(self.pgid, signal.SIGKILL)
        self.close()

    def close(self) -> None:
        self._collector.output.finish()
        self._transport.close()


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """False when no process is left in the group."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """Whether a process of the group still runs. A zombie does not count: its parent
    gone, it waits for init to reap it, which may take a while (and it holds nothing)."""
    if not _signal_group(pgid, 0):  # type: ignore[arg-type]
        return False
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc (macOS): a zombie counts, SIGKILL then comes after the grace period
        return True
    return any(_running_in_group(pid, pgid) for pid in pids)


def _running_in_group(pid: str, pgid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()  # after "pid (comm)": state ppid pgrp ...
    except OSError:  # it ended meanwhile
        return False
    return len(fields) > 2 and fields[0] != b"Z" and int(fields[2]) == pgid
