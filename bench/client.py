"""A minimal, fast JSON-RPC (LSP framing) client for the benchmark.

It spawns a relay (the daemon or a baseline) as a subprocess and reads its stdout on a
dedicated thread, as fast as it can: large `os.read`s, frames cut out by the package's own
`FrameDecoder` (ollama_chatd/jsonrpc.py, sans I/O, so this thread can use it), one `json.loads`
per body. For every chat it checks what an editor relies on:
`seq` contiguous from 0, nothing of a turn after its answer, and it keeps the delivered text
so the caller can compare it with what the fake server sent.

Timestamps are `time.monotonic()` (CLOCK_MONOTONIC on Linux, system-wide, so they compare
with the fake server's `received_at` / `closed_at` taken in another process). A message is
stamped when the `os.read` that completed it returned.

`pause_reading()` stops reading stdout (the pipe fills and the relay's writes back up, like
an editor busy rendering); `resume_reading()` goes on.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import termios
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ollama_chatd.jsonrpc import FrameDecoder, encode_frame

F_GETPIPE_SZ = 1032  # linux/fcntl.h
READ_SIZE = 1 << 20


class ClientError(Exception):
    pass


@dataclass
class Answer:
    """The response to one request."""

    msg: dict[str, Any]
    at: float  # monotonic time its bytes were read

    @property
    def error(self) -> dict[str, Any] | None:
        return self.msg.get("error")

    @property
    def result(self) -> Any:
        if "error" in self.msg:
            raise ClientError(f"error answer: {self.msg['error']}")
        return self.msg.get("result")


@dataclass
class ChatState:
    """What one chat received."""

    chat_id: str
    parts: dict[str, list[str]] = field(default_factory=lambda: {"content": [], "thinking": []})
    next_seq: int = 0
    notifications: int = 0
    chars: int = 0
    first_at: float | None = None
    last_at: float | None = None
    progress: list[tuple[float, int]] = field(default_factory=list)  # (read time, chars so far)
    answered: bool = False
    violations: list[str] = field(default_factory=list)

    def text(self, kind: str = "content") -> str:
        return "".join(self.parts[kind])


class _Waiter:
    __slots__ = ("event", "answer", "sent_at")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.answer: Answer | None = None
        self.sent_at = 0.0


class RelayProcess:
    """One spawned relay process and the client side of its stdio."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None,
                 stderr_path: str | None = None) -> None:
        self._stderr = open(stderr_path or os.devnull, "wb")
        self.spawned_at = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=env, cwd=cwd, bufsize=0)
        self.pid = self.proc.pid
        self._out_fd = self.proc.stdout.fileno()
        self._in = self.proc.stdin
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._ids = iter(range(1, 1 << 62))
        self._waiters: dict[int | str, _Waiter] = {}
        self._request_chat: dict[int | str, str] = {}  # chat/start id -> chatId
        self.chats: dict[str, ChatState] = {}
        self.violations: list[str] = []
        self.messages_read = 0
        self.bytes_read = 0
        self.eof_at: float | None = None
        self._reading = threading.Event()
        self._reading.set()
        self._idle = threading.Event()  # set while the reader is parked by pause_reading()
        self._thread = threading.Thread(target=self._read_loop, name=f"reader-{self.pid}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ sending

    def send(self, message: dict[str, Any]) -> float:
        """Write one message; return the monotonic time just before the write."""
        data = encode_frame(message)
        with self._write_lock:
            t = time.monotonic()
            self._in.write(data)
        return t

    def send_many(self, messages: list[dict[str, Any]]) -> float:
        data = b"".join(encode_frame(m) for m in messages)
        with self._write_lock:
            t = time.monotonic()
            self._in.write(data)
        return t

    def request(self, method: str, params: Any, msg_id: int | str | None = None) -> tuple[int | str, _Waiter]:
        msg_id = next(self._ids) if msg_id is None else msg_id
        waiter = self._register(method, params, msg_id)
        waiter.sent_at = self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id, waiter

    def _register(self, method: str, params: Any, msg_id: int | str) -> _Waiter:
        waiter = _Waiter()
        with self._lock:
            self._waiters[msg_id] = waiter
            if method == "chat/start":
                chat_id = params["chatId"]
                self._request_chat[msg_id] = chat_id
                self.chats[chat_id] = ChatState(chat_id)
        return waiter

    def start_chats(self, params_list: list[dict[str, Any]]) -> tuple[float, list[tuple[int, _Waiter]]]:
        """Send several chat/start requests in one write; return (send time, [(id, waiter)])."""
        out, msgs = [], []
        for params in params_list:
            msg_id = next(self._ids)
            out.append((msg_id, self._register("chat/start", params, msg_id)))
            msgs.append({"jsonrpc": "2.0", "id": msg_id, "method": "chat/start", "params": params})
        return self.send_many(msgs), out

    def call(self, method: str, params: Any, timeout: float = 30.0) -> Answer:
        _, waiter = self.request(method, params)
        return self.wait(waiter, timeout)

    def wait(self, waiter: _Waiter, timeout: float = 30.0) -> Answer:
        if not waiter.event.wait(timeout):
            raise ClientError(f"no answer within {timeout} s (pid {self.pid}, alive={self.proc.poll() is None})")
        assert waiter.answer is not None
        return waiter.answer

    def notify(self, method: str, params: Any) -> float:
        return self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def initialize(self, options: dict[str, Any], timeout: float = 30.0, root_uri: str | None = None) -> Answer:
        answer = self.call("initialize", {"processId": os.getpid(), "capabilities": {}, "rootUri": root_uri,
                                          "initializationOptions": options}, timeout)
        self.notify("initialized", {})
        return answer

    # ------------------------------------------------------------------ reading control

    def pause_reading(self) -> None:
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    def pipe_bytes(self) -> int:
        """Bytes sitting in the stdout pipe, written by the relay and not read by us."""
        buf = bytearray(4)
        fcntl.ioctl(self._out_fd, termios.FIONREAD, buf)
        return int.from_bytes(buf, "little")

    def pipe_capacity(self) -> int:
        return fcntl.fcntl(self._out_fd, F_GETPIPE_SZ)

    # ------------------------------------------------------------------ process

    def rss_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak) of the relay, in KiB."""
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    out[key] = int(value.split()[0])
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU time of the relay so far."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, quiet_s: float = 0.05, timeout: float = 10.0) -> None:
        """Return once the relay has used no CPU for `quiet_s` (it has finished starting)."""
        deadline = time.monotonic() + timeout
        used = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(quiet_s)
            used, before = self.cpu_seconds(), used
            if used == before:
                return
        raise TimeoutError(f"relay still busy {timeout} s after initialize")

    def close(self, timeout: float = 5.0) -> int | None:
        """Close stdin (the relay exits on EOF), wait, kill if needed."""
        self._reading.set()
        try:
            self._in.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout)
        self._thread.join(timeout)
        self._stderr.close()
        return code

    # ------------------------------------------------------------------ reader thread

    def _read_loop(self) -> None:
        fd = self._out_fd
        decoder = FrameDecoder(self.violations)
        read = os.read
        monotonic = time.monotonic
        reading = self._reading
        while True:
            if not reading.is_set():
                self._idle.set()
                reading.wait()
                self._idle.clear()
            try:
                data = read(fd, READ_SIZE)
            except OSError:
                data = b""
            now = monotonic()
            if not data:
                break
            self.bytes_read += len(data)
            for body in decoder.feed(data):
                self._on_body(body, now)
        self.eof_at = monotonic()
        decoder.close()
        with self._lock:
            waiters = list(self._waiters.values())
        for waiter in waiters:
            waiter.event.set()  # wake anyone waiting; answer stays None -> they see the error

    def _on_body(self, body: bytes, now: float) -> None:
        self.messages_read += 1
        try:
            msg = json.loads(body)
        except ValueError:
            self.violations.append(f"frame body is not JSON: {body[:80]!r}")
            return
        method = msg.get("method")
        if method == "chat/token":
            p = msg["params"]
            chat = self.chats.get(p["chatId"])
            if chat is None:
                self.violations.append(f"token for an unknown chat {p['chatId']!r}")
                return
            if chat.answered:
                chat.violations.append(f"chat/token seq {p['seq']} after the answer")
            if p["seq"] != chat.next_seq:
                chat.violations.append(f"seq {p['seq']} where {chat.next_seq} was expected")
            chat.next_seq = p["seq"] + 1
            text = p["text"]
            if not text:
                chat.violations.append("empty chat/token text")
            chat.parts[p["kind"]].append(text)
            chat.notifications += 1
            chat.chars += len(text)
            if chat.first_at is None:
                chat.first_at = now
            chat.last_at = now
            prog = chat.progress
            if prog and prog[-1][0] == now:
                prog[-1] = (now, chat.chars)
            else:
                prog.append((now, chat.chars))
            return
        if method is not None:
            if "id" in msg:  # a request from the relay: we implement none
                self.send({"jsonrpc": "2.0", "id": msg["id"],
                           "error": {"code": -32601, "message": f"bench client does not handle {method}"}})
            return
        msg_id = msg.get("id")
        with self._lock:
            waiter = self._waiters.pop(msg_id, None)
            chat_id = self._request_chat.pop(msg_id, None)
        if chat_id is not None:
            self.chats[chat_id].answered = True
        if waiter is None:
            self.violations.append(f"answer to an unknown id {msg_id!r}")
            return
        waiter.answer = Answer(msg, now)
        waiter.event.set()
