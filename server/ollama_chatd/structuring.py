"""cattrs settings shared by everything that reads client-supplied JSON."""

from __future__ import annotations

import re
from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override


class FieldError(ValueError):
    """A field's value breaks the contract; `field` is its wire name."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"`{field}` {problem}")
        self.field = field


def is_integer(value: Any) -> bool:
    """An integer, and not a boolean (which Python counts as one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_message_id(value: Any) -> bool:
    """A JSON-RPC id (or LSP progress token): an integer or a string."""
    return isinstance(value, str) or is_integer(value)


def register_strict_scalars(converter: cattrs.Converter) -> None:
    """Refuse `5` where a string is expected (cattrs would quietly turn it into "5")."""
    for kind in (str, int, float, bool):
        converter.register_structure_hook(kind, _strict(kind))


def _strict(kind: type):
    def structure(value: Any, _: type) -> Any:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise TypeError(f"expected {kind.__name__}, got {value!r}")
        if kind is str and not value.isascii():
            return _valid_unicode(value)
        return value

    return structure


def _valid_unicode(text: str) -> str:
    """JSON may escape lone surrogates ("\\ud800"), which no file or database can hold:
    each becomes U+FFFD, as a UTF-8 decoder would make of it."""
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


def camel_case(name: str) -> str:
    """`max_tool_rounds` -> `maxToolRounds`, as field names appear on the wire."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camel_case_structure(cls: type, converter: cattrs.Converter):
    """A structure hook for an attrs class whose wire names are camelCase."""
    overrides = {field.name: override(rename=camel_case(field.name)) for field in attrs.fields(cls)}
    return make_dict_structure_fn(cls, converter, **overrides)


def describe_structure_error(error: cattrs.BaseValidationError, root: str) -> tuple[str, str]:
    """cattrs' report as (wire name of the first bad field, one sentence about it).

    `root` is the path segment the names are relative to ("params" for a request).
    """
    field_error = _find_field_error(error)
    if field_error is not None:
        return field_error.field, str(field_error)
    problems = cattrs.transform_error(error, path="")
    reason, _, path = (problems[0] if problems else str(error)).rpartition(" @ ")
    parts = [part for part in re.split(r"[.\[\]]", path) if part and part != root]
    field = ".".join(camel_case(part) for part in parts) or root
    if reason.startswith("required field missing"):
        return field, f"missing required field `{field}`"
    return field, f"`{field}` {_plain(reason)}"


def _plain(reason: str) -> str:
    """cattrs' "invalid value for type, expected str | None" -> "must be a string"."""
    if match := re.search(r"expected (\w+)", reason):
        expected = {"str": "a string", "int": "an integer", "float": "a number",
                    "bool": "a boolean", "a": "an object"}.get(match.group(1))
        if expected:
            return f"must be {expected}"
    return reason


def _find_field_error(error: BaseException) -> FieldError | None:
    if isinstance(error, FieldError):
        return error
    for inner in getattr(error, "exceptions", ()):
        if (found := _find_field_error(inner)) is not None:
            return found
    return None
