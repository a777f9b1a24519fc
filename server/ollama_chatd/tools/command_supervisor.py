"""The parent of every command `run_command` starts, so that no process of it survives.

Run as a script (`python -I -S command_supervisor.py GRACE PROGRAM ARGS...`, by
`command_process`), never imported: it uses nothing but the standard library. On
Linux it makes itself a child subreaper (PR_SET_CHILD_SUBREAPER), so every process
the command starts stays its descendant, even one that calls `setsid` and whose
parent exits (a daemonizing server): an orphan is reparented to the nearest
subreaper, not to init. When the command's program exits, on SIGTERM (the daemon's
timeout or cancel), or when the daemon dies (PR_SET_PDEATHSIG), it sends SIGTERM to
every descendant, SIGKILL to those left after GRACE seconds, and exits as the
program did. Without /proc or prctl (not Linux) it only runs the program.
"""

import ctypes
import os
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.05


class Stop(Exception):
    """SIGTERM: the daemon stops the command (or has died)."""


def main() -> None:
    grace, argv = float(sys.argv[1]), sys.argv[2:]
    signal.signal(signal.SIGTERM, _stop)
    status = None
    try:
        _become_subreaper()
        program = os.fork()
        if program == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _exec(argv)
        status = _wait_for(program)
    except Stop:
        pass
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the daemon's killpg reaches us again meanwhile
    _end_descendants(grace)
    _exit_as(status)


def _stop(signum: int, frame: object) -> None:
    raise Stop()


def _become_subreaper() -> None:
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # the daemon died before PDEATHSIG was set
        raise Stop()


def _exec(argv: list[str]) -> None:
    try:
        os.execvp(argv[0], argv)
    except OSError as error:
        os.write(2, f"cannot run {argv[0]}: {error.strerror}\n".encode())
    os._exit(127)


def _wait_for(program: int) -> int:
    """The program's wait status; other children (reparented orphans) are reaped meanwhile."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == program:
            return status


def _end_descendants(grace: float) -> None:
    _signal_all(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _descendants(running_only=True) and time.monotonic() < deadline:
        _reap()
        time.sleep(POLL_SECONDS)
    for _ in range(3):  # again, for what forked meanwhile
        if not _signal_all(signal.SIGKILL):
            break
        time.sleep(POLL_SECONDS)
    _reap()


def _signal_all(signum: int) -> bool:
    """Signal every descendant; False when there was none."""
    found = _descendants(running_only=True)
    for pid in found:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    return bool(found)


def _descendants(running_only: bool) -> list[int]:
    """Every process below this one (zombies left out when `running_only`), from /proc."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if name.isdigit() and (stat := _stat(name)) is not None:
            state, parent = stat
            if not (running_only and state == "Z"):
                children.setdefault(parent, []).append(int(name))
    found, frontier = [], [os.getpid()]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


def _stat(pid: str) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()  # after "pid (comm)": state ppid ...
    except OSError:
        return None
    return fields[0].decode(), int(fields[1])


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _exit_as(status: int | None) -> None:
    """Exit as the program did: its code, or the signal that ended it (SIGTERM when stopped)."""
    code = -signal.SIGTERM if status is None else os.waitstatus_to_exitcode(status)
    if code >= 0:
        sys.exit(code)
    signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
    sys.exit(128 - code)  # a signal that does not end a process (SIGCHLD...) cannot happen here


if __name__ == "__main__":
    main()
