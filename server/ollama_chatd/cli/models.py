"""`ollama-chatd models` and `ollama-chatd doctor`: what the model server (Ollama, or an
OpenAI-compatible one) has, and whether the daemon can work with it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from ollama_chatd import __version__, backends, llm
from ollama_chatd.app import build_backend
from ollama_chatd.cli.advice import START_SERVER, unreachable
from ollama_chatd.config import MODEL_ENV, InitializationOptions, Settings


def run_models(args: argparse.Namespace) -> int:
    return asyncio.run(_models(_settings(args)))


def run_doctor(args: argparse.Namespace) -> int:
    return asyncio.run(_doctor(_settings(args)))


def _settings(args: argparse.Namespace) -> Settings:
    options = InitializationOptions(
        backend=args.backend, ollama_host=args.host, base_url=args.base_url, model=getattr(args, "model", None)
    )
    return Settings.resolve(options)


# How the command line names each server, and what adds a model to it.
_SERVER_NAMES = {"ollama": "Ollama", "openai": "the OpenAI-compatible server"}
_ADD_A_MODEL = {"ollama": "`ollama pull {model}`", "openai": "start the server with {model}, or choose one it serves"}
_SOURCES = {
    "default": "the default",
    "initializationOptions.ollamaHost": "--host",
    "initializationOptions.baseUrl": "--base-url",
}


def _where(settings: Settings) -> str:
    """Which backend and address, for a person: `openai at http://... (from --base-url)`."""
    where = backends.address(settings)
    return f"{settings.backend} at {where.url} (from {_SOURCES.get(where.source, where.source)})"


def _client(settings: Settings) -> contextlib.aclosing[llm.ChatBackend]:
    return contextlib.aclosing(build_backend(settings))


async def _models(settings: Settings) -> int:
    async with _client(settings) as client:
        try:
            models = await client.installed_models()
        except llm.BackendUnreachable as error:
            print(f"error: {unreachable(error, settings.backend)}", file=sys.stderr)
            return 1
        except llm.BackendError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(format_table(models), flush=True)  # a reader gone (`| head -1`) ends it here, quietly
    print(f"— models of {_where(settings)}", file=sys.stderr)  # stdout keeps only the table
    return 0


def format_table(models: list[llm.ModelInfo]) -> str:
    rows = [("NAME", "SIZE", "PARAMETERS", "QUANTIZATION", "CONTEXT", "CAPABILITIES")]
    for model in sorted(models, key=lambda m: m.name):
        rows.append((
            model.name,
            _gigabytes(model.size_bytes),
            model.parameter_size or "?",
            model.quantization or "?",
            str(model.context_length or "?"),
            ", ".join(sorted(model.capabilities)) if model.capabilities is not None else "unknown",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows)


def _gigabytes(size: int | None) -> str:
    return "?" if size is None else f"{size / 1e9:.1f} GB"


async def _doctor(settings: Settings) -> int:
    server = _SERVER_NAMES[settings.backend]
    report = _Report(server)
    report.line(True, f"ollama-chatd {__version__}, Python {sys.version.split()[0]}")
    report.line(True, f"backend: {_where(settings)}")
    _check_search_engine(report)
    async with _client(settings) as client:
        try:
            version = await client.version()
        except llm.BackendUnreachable as error:
            reason = f"{server} is not reachable at {error.address} ({error.reason})"
            report.line(False, reason, START_SERVER[settings.backend])
            return report.verdict()
        except llm.BackendError as error:
            report.line(False, f"{server} answered, with an error: {error}")
            return report.verdict()
        report.line(True, f"{server} is reachable ({version})")
        try:
            models = await client.installed_models()
        except llm.BackendError as error:
            report.line(False, f"cannot list the models: {error}")
            return report.verdict()
    _check_models(report, models, settings.backend)
    _check_default_model(report, models, settings.default_model, settings.backend)
    return report.verdict()


def _check_search_engine(report: _Report) -> None:
    from ollama_chatd.tools import ripgrep

    rg = ripgrep.binary()
    if rg is None:
        report.line(None, "ripgrep (rg) is not installed: searches walk the workspace in Python, slow on large "
                    "repositories", "install the daemon with its dependencies (`pip install .`), which include ripgrep")
    else:
        report.line(True, f"searches run on ripgrep: {rg}")


def _check_models(report: _Report, models: list[llm.ModelInfo], backend: str) -> None:
    if not models:
        report.line(False, "no model is installed", _ADD_A_MODEL[backend].format(model="one, e.g. llama3.2"))
        return
    report.line(True, f"{len(models)} models installed:")
    for model in sorted(models, key=lambda m: m.name):
        abilities = ", ".join(sorted(model.capabilities)) if model.capabilities is not None else "abilities unknown"
        print(f"      {model.name}: {abilities}")
    if not any(model.can("tools") for model in models):
        report.line(None, "no installed model can use tools, so chats cannot read or edit the workspace")


def _check_default_model(report: _Report, models: list[llm.ModelInfo], default: str | None, backend: str) -> None:
    if not default:
        report.line(None, "no default model", f"pass --model to `chat`, or set {MODEL_ENV}")
        return
    found = next((m for m in models if m.name in (default, f"{default}:latest")), None)
    if found is None:
        report.line(False, f"the default model {default} is not installed", _ADD_A_MODEL[backend].format(model=default))
    elif not found.can("tools"):
        report.line(None, f"the default model {default} is installed but cannot use tools")
    else:
        report.line(True, f"the default model {default} is installed and can use tools")


class _Report:
    """One line per check: ok, note (worth knowing) or FAIL (a problem); then a verdict."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._problems: list[str] = []

    def line(self, ok: bool | None, text: str, fix: str = "") -> None:
        mark = {True: "ok", None: "note", False: "FAIL"}[ok]
        print(f"[{mark:>4}] {text}{f' — {fix}' if fix else ''}")
        if ok is False:
            self._problems.append(text)

    def verdict(self) -> int:
        if self._problems:
            print(f"Not ready: {self._problems[0]}.")
            return 1
        print(f"Ready: ollama-chatd can chat with {self.server}.")
        return 0
