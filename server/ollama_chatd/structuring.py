"""cattrs settings shared by everything that reads client-supplied JSON."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override


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
        return value

    return structure


def camel_case(name: str) -> str:
    """`max_tool_rounds` -> `maxToolRounds`, as field names appear on the wire."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camel_case_structure(cls: type, converter: cattrs.Converter):
    """A structure hook for an attrs class whose wire names are camelCase."""
    overrides = {field.name: override(rename=camel_case(field.name)) for field in attrs.fields(cls)}
    return make_dict_structure_fn(cls, converter, **overrides)
