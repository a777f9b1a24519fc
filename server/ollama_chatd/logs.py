"""Logging setup: stderr (or a file), never stdout, which belongs to the protocol."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str = "WARNING", log_file: str | None = None) -> None:
    handler: logging.Handler
    if log_file:
        handler = logging.FileHandler(log_file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # pygls logs every message body at INFO: costly, and it would put prompts in the log.
    logging.getLogger("pygls").setLevel(max(root.level, logging.WARNING))
    # httpx logs request lines at INFO; keep them for DEBUG sessions only.
    logging.getLogger("httpx").setLevel(max(root.level, logging.WARNING))
