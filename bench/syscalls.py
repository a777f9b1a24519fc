#!/usr/bin/env python3
"""Count the daemon's system calls over a burst of short chats (needs strace).

    .venv/bin/python bench/syscalls.py                       # the work tree's daemon
    .venv/bin/python bench/syscalls.py --daemon-src DIR      # another server/ folder

Timings on a shared virtual machine spread by +-8% from run to run; system call
counts do not, so they show what a change to the per-turn path saves. The burst:
ROUNDS x 32 chats started at once, each a three-token reply from the fake Ollama.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402
from fakeproc import text  # noqa: E402

ROUNDS = 5
CHATS = 32


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--daemon-src", metavar="DIR", help="measure the daemon package found in DIR (a server/ folder)")
    args = parser.parse_args()
    if shutil.which("strace") is None:
        print("bench/syscalls.py needs strace", file=sys.stderr)
        return 2
    bench = run.Bench(run.settings(False), Path(args.daemon_src).resolve() if args.daemon_src else None)
    report = Path(tempfile.mkstemp(prefix="chatd-strace-", suffix=".txt")[1])
    try:
        proc, _ = bench.start("daemon")
        tracer = subprocess.Popen(["strace", "-f", "-c", "-p", str(proc.pid), "-o", str(report)], stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # strace attaches to every thread
        for round_ in range(ROUNDS):
            bench.fake.reset()
            bench.fake.script(*[text(["Hi", " there", "!"]) for _ in range(CHATS)])
            chats = [{"chatId": f"r{round_}-{i}", "prompt": "hi", "model": run.MODEL} for i in range(CHATS)]
            _, waiters = proc.start_chats(chats)
            for _, waiter in waiters:
                proc.wait(waiter, 60)
        tracer.send_signal(signal.SIGINT)
        tracer.wait()
        bench.finish("daemon", proc, "syscalls")
    finally:
        bench.stop()
    print(f"system calls of the daemon over {ROUNDS * CHATS} turns ({ROUNDS} x {CHATS} chats at once):")
    print(report.read_text())
    report.unlink()
    return 1 if bench.problems else 0


if __name__ == "__main__":
    sys.exit(main())
