"""Logging: stderr (or a file), never stdout, which belongs to the protocol; and
the daemon's own warnings forwarded to the editor as `window/logMessage`.

Privacy: nothing logs prompts, answers or file contents above DEBUG, and
Authorization headers or API keys are never logged at any level.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # asyncio is not needed to configure logging, and takes long to import
    import asyncio

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Loggers of libraries that would log message bodies or request details at INFO/DEBUG.
QUIET_LIBRARIES = ("pygls", "httpx", "httpcore")


def configure(level: str | None = None, log_file: str | None = None) -> None:
    handler: logging.Handler
    if log_file:
        _create_private(log_file)
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if not isinstance(h, ClientLogHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel((level or "WARNING").upper())
    # pygls logs every message body at INFO: costly, and it would put prompts in the log.
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    # pygls logs every error answer (model not found, chat busy...) with a traceback;
    # the client was answered, and real failures are logged by the daemon itself.
    logging.getLogger("pygls.protocol.json_rpc").setLevel(logging.CRITICAL)


def _create_private(path: str) -> None:
    """Create the log file readable by its owner only (0600, like the chat store):
    even at INFO it names models, chats and errors. An existing file keeps its mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600))


class ClientLogHandler(logging.Handler):
    """Sends the daemon's warnings and errors to the editor's log, from any thread."""

    LEVELS = {logging.ERROR: 1, logging.WARNING: 2}

    def __init__(self, send: Callable[[int, str], None], loop: asyncio.AbstractEventLoop):
        super().__init__(logging.WARNING)
        self._send = send
        self._loop = loop
        self.addFilter(lambda record: record.name.startswith("ollama_chatd"))

    def emit(self, record: logging.LogRecord) -> None:
        kind = self.LEVELS[logging.ERROR if record.levelno >= logging.ERROR else logging.WARNING]
        text = f"{record.name}: {record.getMessage()}"
        try:
            self._loop.call_soon_threadsafe(self._send, kind, text)
        except RuntimeError:  # the loop is closed: the session is over
            pass


def forward_to_client(send: Callable[[int, str], None], loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """Install a ClientLogHandler sending from `loop`; return the function that removes it."""
    handler = ClientLogHandler(send, loop)
    logging.getLogger().addHandler(handler)
    return lambda: logging.getLogger().removeHandler(handler)
