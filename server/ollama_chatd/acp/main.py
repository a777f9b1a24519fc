"""`ollama-chatd acp`: serve one ACP client on stdin/stdout until it closes them."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from acp import run_agent

from ollama_chatd.acp.agent import ChatAgent
from ollama_chatd.acp.projects import Projects
from ollama_chatd.app import build_backend, store_location
from ollama_chatd.config import CommandPrefixes, InitializationOptions, OptionError, ServeOptions, Settings
from ollama_chatd.rpc.startup import claim_stdout

logger = logging.getLogger(__name__)

# The SDK's own limit: a prompt may embed files and images.
MAX_LINE_BYTES = 50 * 1024 * 1024


def run(args: argparse.Namespace) -> int:
    settings = Settings.resolve(InitializationOptions(
        model=args.model,
        backend=args.backend,
        allowed_commands=CommandPrefixes(tuple(args.allowed_commands or ())),
        command_sandbox=args.command_sandbox,
    ))  # fmt: skip
    state_dir = store_location(ServeOptions(args.state_dir, args.no_store), settings)
    try:
        backend = build_backend(settings)
    except OptionError as error:
        print(f"ollama-chatd acp: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(ChatAgent(Projects(backend, state_dir), settings), claim_stdout()))
    except _NotAPipe as error:
        print(f"ollama-chatd acp: {error}", file=sys.stderr)
        return 2
    return 0


async def _serve(agent: ChatAgent, protocol_out: int) -> None:
    logging.getLogger().addFilter(_not_client_gone)
    try:
        writer, reader = await _stdio(protocol_out)
        await run_agent(agent, writer, reader)
    except ConnectionError:  # the SDK's last write found the client gone: how a session ends
        logger.info("the client closed the connection")
    finally:
        await agent.close()


def _not_client_gone(record: logging.LogRecord) -> bool:
    """Keep the SDK from logging a traceback (on the root logger) for each write that
    found the client gone, as when an editor closes mid-answer."""
    return not (record.exc_info and isinstance(record.exc_info[1], ConnectionError))


class _NotAPipe(Exception):
    def __init__(self) -> None:
        super().__init__(
            "stdin and stdout must be pipes (an editor starts `ollama-chatd acp` with pipes); "
            "to try it by hand, pipe into it: `cat requests.jsonl | ollama-chatd acp | cat`"
        )


async def _stdio(protocol_out: int) -> tuple[asyncio.StreamWriter, asyncio.StreamReader]:
    """Streams on stdin and on the protocol's stdout (the real one: `claim_stdout`
    sent every other write on fd 1 to stderr, so nothing else can reach the client)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_LINE_BYTES)
    try:  # asyncio cannot wait on a regular file
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(protocol_out, "wb", buffering=0)
        )
    except ValueError:
        raise _NotAPipe() from None
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except ValueError:
        transport.close()
        raise _NotAPipe() from None
    return asyncio.StreamWriter(transport, protocol, reader, loop), reader
