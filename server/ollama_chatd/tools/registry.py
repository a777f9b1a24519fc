"""The tools offered to the model: names, descriptions, argument schemas.

Descriptions are written for small local models: short, concrete, with the
shape of a path spelled out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import attrs

from .. import llm
from . import builtin, change_tools, search
from .edits import ProposedEdit
from .workspace import ToolError, Workspace

_PATH_FORM = (
    "Paths are relative to the workspace root, like 'src/app.py' (with several "
    "workspace folders, start with the folder name: 'myproject/src/app.py')."
)


@attrs.frozen
class ToolDef:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments, Ollama function-style
    writes: bool  # needs the user's permission: run() returns a ProposedEdit
    run: Callable[[Workspace, dict[str, Any]], str | ProposedEdit]


def _schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _integer(description: str, minimum: int = 1) -> dict[str, Any]:
    return {"type": "integer", "description": description, "minimum": minimum}


TOOLS: tuple[ToolDef, ...] = (
    ToolDef(
        name="read_file",
        description=(
            "Read a text file. Returns its lines, each prefixed with its line number and a tab. "
            "Long files are cut at 2000 lines; the end of the output says which start_line to "
            f"use to read on. {_PATH_FORM}"
        ),
        parameters=_schema(
            ["path"],
            path=_string("File to read, e.g. 'src/app.py'"),
            start_line=_integer("First line to return (1-based). Default: 1"),
            end_line=_integer("Last line to return (inclusive). Default: end of file"),
        ),
        writes=False,
        run=builtin.read_file,
    ),
    ToolDef(
        name="list_directory",
        description=(
            "List the files and folders in a folder of the workspace, recursively. Folders end "
            "with '/'. Files ignored by .gitignore are left out. " + _PATH_FORM
        ),
        parameters=_schema(
            [],
            path=_string("Folder to list, e.g. 'src'. Default: the workspace root"),
            depth=_integer("How many levels deep to list, 1 to 5. Default: 2"),
        ),
        writes=False,
        run=builtin.list_directory,
    ),
    ToolDef(
        name="search_text",
        description=(
            "Search file contents with a regular expression (Python syntax; case-sensitive, "
            "add (?i) to ignore case). Returns matching lines as 'path:line: text'. Files ignored "
            "by .gitignore are skipped. " + _PATH_FORM
        ),
        parameters=_schema(
            ["pattern"],
            pattern=_string("Regular expression, e.g. 'def load_config' or 'TODO|FIXME'"),
            path=_string("Folder or file to search in, e.g. 'src'. Default: the whole workspace"),
            glob=_string("Only search files matching this glob, e.g. '*.py' or 'src/**/*.ts'"),
            max_results=_integer("Most matching lines to return, up to 500. Default: 100"),
        ),
        writes=False,
        run=search.search_text,
    ),
    ToolDef(
        name="find_files",
        description=(
            "Find files whose path matches a glob. '*' matches within one folder name, '**' "
            "across folders; a glob without '/' matches file names at any depth ('*.py'). "
            "Returns workspace paths of files, one per line (a glob ending in '/' finds folders). "
            "Files ignored by .gitignore are left out."
        ),
        parameters=_schema(
            ["glob"],
            glob=_string("Glob such as '**/*.py', 'src/*.ts', '*test*' or '*.{js,ts}'"),
        ),
        writes=False,
        run=search.find_files,
    ),
    ToolDef(
        name="write_file",
        description=(
            "Create a new file, or replace the whole content of an existing file. Missing "
            "folders are created. To change part of a file, prefer edit_file. The user is "
            f"asked to approve the change. {_PATH_FORM}"
        ),
        parameters=_schema(
            ["path", "content"],
            path=_string("File to write, e.g. 'src/new_module.py'"),
            content=_string("The complete new content of the file"),
        ),
        writes=True,
        run=change_tools.write_file,
    ),
    ToolDef(
        name="edit_file",
        description=(
            "Replace one exact piece of text in a file. old_text must appear exactly once in "
            "the file, with the same indentation and line breaks; copy it from read_file "
            "without the line numbers, and include enough lines to make it unique. The user "
            f"is asked to approve the change. {_PATH_FORM}"
        ),
        parameters=_schema(
            ["path", "old_text", "new_text"],
            path=_string("File to edit, e.g. 'src/app.py'"),
            old_text=_string("The exact text to replace"),
            new_text=_string("The text to put in its place"),
        ),
        writes=True,
        run=change_tools.edit_file,
    ),
    ToolDef(
        name="delete_file",
        description=f"Delete a text file. The user is asked to approve it. {_PATH_FORM}",
        parameters=_schema(["path"], path=_string("File to delete, e.g. 'src/old_module.py'")),
        writes=True,
        run=change_tools.delete_file,
    ),
)

_BY_NAME = {tool.name: tool for tool in TOOLS}


def find_tool(name: str) -> ToolDef | None:
    return _BY_NAME.get(name)


def tool_specs() -> tuple[llm.ToolSpec, ...]:
    return tuple(llm.ToolSpec(t.name, t.description, t.parameters) for t in TOOLS)


def check_arguments(tool: ToolDef | llm.ToolSpec, arguments: object) -> dict[str, Any]:
    """The arguments, checked against the tool's schema and coerced where models slip.

    Raises ToolError naming the missing, unknown or wrongly-typed argument. A null
    value counts as absent (models send them for optional parameters), numeric
    strings are accepted for integers, and a JSON string holding an object is
    decoded (some models serialize the arguments twice).
    """
    given = _as_object(tool, arguments)
    properties: dict[str, Any] = tool.parameters["properties"]
    unknown = sorted(set(given) - set(properties))
    if unknown:
        raise ToolError(
            f"{tool.name} has no argument {unknown[0]!r}; its arguments are: "
            f"{_signature(tool)}"
        )
    checked = {}
    for name, schema in properties.items():
        if given.get(name) is not None:
            checked[name] = _coerce(tool, name, schema, given[name])
        elif name in tool.parameters["required"]:
            raise ToolError(
                f"{tool.name} needs the argument {name!r} ({schema['type']}: "
                f"{schema['description']}); its arguments are: {_signature(tool)}"
            )
    return checked


def _as_object(tool: ToolDef | llm.ToolSpec, arguments: object) -> dict[str, Any]:
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            pass
    if not isinstance(arguments, dict):
        raise ToolError(
            f"the arguments of {tool.name} must be an object such as "
            f"{{{_example(tool)}}}, not {type(arguments).__name__}"
        )
    return arguments


def _coerce(tool: ToolDef | llm.ToolSpec, name: str, schema: dict[str, Any], value: object) -> Any:
    kind = schema["type"]
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "integer":
        number = _as_integer(value)
        if number is not None:
            if number < schema.get("minimum", -math.inf):
                raise ToolError(
                    f"argument {name!r} of {tool.name} must be at least {schema['minimum']}, "
                    f"got {number}"
                )
            return number
    raise ToolError(
        f"argument {name!r} of {tool.name} must be {_a(kind)}, got "
        f"{_describe(value)}: {schema['description']}"
    )


def _as_integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None  # True is an int to Python, not to the model
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
    return None


def _a(kind: str) -> str:
    return {"integer": "an integer", "string": "a string"}.get(kind, kind)


def _describe(value: object) -> str:
    kind = {dict: "an object", list: "a list", bool: "a boolean", str: "a string"}.get(type(value))
    shown = json.dumps(value)[:60] if not isinstance(value, dict | list) else ""
    return f"{kind or type(value).__name__} {shown}".strip()


def _signature(tool: ToolDef | llm.ToolSpec) -> str:
    required = tool.parameters["required"]
    return ", ".join(
        f"{name} ({schema['type']}{'' if name in required else ', optional'})"
        for name, schema in tool.parameters["properties"].items()
    )


def _example(tool: ToolDef | llm.ToolSpec) -> str:
    return ", ".join(f'"{name}": ...' for name in tool.parameters["required"])
