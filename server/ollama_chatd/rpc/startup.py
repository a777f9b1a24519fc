"""The daemon's first moments on stdio, before the rest of it is loaded.

An editor sends `initialize` and waits for its answer before anything else, and
loading pygls takes about half a second (lsprotocol alone defines a thousand
classes). So stdout is claimed for the protocol, the first message is read (in
blocking mode: nothing else can happen yet) and, when it is an `initialize`
whose answer is sure to be a success, answered at once. pygls later handles the
same message with its answer suppressed, setting the session up as if it had
answered. Anything else (another first message, a broken frame, params to
refuse, a `caBundle` to load) is left to pygls, which answers it the same way,
only later.
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import signal
import sys
from typing import Any

import attrs

from ollama_chatd.rpc import initialize
from ollama_chatd.rpc.framing import HEADERS_END, MAX_HEADER_LINE, content_length, frame_json
from ollama_chatd.structuring import is_message_id

STDOUT = 1
FIRST_FRAME_LIMIT = 1024 * 1024  # an `initialize` is a few KiB; past this, the general path reads it
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")
logger = logging.getLogger(__name__)


@attrs.frozen
class Opening:
    stdout_fd: int  # the protocol's stdout
    already_read: bytes  # from stdin, not handled yet: the first message is among it
    answered_id: int | str | None  # the `initialize` answered here, that pygls must not answer again


def open_stdio(stdin_fd: int = 0) -> Opening:
    _require_open(stdin_fd)
    stdout_fd = claim_stdout()
    for sig in (signal.SIGTERM, signal.SIGINT):  # until the event loop takes them over
        signal.signal(sig, _stop)
    logger.debug("waiting for the client's first message")  # from here a stop ends the daemon cleanly
    already_read, body = _read_first_frame(stdin_fd)
    request = _parse(body)
    answer = early_answer(request)
    if answer is None:
        return Opening(stdout_fd, already_read, None)
    _write_all(stdout_fd, answer)
    return Opening(stdout_fd, already_read, request["id"])


def _require_open(stdin_fd: int) -> None:
    for fd, name in ((stdin_fd, "stdin"), (STDOUT, "stdout")):
        try:
            os.fstat(fd)
        except OSError:
            raise SystemExit(
                f"ollama-chatd serve: {name} is closed; run it with pipes on stdin and stdout, as an editor does"
            ) from None


def claim_stdout() -> int:
    """Keep the real stdout for the protocol; send anything else printed (by us or
    a library) to stderr. Returns the protocol's file descriptor."""
    protocol_out = os.dup(STDOUT)
    os.dup2(sys.stderr.fileno(), STDOUT)
    sys.stdout = sys.stderr
    return protocol_out


def _stop(signum: int, _frame: object) -> None:
    raise SystemExit(0)  # what a stop does once serving; no chat has started yet


def _read_first_frame(fd: int) -> tuple[bytes, bytes | None]:
    """What was read from `fd`, up to the end of the first frame, and that frame's
    body; no body when the frame is not in the plain form (the general path reads
    and reports it) or input ended first."""
    data = b""
    while True:
        try:
            body = _body_span(data)
        except ValueError:
            return data, None
        if body is not None:
            return data, data[body]
        select.select([fd], [], [])  # stdin may have been left non-blocking
        try:
            chunk = os.read(fd, 64 * 1024)
        except BlockingIOError:
            continue
        if not chunk:
            return data, None
        data += chunk


def _body_span(data: bytes) -> slice | None:
    """Where the body of the frame `data` starts with lies; None until it is all there.

    Raises ValueError when the frame is not in the plain form: CRLF headers, one
    valid Content-Length, a body of at most FIRST_FRAME_LIMIT bytes.
    """
    blank_line = _BLANK_LINE.search(data)
    if blank_line is None:
        if len(data) > MAX_HEADER_LINE:
            raise ValueError("headers too long")
        return None
    if blank_line.group() != HEADERS_END:
        raise ValueError("not CRLF headers")
    lengths = [length for line in data[: blank_line.start()].split(b"\r\n") if (length := content_length(line)) is not None]
    if len(lengths) != 1 or not isinstance(length := lengths[0], int) or length > FIRST_FRAME_LIMIT:
        raise ValueError("no single valid Content-Length")
    body = slice(blank_line.end(), blank_line.end() + length)
    return body if len(data) >= body.stop else None


def _parse(body: bytes | None) -> Any:
    try:
        return None if body is None else json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def early_answer(message: Any) -> bytes | None:
    """The framed answer to `message` if it is an `initialize` sure to succeed."""
    if not (
        isinstance(message, dict)
        and message.get("jsonrpc") == "2.0"
        and message.get("method") == "initialize"
        and is_message_id(message.get("id"))
    ):
        return None
    try:
        params = initialize.read_params(message.get("params"))
    except initialize.ParamsError:
        return None
    if not initialize.answerable_at_once(params):
        return None
    result = initialize.result(initialize.position_encoding(params.capabilities))
    return frame_json({"jsonrpc": "2.0", "id": message["id"], "result": result})


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        select.select([], [fd], [])
        try:
            view = view[os.write(fd, view):]
        except BlockingIOError:
            continue
        except BrokenPipeError:
            return  # the client is gone: the event loop sees it too, and ends the session
