"""`ollama-chatd revert`: take back what the model changed in a chat's last turns.

It starts `ollama-chatd serve` on the workspace and asks `chat/revert`, so the files go back
exactly as an editor's revert would put them (on disk: no editor is open here).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ollama_chatd.cli.rpc_client import RpcError, StdioClient, initialize_params
from ollama_chatd.cli.safe_text import printable


def run_revert(args: argparse.Namespace) -> int:
    return asyncio.run(_revert(args))


async def _revert(args: argparse.Namespace) -> int:
    workspace = Path(args.workspace)  # an existing folder, resolved (checked by the parser)
    command = [sys.executable, "-m", "ollama_chatd", "serve"]
    if args.state_dir:
        command += ["--state-dir", str(args.state_dir)]
    client = await StdioClient.spawn(command, start_new_session=True)
    try:
        await client.request("initialize", initialize_params(workspace, "ollama-chatd revert"))
        client.notify("initialized", {})
        turn = args.turn if args.turn is not None else await _last_turn(client, args.chat_id)
        result = await client.request("chat/revert", {"chatId": args.chat_id, "turn": turn})
    except RpcError as error:
        print(f"error: {printable(error.message)}", file=sys.stderr)
        return 1
    except ConnectionError as error:
        print(f"error: the daemon stopped unexpectedly: {error}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    print(report(result, turn))
    return 0


async def _last_turn(client: StdioClient, chat_id: str) -> int:
    history = await client.request("chat/history", {"chatId": chat_id})
    return sum(message["role"] == "user" for message in history["messages"]) - 1


def report(result: dict[str, Any], turn: int) -> str:
    """What was restored and skipped, one file per line, safe to print on a terminal."""
    lines = [f"Reverted turn {turn} and the turns after it."]
    lines += [f"restored  {printable(path)}" for path in result["restored"]]
    lines += [f"skipped   {printable(file['path'])}: {printable(file['reason'])}" for file in result["skipped"]]
    if not result["restored"] and not result["skipped"]:
        lines.append("No file had been changed by those turns.")
    if commands := result["commandsNotUndone"]:
        lines.append("Not undone: what these commands did stays done:")
        lines += [f"  $ {printable(command)}" for command in commands]
    return "\n".join(lines)
