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
import threading

from ollama_chatd.rpc.dispatch import Dispatcher
from ollama_chatd.rpc.framing import MAX_HEADER_LINE, BadFrame, read_frames
from ollama_chatd.rpc.outbox import Outbox
from ollama_chatd.rpc.server import ChatServer, ServeOptions, create_server

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
FAIR_SHARE_S = 0.0005  # longest the reader keeps the event loop to itself


def serve(max_message_bytes: int, options: ServeOptions) -> int:
    """Run the daemon on this process's stdio; return the process exit code."""
    # Only framed messages may reach the client: keep the real stdout for the
    # protocol and send anything else printed (by us or a library) to stderr.
    protocol_out = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    blocking = {fd: os.get_blocking(fd) for fd in (0, protocol_out)}
    try:
        return asyncio.run(_serve(create_server(options), 0, protocol_out, max_message_bytes))
    finally:
        for fd, was_blocking in blocking.items():
            with contextlib.suppress(OSError):
                os.set_blocking(fd, was_blocking)


async def _serve(server: ChatServer, stdin_fd: int, stdout_fd: int, max_message_bytes: int) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.stop_requested.set)
    outbox = server.outbox = await Outbox.connect(stdout_fd)
    server.protocol.set_writer(outbox)
    reader = await _open_reader(stdin_fd)
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


async def _open_reader(fd: int) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_HEADER_LINE)
    pipe = os.fdopen(fd, "rb", buffering=0, closefd=False)
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    except ValueError:
        # A regular file (`serve < session.jsonrpc`) cannot be a pipe transport.
        threading.Thread(target=_pump_file, args=(pipe, reader, loop), daemon=True).start()
    return reader


def _pump_file(file, reader: asyncio.StreamReader, loop: asyncio.AbstractEventLoop) -> None:
    while chunk := file.read(64 * 1024):
        loop.call_soon_threadsafe(reader.feed_data, chunk)
    loop.call_soon_threadsafe(reader.feed_eof)
