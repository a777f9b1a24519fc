"""A real llama-server with a real model (SmolLM2-135M), started and stopped by the tests.

The binary and the model come from scripts/setup/30-llama-server.sh (see real_parts.py).
One thread and one slot, as measured steadiest on two shared cores; a small context.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from real_parts import real_part

MODEL = "smollm2"
CONTEXT = 2048
START_TIMEOUT_S = 120.0  # loading a 93 MB model takes a second or two; the machine may be busy


class LlamaServer:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path):
        self.process = process
        self.root = f"http://127.0.0.1:{port}"
        self.api_url = f"{self.root}/v1"
        self.log_path = log_path

    @classmethod
    def start(cls, *extra: str, context: int = CONTEXT) -> LlamaServer:
        binary = real_part("llama-server/bin/llama-server", "30-llama-server.sh")
        model = real_part("smollm2.gguf", "30-llama-server.sh")
        port = _free_port()
        log_path = Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
        command = [
            str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), "--alias", MODEL,
            "--threads", "1", "--parallel", "1", "--ctx-size", str(context), "--slots", *extra,
        ]  # fmt: skip
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        server = cls(process, port, log_path)
        server._wait_healthy()
        return server

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.root}{path}", timeout=5) as answer:
            return json.load(answer)

    def slot_busy(self) -> bool:
        return any(slot.get("is_processing") for slot in self.get("/slots"))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.process.returncode}:\n{self.log()[-3000:]}")
            try:
                if self.get("/health").get("status") == "ok":
                    return
            except (urllib.error.URLError, ConnectionError, ValueError):
                pass  # still loading (503) or not listening yet
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama-server not healthy within {START_TIMEOUT_S:g} s:\n{self.log()[-3000:]}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
