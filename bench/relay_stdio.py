"""The stdio side shared by the two baseline relays (not on the per-token path).

What a plugin author would write without a framework: a thread reads LSP-framed requests
from stdin with blocking reads and hands each to the event loop; every message goes out
with one blocking `write` + `flush` of the whole frame on the event-loop thread (the way
pygls writes). Each `chat/start` runs as its own task, so several chats relay at once, and
`$/cancelRequest` cancels that task (answered with -32800), which closes its HTTP stream.
When stdout is full the loop thread blocks in `write`, and a cancel read meanwhile waits
for it: that is the behaviour the daemon's non-blocking Outbox avoids.

`initialize` is answered (after the HTTP client is created) so spawn-to-ready can be
compared with the daemon's; `shutdown`, `exit` and stdin EOF end the relay.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

_out = sys.stdout.buffer
sys.stdout = sys.stderr  # nothing but frames on the protocol stream


def send(message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    _out.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    _out.flush()


def host() -> str:
    value = os.environ.get("OLLAMA_HOST", "http://127.0.0.1:11434")
    return value if "://" in value else f"http://{value}"


def _read_messages(loop: asyncio.AbstractEventLoop, inbox: Callable[[dict[str, Any] | None], None]) -> None:
    stdin = sys.stdin.buffer
    while True:
        length = None
        while True:
            line = stdin.readline()
            if not line:
                loop.call_soon_threadsafe(inbox, None)
                return
            if line in (b"\r\n", b"\n"):
                if length is not None:
                    break
                continue
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        body = stdin.read(length)
        loop.call_soon_threadsafe(inbox, json.loads(body))


def serve(relay: Callable[[Any, Any, dict[str, Any]], Awaitable[None]], setup: Callable[[], Any]) -> int:
    """Run the relay: `relay(client, msg_id, params)` handles one chat/start; `setup()` builds
    the one HTTP client, reused by every chat (created at `initialize`, or at the first chat)."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        tasks: dict[Any, asyncio.Task] = {}
        state: dict[str, Any] = {}

        async def run_chat(msg_id: Any, params: dict[str, Any]) -> None:
            try:
                if "client" not in state:
                    state["client"] = setup()
                await relay(state["client"], msg_id, params)
            except asyncio.CancelledError:
                send({"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32800, "message": "Request cancelled."}})
            except Exception as exc:  # noqa: BLE001
                send({"jsonrpc": "2.0", "id": msg_id, "error": {"code": -32603, "message": repr(exc)}})
            finally:
                tasks.pop(msg_id, None)

        def inbox(msg: dict[str, Any] | None) -> None:
            if msg is None:
                done.set()
                return
            method = msg.get("method")
            if method == "initialize":
                if "client" not in state:
                    state["client"] = setup()
                send({"jsonrpc": "2.0", "id": msg["id"], "result": {"capabilities": {}}})
            elif method == "chat/start":
                tasks[msg["id"]] = loop.create_task(run_chat(msg["id"], msg["params"]))
            elif method == "$/cancelRequest":
                task = tasks.get(msg["params"]["id"])
                if task is not None:
                    task.cancel()
            elif method == "shutdown":
                send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
            elif method == "exit":
                done.set()
            elif "id" in msg and method is not None:
                send({"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": f"no {method}"}})

        threading.Thread(target=_read_messages, args=(loop, inbox), daemon=True).start()
        await done.wait()
        for task in list(tasks.values()):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks.values()), timeout=2)

    asyncio.run(main())
    return 0
