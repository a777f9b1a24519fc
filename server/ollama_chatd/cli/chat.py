"""`ollama-chatd chat`: one question from the terminal, answered as it streams."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from ollama_chatd.cli.advice import in_cli_terms
from ollama_chatd.cli.command_view import CommandOutputView, command_ending
from ollama_chatd.cli.rpc_client import RpcError, StdioClient, initialize_params
from ollama_chatd.cli.safe_text import change_size, printable
from ollama_chatd.cli.terminal import Stop, read_line
from ollama_chatd.config import chosen_backend
from ollama_chatd.mcp.config import read_config_file

EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141
REQUEST_CANCELLED = -32800


def run_chat(args: argparse.Namespace) -> int:
    return asyncio.run(_chat(args))


async def _chat(args: argparse.Namespace) -> int:
    workspace = Path(args.workspace)  # an existing folder, resolved (checked by the parser)
    try:
        mcp_servers = read_config_file(args.mcp_config) if args.mcp_config else None
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    # Its own session: Ctrl-C in the terminal is ours to turn into a cancel, not the daemon's.
    client = await StdioClient.spawn(_serve_command(args), start_new_session=True)
    stop = Stop(client)
    view = JsonView(stop) if args.json else TerminalView(stop)
    client.on_message = view.message
    client.on_notification("chat/token", view.token)
    client.on_notification("chat/status", view.status)
    client.on_notification("chat/toolCall", view.tool_call)
    client.on_request("chat/requestPermission", Permission(args.yes, view, stop, workspace).decide)
    try:
        try:
            await client.request("initialize", _initialize_params(args, workspace, mcp_servers))
        except RpcError as error:
            view.error(in_cli_terms(error.message, error.data, chosen_backend(args.backend, os.environ)))
            return 1
        client.notify("initialized", {})
        return await _ask(client, view, stop, _start_params(args), chosen_backend(args.backend, os.environ))
    except ConnectionError as error:
        view.error(f"the daemon stopped unexpectedly: {error}")
        return 1
    finally:
        view.close()
        await client.close(timeout=0.5 if stop.abandoned.done() else 5.0)


async def _ask(
    client: StdioClient, view: TerminalView | JsonView, stop: Stop, params: dict[str, Any], backend: str
) -> int:
    msg_id, reply = client.send_request("chat/start", params)
    stop.watch(msg_id)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, stop.cancel)
    view.waiting(params.get("model"))
    try:
        await asyncio.wait([reply, stop.abandoned], return_when=asyncio.FIRST_COMPLETED)
        if not reply.done():  # a second Ctrl-C: the daemon is not answering the cancel
            view.interrupted()
            return EXIT_INTERRUPTED
        result = reply.result()
    except RpcError as error:
        if error.code != REQUEST_CANCELLED:
            view.error(in_cli_terms(error.message, error.data, backend))
            return 1
        if stop.output_closed:
            return EXIT_CLOSED_PIPE
        view.interrupted()
        return EXIT_INTERRUPTED
    finally:
        loop.remove_signal_handler(signal.SIGINT)  # closing: Ctrl-C ends the program (main exits 130)
        client.on_message = None  # the conversation is over; shutdown is not news
    view.finished(result)
    return EXIT_CLOSED_PIPE if stop.output_closed else 0


def _serve_command(args: argparse.Namespace) -> list[str]:
    command = [sys.executable, "-m", "ollama_chatd", "serve"]
    if args.no_store:
        command.append("--no-store")
    elif args.state_dir:
        command += ["--state-dir", str(args.state_dir)]
    return command


def _initialize_params(args: argparse.Namespace, workspace: Path, mcp_servers: dict[str, Any] | None) -> dict[str, Any]:
    given = (
        ("backend", args.backend),
        ("model", args.model),
        ("ollamaHost", args.host),
        ("baseUrl", args.base_url),
        ("mcpServers", mcp_servers),
        ("allowedCommands", args.allowed_commands),
        ("commandSandbox", args.command_sandbox),
    )
    return initialize_params(workspace, "ollama-chatd chat", {key: value for key, value in given if value})


def _start_params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {
        "chatId": args.chat_id or f"cli-{uuid.uuid4().hex[:12]}",
        "prompt": " ".join(args.prompt),
    }
    if args.model:
        params["model"] = args.model
    if args.system:
        params["system"] = args.system
    if args.think:
        params["think"] = True
    return params


def _target(arguments: dict[str, Any]) -> str:
    """What a tool call is about, in a few words: its path, pattern or glob."""
    for key in ("path", "pattern", "glob", "command"):
        if isinstance(arguments.get(key), str):
            return arguments[key]
    return ""


class Permission:
    """Answers `chat/requestPermission` on the terminal (or with --yes)."""

    ANSWERS = {"y": "allow", "yes": "allow", "a": "allow_always", "always": "allow_always"}

    def __init__(self, allow_all: bool, view: TerminalView | JsonView, stop: Stop, workspace: Path):
        self._allow_all = allow_all
        self._workspace = workspace
        self._view = view
        self._stop = stop

    async def decide(self, params: dict[str, Any]) -> dict[str, str]:
        if params["name"] == "run_command":
            return await self._decide_command(params["arguments"]["command"])
        if self._allow_all:
            return {"decision": "allow"}
        if not sys.stdin.isatty():
            self._view.notice(f"{params['title']}: refused (stdin is not a terminal; pass --yes to allow changes)")
            return {"decision": "deny"}
        # An MCP tool's call changes no file: what it will do is in its arguments.
        self._view.show_change(params["title"], params["diff"] or json.dumps(params["arguments"], indent=2))
        size = f"({change_size(params['diff'])}) " if params["diff"] else ""
        return await self._ask(f"{size}Allow? [y]es / [a]lways / [N]o: ")

    async def _decide_command(self, command: str) -> dict[str, str]:
        """--yes never covers a command: only --allow-command (the daemon does not ask then)."""
        if self._allow_all or not sys.stdin.isatty():
            why = "--yes allows changes, not commands" if self._allow_all else "stdin is not a terminal"
            self._view.notice(f"run_command {command}: refused ({why}; pass --allow-command PREFIX to allow it)")
            return {"decision": "deny"}
        self._view.show_change(f"Run in {self._workspace}:", f"$ {command}")
        return await self._ask("Allow? [y]es / [a]lways (this exact command) / [N]o: ")

    async def _ask(self, question: str) -> dict[str, str]:
        answer = await read_line(question)
        if answer is None:  # Ctrl-D: as Ctrl-C, the question ends here
            self._stop.cancel()
            return {"decision": "deny"}
        return {"decision": self.ANSWERS.get(answer.strip().lower(), "deny")}


class TerminalView:
    """Answer on stdout as it streams; thinking, spinner and summary on stderr."""

    SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, stop: Stop) -> None:
        self._stop = stop
        self._started = time.monotonic()
        self._fancy = sys.stderr.isatty()
        self._spinner: asyncio.Task[None] | None = None
        self._waiting_for = "waiting for the model"
        self._asked_ollama = False
        self._last_kind = "content"
        self._wrote_content = False
        self._command_output = CommandOutputView()

    def message(self, message: dict[str, Any]) -> None:
        pass

    def waiting(self, model: str | None) -> None:
        self._started = time.monotonic()
        self._asked_ollama = False
        self._start_spinner()

    def _start_spinner(self) -> None:
        if self._fancy and self._spinner is None:
            self._spinner = asyncio.create_task(self._spin())

    async def _spin(self) -> None:
        while True:
            frame = self.SPINNER[int(time.monotonic() * 10) % len(self.SPINNER)]
            sys.stderr.write(f"\r\x1b[K{frame} {self._waiting_for}…")
            sys.stderr.flush()
            await asyncio.sleep(0.1)

    def status(self, params: dict[str, Any]) -> None:
        state, message = params.get("state"), params.get("message") or str(params.get("state"))
        if state == "waiting":
            self._waiting_for = message
            if not self._asked_ollama:  # the footer times Ollama's answer, not the daemon's start
                self._started, self._asked_ollama = time.monotonic(), True
        elif state != "streaming":  # retrying, truncated, no_tools, and states yet unknown
            self._end_line()
            self._note(message)

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.cancel()
            self._spinner = None
            sys.stderr.write("\r\x1b[K")

    def token(self, params: dict[str, Any]) -> None:
        self._stop_spinner()
        text = params["text"]
        if params["kind"] == "thinking":
            sys.stderr.write(f"\x1b[2m{printable(text)}\x1b[0m" if self._fancy else printable(text))
            sys.stderr.flush()
        else:
            if self._last_kind == "thinking":
                sys.stderr.write("\n")
            self._out(printable(text))
            self._wrote_content = True
        self._last_kind = params["kind"]

    def tool_call(self, params: dict[str, Any]) -> None:
        status = params["status"]
        if status in ("pending", "awaiting_permission"):
            return
        self._end_line()
        if "outputLength" in params:  # a command's output so far
            self._command_output.show(params)
            return
        self._command_output.end_line()
        target = _target(params.get("arguments") or {})
        detail = params.get("error") or command_ending(params)
        self._note(f"{params['name']} {target} {status}{': ' + detail if detail else ''}")

    def show_change(self, title: str, diff: str) -> None:
        self._end_line()
        sys.stderr.write(f"{printable(title)}\n{printable(diff)}\n")

    def notice(self, text: str) -> None:
        self._end_line()
        self._note(text)

    def finished(self, result: dict[str, Any]) -> None:
        self._end_line()
        usage = result["usage"]
        seconds = time.monotonic() - self._started
        note = "" if result["stopReason"] == "end_turn" else f", stopped: {result['stopReason']}"
        self._note(f"{usage['completionTokens']} tokens in {seconds:.1f} s ({result['chatId']}{note})")

    def interrupted(self) -> None:
        self._end_line()
        self._note("cancelled")

    def error(self, message: str) -> None:
        self._end_line()
        sys.stderr.write(f"error: {printable(message)}\n")

    def close(self) -> None:
        self._stop_spinner()

    def _end_line(self) -> None:
        self._stop_spinner()
        if self._wrote_content:
            self._out("\n")
            self._wrote_content = False

    def _out(self, text: str) -> None:
        if self._stop.output_closed:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except BrokenPipeError:
            self._stop.close_output()

    def _note(self, text: str) -> None:
        text = printable(text)
        sys.stderr.write(f"\x1b[2m— {text}\x1b[0m\n" if self._fancy else f"— {text}\n")


class JsonView:
    """`--json`: every message received, one JSON document per line, for scripts."""

    def __init__(self, stop: Stop) -> None:
        self._stop = stop

    def message(self, message: dict[str, Any]) -> None:
        if self._stop.output_closed:
            return
        try:
            sys.stdout.write(json.dumps(message, ensure_ascii=False) + "\n")
            sys.stdout.flush()
        except BrokenPipeError:
            self._stop.close_output()

    def token(self, params: dict[str, Any]) -> None:
        pass

    def status(self, params: dict[str, Any]) -> None:
        pass

    def tool_call(self, params: dict[str, Any]) -> None:
        pass

    def show_change(self, title: str, diff: str) -> None:
        pass

    def notice(self, text: str) -> None:
        sys.stderr.write(f"{printable(text)}\n")

    def waiting(self, model: str | None) -> None:
        pass

    def finished(self, result: dict[str, Any]) -> None:
        pass

    def interrupted(self) -> None:
        pass

    def error(self, message: str) -> None:
        sys.stderr.write(f"error: {printable(message)}\n")

    def close(self) -> None:
        pass
