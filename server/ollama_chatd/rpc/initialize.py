"""What `initialize` means to this daemon: the params it accepts and the answer it gives.

Kept free of pygls and lsprotocol (half a second to import) so that `startup` can
answer `initialize` before they are loaded; `protocol` applies the same rules
when pygls handles the message, so both paths accept the same params and give
the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs
import cattrs

from ollama_chatd import __version__, backends
from ollama_chatd.config import Settings, parse_initialization_options
from ollama_chatd.structuring import (
    FieldError,
    camel_case_structure,
    describe_structure_error,
    is_integer,
    is_message_id,
    register_strict_scalars,
)

SERVER_NAME = "ollama-chatd"
SUPPORTED_ENCODINGS = ("utf-8", "utf-16", "utf-32")
DEFAULT_ENCODING = "utf-16"  # LSP's, when the client offers nothing we support
INCREMENTAL_SYNC = 2


@attrs.frozen
class ClientInfo:
    name: str
    version: str | None = None


@attrs.frozen
class WorkspaceFolder:
    uri: str
    name: str


@attrs.frozen
class InitializeParams:
    """LSP's `InitializeParams`, checked strictly: lsprotocol would take
    `"processId": "1"` for process 1, and `"rootUri": 5` for the URI "5".

    `capabilities` stays raw: what pygls cannot read of it is ignored (see
    `capabilities_used`), since the daemon reads only two of its fields.
    """

    capabilities: dict[str, Any]
    process_id: int | None = None
    client_info: ClientInfo | None = None
    locale: str | None = None
    root_path: str | None = None
    root_uri: str | None = None
    initialization_options: Any = None
    trace: Literal["off", "messages", "verbose"] | None = None
    work_done_token: int | str | None = None
    workspace_folders: list[WorkspaceFolder] | None = None


class ParamsError(ValueError):
    """`initialize`'s params break the contract; `field` is the wire name under `params`."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"initialize: {problem}")
        self.field = field


def read_params(raw: Any) -> InitializeParams:
    if not isinstance(raw, dict):
        raise ParamsError("params", "`params` must be an object with at least `capabilities`")
    try:
        return _CONVERTER.structure(raw, InitializeParams)
    except cattrs.BaseValidationError as error:
        raise ParamsError(*describe_structure_error(error, root="params")) from None


def answerable_at_once(params: InitializeParams) -> bool:
    """Whether the answer is sure to be a success without loading the rest of the daemon.

    The session's own checks run again later (and name any problem); a `caBundle`
    is only known to be usable once loaded, and `commandSandbox` once bubblewrap is
    found, which is left to that later moment.
    """
    try:
        options = parse_initialization_options(params.initialization_options)
        backends.address(Settings.resolve(options))
    except ValueError:
        return False
    return options.ca_bundle is None and not options.command_sandbox


def position_encoding(capabilities: Mapping[str, Any]) -> str:
    """The client's first offered position encoding that the daemon supports."""
    return next((kind for kind in offered_encodings(capabilities) if kind in SUPPORTED_ENCODINGS), DEFAULT_ENCODING)


def offered_encodings(capabilities: Mapping[str, Any]) -> list[str]:
    general = capabilities.get("general")
    offered = general.get("positionEncodings") if isinstance(general, dict) else None
    return [kind for kind in offered if isinstance(kind, str)] if isinstance(offered, list) else []


def capabilities_for_pygls(capabilities: dict[str, Any]) -> dict[str, Any]:
    """The client's capabilities with the offered encodings reduced to strings, so
    that pygls picks the one `position_encoding` picks."""
    general = capabilities.get("general")
    if not isinstance(general, dict):
        return capabilities
    others = {name: value for name, value in general.items() if name != "positionEncodings"}
    return {**capabilities, "general": {**others, **_encodings(capabilities)}}


def capabilities_used(capabilities: dict[str, Any]) -> dict[str, Any]:
    """Only what the daemon reads (the encodings and `workspace.applyEdit`): for
    pygls when it cannot read the rest, so an editor with an odd capability still
    gets a session."""
    workspace = capabilities.get("workspace")
    apply_edit = isinstance(workspace, dict) and workspace.get("applyEdit") is True
    return {"general": _encodings(capabilities), "workspace": {"applyEdit": apply_edit}}


def _encodings(capabilities: dict[str, Any]) -> dict[str, Any]:
    offered = offered_encodings(capabilities)
    return {"positionEncodings": offered} if offered else {}


def result(encoding: str) -> dict[str, Any]:
    """The `InitializeResult`: what the daemon declares, the same whatever else the client offers."""
    return {
        "capabilities": {
            "positionEncoding": encoding,
            "textDocumentSync": {"openClose": True, "change": INCREMENTAL_SYNC},
        },
        "serverInfo": {"name": SERVER_NAME, "version": __version__},
    }


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    register_strict_scalars(converter)
    for hint, hook in _FIELD_HOOKS.items():
        converter.register_structure_hook_func(lambda cls, hint=hint: cls == hint, hook)
    for cls in (ClientInfo, WorkspaceFolder, InitializeParams):
        converter.register_structure_hook(cls, camel_case_structure(cls, converter))
    return converter


def _capabilities(value: Any, _: type) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldError("capabilities", "must be an object (`{}` for a client that declares none)")
    return value


def _process_id(value: Any, _: type) -> int | None:
    if value is None or is_integer(value):
        return value
    raise FieldError("processId", f"must be the editor's process id (an integer) or null, got {value!r}")


def _trace(value: Any, _: type) -> str | None:
    if value is None or value in ("off", "messages", "verbose"):
        return value
    raise FieldError("trace", f'must be "off", "messages" or "verbose", got {value!r}')


def _work_done_token(value: Any, _: type) -> int | str | None:
    if value is None or is_message_id(value):
        return value
    raise FieldError("workDoneToken", f"must be an integer or a string, got {value!r}")


_FIELD_HOOKS = {
    dict[str, Any]: _capabilities,
    int | None: _process_id,
    Literal["off", "messages", "verbose"] | None: _trace,
    int | str | None: _work_done_token,
}
_CONVERTER = _converter()
