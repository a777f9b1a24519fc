"""`ollama-chatd models` and `ollama-chatd doctor`: what Ollama has, and whether
the daemon can work with it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

from ollama_chatd import __version__, backends, llm
from ollama_chatd.app import build_backend
from ollama_chatd.cli.advice import START_OLLAMA
from ollama_chatd.config import MODEL_ENV, InitializationOptions, Settings


def run_models(args: argparse.Namespace) -> int:
    return asyncio.run(_models(_settings(args)))


def run_doctor(args: argparse.Namespace) -> int:
    return asyncio.run(_doctor(_settings(args)))


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.resolve(InitializationOptions(ollama_host=args.host, model=getattr(args, "model", None)))


def _client(settings: Settings) -> contextlib.aclosing[llm.ChatBackend]:
    return contextlib.aclosing(build_backend(settings))


async def _models(settings: Settings) -> int:
    async with _client(settings) as client:
        try:
            models = await client.installed_models()
        except llm.BackendUnreachable as error:
            print(f"error: {error}; {START_OLLAMA}", file=sys.stderr)
            return 1
        except llm.BackendError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    print(format_table(models))
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
    report = _Report()
    report.line(True, f"ollama-chatd {__version__}, Python {sys.version.split()[0]}")
    where = backends.address(settings)
    report.line(True, f"Ollama address: {where.url} (from {_source(where.source)})")
    async with _client(settings) as client:
        try:
            version = await client.version()
        except llm.BackendError as error:
            report.line(False, f"Ollama is not reachable: {error}", START_OLLAMA)
            return report.verdict()
        report.line(True, f"Ollama {version} is reachable")
        try:
            models = await client.installed_models()
        except llm.BackendError as error:
            report.line(False, f"cannot list the models: {error}")
            return report.verdict()
    _check_models(report, models)
    _check_default_model(report, models, settings.default_model)
    return report.verdict()


def _check_models(report: _Report, models: list[llm.ModelInfo]) -> None:
    if not models:
        report.line(False, "no model is installed", "download one, e.g. `ollama pull llama3.2`")
        return
    report.line(True, f"{len(models)} models installed:")
    for model in sorted(models, key=lambda m: m.name):
        abilities = ", ".join(sorted(model.capabilities)) if model.capabilities is not None else "abilities unknown"
        print(f"      {model.name}: {abilities}")
    if not any(model.can("tools") for model in models):
        report.line(None, "no installed model can use tools, so chats cannot read or edit the workspace")


def _check_default_model(report: _Report, models: list[llm.ModelInfo], default: str | None) -> None:
    if not default:
        report.line(None, "no default model", f"pass --model to `chat`, or set {MODEL_ENV}")
        return
    found = next((m for m in models if m.name in (default, f"{default}:latest")), None)
    if found is None:
        report.line(False, f"the default model {default} is not installed", f"`ollama pull {default}`")
    elif not found.can("tools"):
        report.line(None, f"the default model {default} is installed but cannot use tools")
    else:
        report.line(True, f"the default model {default} is installed and can use tools")


def _source(source: str) -> str:
    return {"default": "the default", "OLLAMA_HOST": "OLLAMA_HOST"}.get(source, source)


class _Report:
    """One line per check: ok, note (worth knowing) or FAIL (a problem); then a verdict."""

    def __init__(self) -> None:
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
        print("Ready: ollama-chatd can chat with this Ollama.")
        return 0
