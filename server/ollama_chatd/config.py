"""The daemon's settings: `initializationOptions`, with environment fallbacks.

Backend-neutral: where the chosen model server is (its address, its own
environment variables) is the backend's business, read in `backends.py`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NewType

import attrs
import cattrs

from ollama_chatd.mcp.config import ServerConfig, parse_mcp_servers
from ollama_chatd.structuring import (
    FieldError,
    camel_case,
    camel_case_structure,
    describe_structure_error,
    register_strict_scalars,
)

logger = logging.getLogger(__name__)

MODEL_ENV = "OLLAMA_CHATD_MODEL"
BACKEND_ENV = "OLLAMA_CHATD_BACKEND"  # lets an editor that passes no `backend` (VS Code) use another server


def _positive(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise FieldError(camel_case(attribute.name), f"must be positive, got {value}")


def _variable_name(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise FieldError(camel_case(attribute.name), f"must name an environment variable, e.g. \"OPENAI_API_KEY\", got {value!r}")


def _log_level(instance: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise FieldError("logLevel", f'must be "DEBUG", "INFO", "WARNING" or "ERROR", got {value!r}')


CommandPrefixes = NewType("CommandPrefixes", tuple[str, ...])  # its own type: its own error message


@attrs.frozen
class ServeOptions:
    """What `ollama-chatd serve`'s command line says; it wins over initializationOptions."""

    state_dir: Path | None = None
    in_memory: bool = False
    log_level: str | None = None
    log_file: str | None = None
    client_process_id: int | None = None  # --clientProcessId: the editor, watched from the start


@attrs.frozen
class InitializationOptions:
    """What a client may pass as `initializationOptions` (all optional, camelCase on the wire)."""

    backend: str | None = None  # which model server (else $OLLAMA_CHATD_BACKEND, else ollama); backends.py knows them
    ollama_host: str | None = None
    # backend "openai": the API base URL, and the environment variable holding the key (docs/backends.md)
    base_url: str | None = None
    api_key_env: str | None = attrs.field(default=None, validator=_variable_name)
    model: str | None = None
    max_tool_rounds: int = attrs.field(default=10, validator=_positive)
    auto_approve: tuple[str, ...] = ()
    max_context: int = attrs.field(default=8192, validator=_positive)
    stall_timeout_seconds: float = attrs.field(default=120.0, validator=_positive)
    headers: dict[str, str] = attrs.Factory(dict)
    ca_bundle: str | None = None
    state_dir: str | None = None
    log_level: str | None = attrs.field(default=None, validator=_log_level)
    log_file: str | None = None
    # MCP servers whose tools the model gets (docs/mcp.md)
    mcp_servers: tuple[ServerConfig, ...] = ()
    mcp_call_timeout_seconds: float = attrs.field(default=120.0, validator=_positive)
    # With no workspace folder, may the tools act on the daemon's working directory?
    use_working_directory: bool = False
    # run_command (docs/security.md): prefixes run without asking, the longest run, the sandbox
    allowed_commands: CommandPrefixes = CommandPrefixes(())
    command_timeout_seconds: float = attrs.field(default=120.0, validator=_positive)
    command_sandbox: bool = False


@attrs.frozen
class Settings:
    """The options once resolved against the environment (the backend's address aside)."""

    backend: str
    ollama_host: str | None  # as given; backends.address() reads it with OLLAMA_HOST
    base_url: str | None  # as given; backends.address() reads it with OPENAI_BASE_URL
    api_key_env: str | None
    default_model: str | None
    max_tool_rounds: int
    auto_approve: frozenset[str]
    max_context: int
    stall_timeout: float
    headers: dict[str, str]
    verify: bool | str
    state_dir: str | None
    mcp_servers: tuple[ServerConfig, ...]
    mcp_call_timeout: float
    use_working_directory: bool
    allowed_commands: tuple[str, ...] = ()
    command_timeout: float = 120.0
    command_sandbox: bool = False

    @classmethod
    def resolve(cls, options: InitializationOptions, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            backend=chosen_backend(options.backend, environ),
            ollama_host=options.ollama_host,
            base_url=options.base_url,
            api_key_env=options.api_key_env,
            default_model=(options.model or environ.get(MODEL_ENV, "")).strip() or None,
            max_tool_rounds=options.max_tool_rounds,
            auto_approve=frozenset(options.auto_approve),
            max_context=options.max_context,
            stall_timeout=options.stall_timeout_seconds,
            headers=dict(options.headers),
            verify=options.ca_bundle or True,
            state_dir=options.state_dir,
            mcp_servers=options.mcp_servers,
            mcp_call_timeout=options.mcp_call_timeout_seconds,
            use_working_directory=options.use_working_directory,
            allowed_commands=tuple(options.allowed_commands),
            command_timeout=options.command_timeout_seconds,
            command_sandbox=options.command_sandbox,
        )


def chosen_backend(option: str | None, environ: Mapping[str, str]) -> str:
    """The `backend` option, else $OLLAMA_CHATD_BACKEND, else "ollama"."""
    return (option or environ.get(BACKEND_ENV, "")).strip() or "ollama"


def parse_initialization_options(raw: Any) -> InitializationOptions:
    """Read the client's options; unknown keys are logged and ignored.

    Raises ValueError naming the option when a known one has the wrong type.
    """
    if raw is None:
        return InitializationOptions()
    if not isinstance(raw, Mapping):
        raise ValueError("initializationOptions must be a JSON object")
    unknown = set(raw) - {camel_case(field.name) for field in attrs.fields(InitializationOptions)}
    if unknown:
        logger.info("ignoring unknown initializationOptions: %s", ", ".join(sorted(unknown)))
    try:
        return _CONVERTER.structure(raw, InitializationOptions)
    except cattrs.BaseValidationError as error:
        field, problem = describe_structure_error(error, root="initializationOptions")
        raise OptionError(field, problem) from None


class OptionError(ValueError):
    """A known initialization option has a wrong value; `field` is its wire name."""

    def __init__(self, field: str, problem: str):
        super().__init__(problem)
        self.field = field


def _string_list(value: Any, _: type) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise FieldError("autoApprove", 'must be a list of tool names, e.g. ["edit_file"]')
    return tuple(value)


def _command_prefixes(value: Any, _: type) -> CommandPrefixes:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise FieldError("allowedCommands", 'must be a list of command prefixes, e.g. ["pytest", "npm test"]')
    return CommandPrefixes(tuple(value))


def _header_map(value: Any, _: type) -> dict[str, str]:
    if not isinstance(value, dict):
        raise FieldError("headers", 'must be an object of header names to values, e.g. {"Authorization": "Bearer …"}')
    for name, text in value.items():
        if not isinstance(text, str) or not _HEADER_TEXT.fullmatch(name) or not _HEADER_VALUE.fullmatch(text):
            raise FieldError("headers", f"has an invalid header {name!r}: names and values must be printable ASCII on one line")
    return dict(value)


_HEADER_TEXT = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\x20-\x7e\t]*")


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    register_strict_scalars(converter)
    converter.register_structure_hook_func(lambda cls: cls == tuple[str, ...], _string_list)
    converter.register_structure_hook_func(lambda cls: cls == dict[str, str], _header_map)
    converter.register_structure_hook(CommandPrefixes, _command_prefixes)
    converter.register_structure_hook_func(lambda cls: cls == tuple[ServerConfig, ...], lambda value, _: parse_mcp_servers(value))
    converter.register_structure_hook(
        InitializationOptions, camel_case_structure(InitializationOptions, converter)
    )
    return converter


_CONVERTER = _converter()
