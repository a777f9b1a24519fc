"""`ollama-chatd`: the daemon (`serve`) and a terminal client (`chat`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ollama_chatd import __version__
from ollama_chatd.rpc.framing import DEFAULT_MAX_MESSAGE_BYTES

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE, as a shell reports `... | head -1`


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _stdout_gone()


def _run(argv: list[str] | None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as done:  # --help, --version or a usage error, already printed
        return done.code if isinstance(done.code, int) else 1
    return args.run(args)


def _stdout_gone() -> int:
    """End quietly when the reader of our output left (`ollama-chatd models | head -1`)."""
    # What is still buffered can never be written: point stdout at /dev/null so that
    # the interpreter's last flush does not complain on stderr.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_PIPE


def existing_folder(value: str) -> Path:
    """`--workspace`: a folder that exists (a typo must not become an empty workspace)."""
    path = Path(value).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value!r} is not a folder" if path.exists() else f"no folder {value!r}")
    return path.resolve()


def ollama_address(value: str) -> str:
    """`--host`: checked now, so that its error names the option."""
    from ollama_chatd.ollama.host import InvalidHost, parse_host

    try:
        parse_host(value)
    except InvalidHost as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def openai_base_url(value: str) -> str:
    """`--base-url`: checked now, so that its error names the option."""
    from ollama_chatd.openai.address import checked_base_url

    try:
        return checked_base_url(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ollama-chatd",
        description="Chat with a local Ollama model from any editor, over stdio JSON-RPC.",
    )
    parser.add_argument("--version", action="version", version=f"ollama-chatd {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = _command(
        commands, "serve", "speak JSON-RPC (LSP framing) on stdin/stdout",
        "The daemon an editor starts: JSON-RPC 2.0 with LSP framing on stdin/stdout, the log on "
        "stderr. The protocol is described in protocol/README.md.",
    )
    serve.add_argument("--log-level", help="DEBUG, INFO, WARNING (default) or ERROR")
    serve.add_argument("--log-file", help="write the log here instead of stderr (default: stderr)")
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

    acp = _command(
        commands, "acp", "speak the Agent Client Protocol on stdin/stdout (Zed, Neovim, Emacs...)",
        "The daemon for editors that speak the Agent Client Protocol (docs/acp.md).",
    )
    acp.add_argument("--model", "-m", help="the default model of new sessions (default: $OLLAMA_CHATD_MODEL)")
    acp.add_argument("--backend", default="ollama", help="the model server (default: %(default)s)")
    acp.add_argument("--log-level", help="DEBUG, INFO, WARNING (default) or ERROR")
    acp.add_argument("--log-file", help="write the log here instead of stderr (default: stderr)")
    add_command_options(acp)
    add_store_options(acp)
    acp.set_defaults(run=_acp)

    chat = _command(
        commands, "chat", "ask a question from the terminal",
        "Ask the model one question; the answer streams to stdout, everything else to stderr. "
        "The model's tools may read the workspace; each change it asks to make is shown as a "
        "diff for you to allow. Ctrl-C (or Ctrl-D at a prompt) cancels and exits with 130.",
    )
    chat.add_argument("prompt", nargs="+", help="what to ask (the words are joined with spaces)")
    chat.add_argument("--model", "-m", help="the model to ask (default: $OLLAMA_CHATD_MODEL, else the chat's model)")
    add_server_options(chat)
    chat.add_argument(
        "--workspace", "-w", type=existing_folder, default=".", help="folder the model's tools may touch (default: .)"
    )
    chat.add_argument("--chat", dest="chat_id", help="continue this chat id (default: a new chat)")
    chat.add_argument("--system", help="system prompt for a new chat (default: none)")
    chat.add_argument("--think", action="store_true", help="ask a thinking model to think first (default: off)")
    chat.add_argument(
        "--yes", "-y", action="store_true",
        help="allow every change the model asks to make; never a command (see --allow-command) (default: ask)",
    )  # fmt: skip
    chat.add_argument("--json", action="store_true", help="print every JSON-RPC message received, one per line (default: off)")
    chat.add_argument(
        "--mcp-config", type=Path, metavar="FILE",
        help='MCP servers whose tools the model may use: a JSON file with {"mcpServers": {...}} (docs/mcp.md; default: none)',
    )
    add_command_options(chat)
    add_store_options(chat)
    chat.set_defaults(run=_chat)

    history = _command(
        commands, "history", "list this workspace's stored chats, or print one",
        "Without CHAT_ID: the workspace's chats, newest first, one per line (tab-separated: id, "
        "last update in UTC, turns, model, title). With CHAT_ID: that chat, as Markdown.",
    )
    history.add_argument("chat_id", nargs="?", metavar="CHAT_ID", help="print this chat (default: list them all)")
    history.add_argument("--limit", type=int, default=50, help="how many chats to list (default: 50)")
    export = _command(
        commands, "export", "print a stored chat as Markdown or JSON",
        "Print one stored chat of the workspace, with every message, for keeping or sharing.",
    )
    export.add_argument("chat_id", metavar="CHAT_ID", help="the chat to print (`ollama-chatd history` lists them)")
    export.add_argument("--format", choices=("markdown", "json"), default="markdown", help="markdown or json (default: markdown)")
    revert = _command(
        commands, "revert", "take back what the model changed in a chat's last turns",
        "Put the files changed by turn TURN of the chat and the turns after it back as they were "
        "before TURN, and drop those turns from the chat. Files changed since the model's edit are "
        "left as they are (and listed); what commands ran is not undone. See docs/rules-and-undo.md.",
    )  # fmt: skip
    revert.add_argument("chat_id", metavar="CHAT_ID", help="the chat (`ollama-chatd history` lists them)")
    revert.add_argument(
        "turn", nargs="?", type=int, metavar="TURN",
        help="the turn to revert from, counting from 0 (default: the last turn)",
    )  # fmt: skip
    for command, run in ((history, _history), (export, _export), (revert, _revert)):
        command.add_argument(
            "--workspace", "-w", type=existing_folder, default=".", help="the workspace the chats belong to (default: .)"
        )
        command.add_argument("--state-dir", type=Path, help="where chats are stored (default: the user data directory)")
        command.set_defaults(run=run)

    models = _command(
        commands, "models", "list the installed models and what they can do",
        "The models installed in Ollama: size, parameters, quantization, context length and "
        "capabilities (a model without `tools` cannot read or edit the workspace).",
    )
    doctor = _command(
        commands, "doctor", "check that the daemon can work with Ollama",
        "One line per check (address, reachability, version, models, default model), then a "
        "verdict; exits with 1 when something must be fixed.",
    )
    doctor.add_argument("--model", "-m", help="the default model to check (default: $OLLAMA_CHATD_MODEL)")
    for command, run in ((models, _models), (doctor, _doctor)):
        add_server_options(command)
        command.set_defaults(run=run)
    return parser


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Which model server, and where (docs/backends.md)."""
    parser.add_argument(
        "--backend", choices=("ollama", "openai"),
        help="ollama, or openai: any OpenAI-compatible server (llama-server, vLLM, LM Studio...) "
        "(default: $OLLAMA_CHATD_BACKEND, else ollama)",
    )  # fmt: skip
    parser.add_argument("--host", type=ollama_address, help="Ollama address (default: $OLLAMA_HOST or 127.0.0.1:11434)")
    parser.add_argument(
        "--base-url", metavar="URL", type=openai_base_url,
        help="with --backend openai: the API base URL; the key is read from $OPENAI_API_KEY "
        "(default: $OPENAI_BASE_URL or http://127.0.0.1:8080/v1)",
    )  # fmt: skip


def add_command_options(parser: argparse.ArgumentParser) -> None:
    """What the model's `run_command` may do (docs/security.md)."""
    parser.add_argument(
        "--allow-command", action="append", dest="allowed_commands", metavar="PREFIX",
        help="run commands that start with these words (e.g. 'pytest' or 'npm test') without asking, unless "
        "they contain shell syntax such as ; | && $( > ; repeat it for several (default: ask for every command)",
    )  # fmt: skip
    parser.add_argument(
        "--command-sandbox", action="store_true",
        help="run commands in a bubblewrap sandbox: no network, read-only outside the workspace (default: off)",
    )  # fmt: skip


def _command(commands, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand: `summary` for `ollama-chatd --help`, `description` for its own --help."""
    return commands.add_parser(name, help=summary, description=description)


def add_store_options(parser: argparse.ArgumentParser) -> None:
    store = parser.add_mutually_exclusive_group()
    store.add_argument("--state-dir", type=Path, help="where chats are stored (default: the user data directory)")
    store.add_argument("--no-store", action="store_true", help="keep chats in memory only (default: store them)")


def _serve(args: argparse.Namespace) -> int:
    from ollama_chatd import footprint, logs
    from ollama_chatd.config import ServeOptions
    from ollama_chatd.rpc.startup import open_stdio

    footprint.skip_unused_imports()
    logs.configure(args.log_level, args.log_file)
    opening = open_stdio()
    # The rest of the daemon is loaded once the editor has its `initialize` answer.
    with footprint.without_generated_source():
        footprint.import_unregistered(footprint.ATTRS_HEAVY)
        from ollama_chatd.rpc.stdio import serve
    from ollama_chatd.app import open_workspace

    options = ServeOptions(args.state_dir, args.no_store, args.log_level, args.log_file, args.client_process_id)
    return serve(opening, args.max_message_bytes, options, open_workspace)


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


def _revert(args: argparse.Namespace) -> int:
    from ollama_chatd.cli.revert import run_revert

    return run_revert(args)


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
