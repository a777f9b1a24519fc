"""Serving the JSON-RPC front-end on stdin/stdout.

pygls' own stdio loop reads through a thread pool and writes with blocking
calls on the event loop; a client that stops reading for a moment would freeze
the daemon (cancels included). Here both directions are non-blocking asyncio
pipes, and pygls keeps doing what it is good at: dispatch and LSP bookkeeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys

from ollama_chatd.config import ServeOptions
from ollama_chatd.parent import watch_parent
from ollama_chatd.rpc.dispatch import Dispatcher
from ollama_chatd.rpc.framing import BadFrame
from ollama_chatd.rpc.outbox import Outbox
from ollama_chatd.rpc.reader import open_reader, read_frames
from ollama_chatd.rpc.server import ChatServer, OpenWorkspace, create_server
from ollama_chatd.rpc.startup import Opening

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
FAIR_SHARE_S = 0.0005  # longest the reader keeps the event loop to itself
# A turn starts with short jobs in other threads (the store's reads, sizing the window)
# that the event loop awaits. While other chats keep the loop busy, a thread waits for
# the GIL as long as the switch interval (5 ms by default) at every hand-over, and 32
# chats starting together took a third of a second to reach the model server.
THREAD_HANDOVER_S = 0.0005
STDIN = 0


def serve(opening: Opening, max_message_bytes: int, options: ServeOptions, open_workspace: OpenWorkspace) -> int:
    """Run the daemon on this process's stdio; return the process exit code.

    `open_workspace` builds a session's parts (the composition root's `app.open_workspace`).
    """
    blocking = {fd: os.get_blocking(fd) for fd in (STDIN, opening.stdout_fd)}
    sys.setswitchinterval(THREAD_HANDOVER_S)
    try:
        return asyncio.run(_serve(create_server(options, open_workspace), opening, max_message_bytes, options.client_process_id))
    finally:
        for fd, was_blocking in blocking.items():
            with contextlib.suppress(OSError):
                os.set_blocking(fd, was_blocking)


async def _serve(server: ChatServer, opening: Opening, max_message_bytes: int, client_pid: int | None) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop_requested.set)
    if client_pid is not None:
        watch_parent(client_pid, server.stop_requested.set)
    outbox = server.editor.outbox = await Outbox.connect(opening.stdout_fd)
    server.protocol.set_writer(outbox)
    if opening.answered_id is not None:
        server.protocol.answered_early(opening.answered_id)
    reader = await open_reader(STDIN, opening.already_read)
    reading = asyncio.create_task(_read_loop(Dispatcher(server.protocol, outbox, lambda: server.initialized), reader, max_message_bytes))
    stopping = asyncio.create_task(server.stop_requested.wait())
    client_gone = asyncio.create_task(outbox.lost.wait())
    await asyncio.wait({reading, stopping, client_gone}, return_when=asyncio.FIRST_COMPLETED)
    exit_code = reading.result() if reading.done() else 0
    for task in (reading, stopping, client_gone):
        task.cancel()
    await server.close()
    outbox.shut()
    await outbox.flush(FLUSH_SECONDS)
    return exit_code


async def _read_loop(dispatcher: Dispatcher, reader: asyncio.StreamReader, max_message_bytes: int) -> int:
    """Dispatch every frame until end of input (0) or `exit` (its exit code).

    Handlers start in the order their messages arrived (tasks run first in, first
    out), so messages already read are dispatched together; a flood of input still
    yields to the running turns now and then.
    """
    loop = asyncio.get_running_loop()
    yielded_at = loop.time()
    async for frame in read_frames(reader, max_message_bytes):
        if isinstance(frame, BadFrame):
            logger.warning("dropping a malformed frame: %s", frame.reason)
            continue
        try:
            dispatcher.handle(frame)
        except SystemExit as exit_request:
            return int(exit_request.code or 0)
        if loop.time() - yielded_at > FAIR_SHARE_S:
            await asyncio.sleep(0)
            yielded_at = loop.time()
    logger.info("stdin closed")
    return 0
