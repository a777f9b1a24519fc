"""The benchmark's rig: the fake Ollama in its own process, the relays spawned against it in a
scratch workspace, waiting for a quiet machine, and measuring the load of other processes."""

from __future__ import annotations

import compileall
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from client import RelayProcess
from common import HERE, LOG_DIR, MODEL, PY, ROOT, log
from fakeproc import FakeProcess
from machine import busy_seconds, process_cpu_seconds

RELAYS: dict[str, list[str]] = {
    "daemon": [PY, "-m", "ollama_chatd", "serve"],
    "naive": [PY, str(HERE / "naive_relay.py")],
    "ollama-python": [PY, str(HERE / "ollama_python_relay.py")],
}
QUIET_CORES = 0.15  # other processes may use this much CPU before a measurement starts
QUIET_BUDGET_S = 90.0  # total time a run may spend waiting for the machine to be quiet


def daemon_source(rev: str | None) -> Path:
    """The `server/` folder whose daemon is measured: the work tree's, or `rev`'s (extracted
    with `git archive` into a temporary folder, so edits in progress do not disturb a run)."""
    if rev is None:
        return ROOT / "server"
    import tempfile
    dest = Path(tempfile.mkdtemp(prefix="chatd-bench-"))
    archive = subprocess.run(["git", "archive", rev, "server"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "server"



class LoadMeter:
    """How much CPU *other* processes (not the benchmark, its fake or its relays) took."""

    def __init__(self, bench: Bench, pids: list[int]) -> None:
        self.bench = bench
        self.pids = pids

    def _ours(self) -> float:
        t = os.times()
        return t.user + t.system + sum(process_cpu_seconds(p) for p in [self.bench.fake.pid, *self.pids])

    def __enter__(self) -> LoadMeter:
        self.t0, self.busy0, self.ours0 = time.monotonic(), busy_seconds(), self._ours()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.monotonic() - self.t0
        foreign = (busy_seconds() - self.busy0) - (self._ours() - self.ours0)
        self.foreign_cores = max(foreign, 0.0) / wall if wall > 0 else 0.0
        self.bench.foreign.append(self.foreign_cores)


class Bench:
    def __init__(self, cfg: dict[str, Any], server_dir: Path | None = None, *, quick: bool = False,
                 relays: list[str] | None = None) -> None:
        import tempfile
        self.cfg = cfg
        self.quick = quick  # a smoke run: every part measures less
        self.relays = relays or list(RELAYS)  # the relays the paced part compares
        self.fake = FakeProcess()
        server_dir = self.server_dir = server_dir or ROOT / "server"
        # The relays run in a scratch workspace, and the daemon keeps its chat store there
        # too: a benchmark must not fill the user's own chat history.
        self.scratch = Path(tempfile.mkdtemp(prefix="chatd-bench-"))
        self.workspace = self.scratch / "workspace"
        self.state_dir = self.scratch / "state"
        self.workspace.mkdir()
        self.env = {**os.environ, "OLLAMA_HOST": self.fake.url, "OLLAMA_CHATD_MODEL": MODEL,
                    "XDG_DATA_HOME": str(self.scratch / "data"), "XDG_STATE_HOME": str(self.scratch / "xdg-state"),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(server_dir), os.environ.get("PYTHONPATH")]))}
        # Byte-compiled as an installed package is (pip compiles at install): with
        # PYTHONDONTWRITEBYTECODE set, as on some machines, every spawn would compile them again.
        for source in (server_dir / "ollama_chatd", HERE):
            compileall.compile_dir(source, quiet=1)
        self.problems: list[str] = []  # integrity failures: any of these makes the run invalid
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self._spawned = 0
        self.foreign: list[float] = []  # other processes' CPU (cores) during each measurement
        self.quiet_waited = 0.0

    def wait_quiet(self) -> None:
        """Before a measurement: wait (within a budget) until other processes leave the CPU alone."""
        while self.quiet_waited < QUIET_BUDGET_S:
            b0, o0, t0 = busy_seconds(), self._own_cpu(), time.monotonic()
            time.sleep(0.25)
            wall = time.monotonic() - t0
            other = ((busy_seconds() - b0) - (self._own_cpu() - o0)) / wall
            if other < QUIET_CORES:
                return
            self.quiet_waited += wall
            time.sleep(0.25)
            self.quiet_waited += 0.25

    def _own_cpu(self) -> float:
        t = os.times()
        return t.user + t.system + process_cpu_seconds(self.fake.pid)

    def load(self, *procs: RelayProcess) -> LoadMeter:
        return LoadMeter(self, [p.pid for p in procs])

    def spawn(self, relay: str) -> RelayProcess:
        self._spawned += 1
        return RelayProcess(RELAYS[relay], env=self.env, cwd=str(self.workspace),
                            stderr_path=str(LOG_DIR / f"{relay}-{self._spawned}.stderr"))

    def start(self, relay: str, settle: bool = True, *, workspace: bool = False) -> tuple[RelayProcess, float]:
        """Spawn and initialize; return the process and spawn-to-initialize-result seconds.

        With `settle`, return once the relay has finished starting: the daemon answers
        `initialize` before it has loaded, and a measurement must not count the loading.
        With `workspace`, the scratch workspace is its workspace folder (tools, AGENTS.md).
        """
        proc = self.spawn(relay)
        answer = proc.initialize({"ollamaHost": self.fake.url, "model": MODEL, "stateDir": str(self.state_dir)},
                                 root_uri=self.workspace.as_uri() if workspace else None)
        answer.result  # noqa: B018 - raises on an error answer
        if settle:
            proc.wait_idle()
        return proc, answer.at - proc.spawned_at

    def warm_up(self, proc: RelayProcess) -> None:
        """One short turn: opens the connection to the fake and loads what a turn loads
        lazily. An editor's daemon has done so long before its user's next chat, so the
        steady state is measured after it (the cold first turn is measured in first_token)."""
        self.fake.reset()
        self.fake.script({"kind": "text", "tokens": ["warm", "up"]})
        proc.wait(proc.request("chat/start", {"chatId": "warm-up", "prompt": "go", "model": MODEL})[1], 30)
        self.fake.reset()

    def finish(self, relay: str, proc: RelayProcess, what: str) -> None:
        self.check_process(relay, proc, what)
        proc.close()

    def check_process(self, relay: str, proc: RelayProcess, what: str) -> None:
        for v in proc.violations:
            self.problem(f"{relay} {what}: {v}")
        for chat in proc.chats.values():
            for v in chat.violations[:3]:
                self.problem(f"{relay} {what} chat {chat.chat_id}: {v}")

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)
        log(f"INTEGRITY PROBLEM: {text}")

    def stop(self) -> None:
        import shutil
        self.fake.stop()
        shutil.rmtree(self.scratch, ignore_errors=True)

