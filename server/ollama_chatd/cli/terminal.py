"""The terminal side of `ollama-chatd chat`: ending a question early, and reading
the user's answer to a prompt without blocking the event loop."""

from __future__ import annotations

import asyncio
import os
import sys

from ollama_chatd.cli.rpc_client import StdioClient


class Stop:
    """Ending the question early: Ctrl-C, Ctrl-D at a prompt, or stdout closed.

    The first asks the daemon to cancel (it answers at once, with what streamed); a
    second Ctrl-C gives up waiting for that answer.
    """

    def __init__(self, client: StdioClient):
        self._client = client
        self._request_id: int | None = None
        self.cancelled = False
        self.output_closed = False
        self.abandoned: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def watch(self, request_id: int) -> None:
        """The request to cancel; at once if the question was already ended."""
        self._request_id = request_id
        if self.cancelled:
            self._client.notify("$/cancelRequest", {"id": request_id})

    def cancel(self) -> None:
        if self.cancelled:
            if not self.abandoned.done():
                self.abandoned.set_result(None)
            return
        self.cancelled = True
        if self._request_id is not None:
            self._client.notify("$/cancelRequest", {"id": self._request_id})

    def close_output(self) -> None:
        """stdout's reader left: nobody wants the rest of the answer."""
        if not self.output_closed:
            self.output_closed = True
            self.cancel()


async def read_line(prompt: str) -> str | None:
    """A line typed on the terminal, None at end of input (Ctrl-D).

    Read by the event loop when the terminal has a line, not by a thread blocked in
    input(): a thread would keep the program waiting for Enter after a Ctrl-C.
    """
    sys.stderr.write(prompt)
    sys.stderr.flush()
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    line: asyncio.Future[bytes] = loop.create_future()

    def readable() -> None:
        if not line.done():
            line.set_result(os.read(fd, 4096))

    loop.add_reader(fd, readable)
    try:
        data = await line
    finally:
        loop.remove_reader(fd)
    return data.decode(errors="replace") if data else None
