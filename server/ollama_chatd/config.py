"""The daemon's settings: `initializationOptions`, with environment fallbacks."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from ollama_chatd.ollama.host import HostChoice, resolve_host
from ollama_chatd.structuring import camel_case, camel_case_structure, register_strict_scalars

logger = logging.getLogger(__name__)

MODEL_ENV = "OLLAMA_CHATD_MODEL"


def _positive(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value}")


@attrs.frozen
class InitializationOptions:
    """What a client may pass as `initializationOptions` (all optional, camelCase on the wire)."""

    ollama_host: str | None = None
    model: str | None = None
    max_tool_rounds: int = attrs.field(default=10, validator=_positive)
    auto_approve: tuple[str, ...] = ()


@attrs.frozen
class Settings:
    """The options once resolved against the environment."""

    host: HostChoice
    default_model: str | None
    max_tool_rounds: int
    auto_approve: frozenset[str]

    @classmethod
    def resolve(cls, options: InitializationOptions, environ: Mapping[str, str] = os.environ) -> Settings:
        return cls(
            host=resolve_host(options.ollama_host, environ),
            default_model=(options.model or environ.get(MODEL_ENV, "")).strip() or None,
            max_tool_rounds=options.max_tool_rounds,
            auto_approve=frozenset(options.auto_approve),
        )


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
        raise ValueError(_describe(error)) from None


def _describe(error: cattrs.BaseValidationError) -> str:
    messages = cattrs.transform_error(error, path="initializationOptions")
    return "; ".join(messages) or str(error)


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    register_strict_scalars(converter)
    converter.register_structure_hook(
        InitializationOptions, camel_case_structure(InitializationOptions, converter)
    )
    return converter


_CONVERTER = _converter()
