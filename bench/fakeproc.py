"""The project's fake Ollama (tests/fake_ollama.py), run in its own process.

In its own process it has a core's worth of scheduling to itself, and the time it notes
when a client drops a connection (`closed_at`, CLOCK_MONOTONIC) is not delayed by the
benchmark's own threads. It is scripted over its control endpoints.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
FAKE = ROOT / "tests" / "fake_ollama.py"


class FakeProcess:
    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(FAKE), "--port", "0"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the fake Ollama did not start")
        self.url = json.loads(line)["url"]
        parts = urlsplit(self.url)
        self._host, self._port = parts.hostname, parts.port
        self._conn: http.client.HTTPConnection | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=30)
            try:
                data = None if body is None else json.dumps(body).encode()
                headers = {"Content-Type": "application/json"} if data is not None else {}
                self._conn.request(method, path, body=data, headers=headers)
                resp = self._conn.getresponse()
                payload = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"fake {method} {path}: HTTP {resp.status} {payload[:200]!r}")
                return json.loads(payload)
            except (http.client.HTTPException, ConnectionError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError

    def script(self, *replies: dict[str, Any], model: str | None = None) -> None:
        self._call("POST", "/_fake/script", {"model": model, "replies": list(replies)})

    def requests(self) -> list[dict[str, Any]]:
        """The /api/chat requests since the last reset, in arrival order."""
        return self._call("GET", "/_fake/requests")

    def reset(self) -> None:
        self._call("POST", "/_fake/reset", {})

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        try:
            self.proc.stdin.close()  # the fake stops at stdin EOF
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)


def bulk(n_tokens: int, token: str = "x") -> dict[str, Any]:
    return {"kind": "bulk", "n_tokens": n_tokens, "token": token}


def endless(token: str = "tok ", delay: float = 0.0) -> dict[str, Any]:
    return {"kind": "endless", "token": token, "delay": delay}


def text(tokens: list[str]) -> dict[str, Any]:
    return {"kind": "text", "tokens": tokens}
