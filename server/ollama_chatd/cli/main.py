"""`ollama-chatd`: the daemon (`serve`) and a terminal client (`chat`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ollama_chatd import __version__
from ollama_chatd.rpc.framing import DEFAULT_MAX_MESSAGE_BYTES


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ollama-chatd",
        description="Chat with a local Ollama model from any editor, over stdio JSON-RPC.",
    )
    parser.add_argument("--version", action="version", version=f"ollama-chatd {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="speak JSON-RPC (LSP framing) on stdin/stdout")
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING (default) or ERROR")
    serve.add_argument("--log-file", help="write the log here instead of stderr")
    serve.add_argument(
        "--max-message-bytes",
        type=int,
        default=DEFAULT_MAX_MESSAGE_BYTES,
        help="refuse incoming messages larger than this (default %(default)s)",
    )
    # The flags language clients add (vscode-languageclient, and others copying it):
    # stdio is the only transport, and the client's process is watched like initialize's processId.
    serve.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default and only transport)")
    serve.add_argument(
        "--clientProcessId",
        dest="client_process_id",
        type=int,
        metavar="PID",
        help="exit when this process ends, as for initialize's processId",
    )
    add_store_options(serve)
    serve.set_defaults(run=_serve)

    acp = commands.add_parser("acp", help="speak the Agent Client Protocol on stdin/stdout (Zed, Neovim, Emacs...)")
    acp.add_argument("--model", "-m", help="the default model of new sessions (default: $OLLAMA_CHATD_MODEL)")
    acp.add_argument("--log-level", help="DEBUG, INFO, WARNING (default) or ERROR")
    acp.add_argument("--log-file", help="write the log here instead of stderr")
    add_store_options(acp)
    acp.set_defaults(run=_acp)

    chat = commands.add_parser("chat", help="ask a question from the terminal")
    chat.add_argument("prompt", nargs="+", help="what to ask")
    chat.add_argument("--model", "-m", help="the model to ask (default: $OLLAMA_CHATD_MODEL)")
    add_server_options(chat)
    chat.add_argument("--workspace", "-w", default=".", help="folder the model's tools may touch (default: .)")
    chat.add_argument("--chat", dest="chat_id", help="continue this chat id (default: a new chat)")
    chat.add_argument("--system", help="system prompt for a new chat")
    chat.add_argument("--think", action="store_true", help="ask a thinking model to think first")
    chat.add_argument("--yes", "-y", action="store_true", help="allow every change the model asks to make")
    chat.add_argument("--json", action="store_true", help="print every JSON-RPC message received, one per line")
    chat.add_argument(
        "--mcp-config", type=Path, metavar="FILE",
        help='MCP servers whose tools the model may use: a JSON file with {"mcpServers": {...}} (docs/mcp.md)',
    )
    add_store_options(chat)
    chat.set_defaults(run=_chat)

    history = commands.add_parser("history", help="list this workspace's stored chats, or print one")
    history.add_argument("chat_id", nargs="?", metavar="CHAT_ID", help="print this chat")
    history.add_argument("--limit", type=int, default=50, help="how many chats to list (default 50)")
    export = commands.add_parser("export", help="print a stored chat as Markdown or JSON")
    export.add_argument("chat_id", metavar="CHAT_ID")
    export.add_argument("--format", choices=("markdown", "json"), default="markdown")
    for command, run in ((history, _history), (export, _export)):
        command.add_argument("--workspace", "-w", default=".", help="the workspace the chats belong to (default: .)")
        command.add_argument("--state-dir", type=Path, help="where chats are stored (default: the user data directory)")
        command.set_defaults(run=run)

    models = commands.add_parser("models", help="list the installed models and what they can do")
    doctor = commands.add_parser("doctor", help="check that the daemon can work with Ollama")
    for command, run in ((models, _models), (doctor, _doctor)):
        add_server_options(command)
        command.add_argument("--model", "-m", help="the default model to check (default: $OLLAMA_CHATD_MODEL)")
        command.set_defaults(run=run)
    return parser


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Which model server, and where (docs/backends.md)."""
    parser.add_argument(
        "--backend", choices=("ollama", "openai"), default="ollama",
        help="ollama (default), or openai: any OpenAI-compatible server (llama-server, vLLM, LM Studio...)",
    )  # fmt: skip
    parser.add_argument("--host", help="Ollama address (default: $OLLAMA_HOST or 127.0.0.1:11434)")
    parser.add_argument(
        "--base-url", metavar="URL",
        help="with --backend openai: the API base URL (default: $OPENAI_BASE_URL or http://127.0.0.1:8080/v1); "
        "the key is read from $OPENAI_API_KEY",
    )  # fmt: skip


def add_store_options(parser: argparse.ArgumentParser) -> None:
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--state-dir", type=Path, help="where chats are stored (default: the user data directory)")
    store.add_argument("--no-store", action="store_true", help="keep chats in memory only")


def _serve(args: argparse.Namespace) -> int:
    from ollama_chatd import logs
    from ollama_chatd.config import ServeOptions
    from ollama_chatd.rpc.startup import open_stdio

    logs.configure(args.log_level, args.log_file)
    opening = open_stdio()
    # The rest of the daemon is loaded once the editor has its `initialize` answer.
    from ollama_chatd.rpc.stdio import serve

    options = ServeOptions(args.state_dir, args.no_store, args.log_level, args.log_file, args.client_process_id)
    return serve(opening, args.max_message_bytes, options)


def _acp(args: argparse.Namespace) -> int:
    from ollama_chatd import logs

    logs.configure(args.log_level, args.log_file)
    from ollama_chatd.acp.main import run  # the ACP SDK is loaded by this command only

    return run(args)


def _history(args: argparse.Namespace) -> int:
    from ollama_chatd.cli.history import run_history

    return run_history(args)


def _export(args: argparse.Namespace) -> int:
    from ollama_chatd.cli.history import run_export

    return run_export(args)


def _models(args: argparse.Namespace) -> int:
    from ollama_chatd.cli.models import run_models

    return run_models(args)


def _doctor(args: argparse.Namespace) -> int:
    from ollama_chatd.cli.models import run_doctor

    return run_doctor(args)


def _chat(args: argparse.Namespace) -> int:
    from ollama_chatd.cli.chat import run_chat

    return run_chat(args)


if __name__ == "__main__":
    sys.exit(main())
