"""pygls' LSP protocol, taught the typed `chat/*` messages and this daemon's `initialize`.

Params of `chat/*` methods are structured strictly (a number is not a string)
and a failure names the offending field, so the client always gets -32602
instead of the silence pygls 2.1 leaves when structuring fails. `initialize`
follows the rules of `rpc.initialize`, which `rpc.startup` also applies when it
answers before pygls is loaded.
"""

from __future__ import annotations

import logging
import typing
from collections.abc import Generator
from typing import Any

import attrs
import cattrs
from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol, default_converter
from pygls.protocol.language_server import lsp_method

from ollama_chatd import llm
from ollama_chatd.rpc import initialize, messages, model_messages
from ollama_chatd.rpc.errors import invalid_params
from ollama_chatd.structuring import (
    FieldError,
    camel_case_structure,
    describe_structure_error,
    is_message_id,
    register_strict_scalars,
)

logger = logging.getLogger(__name__)

# Every typed request and notification the daemon receives, by method.
MESSAGE_TYPES: dict[str, type] = {**messages.MESSAGE_TYPES, **model_messages.MESSAGE_TYPES}


def chat_converter() -> cattrs.Converter:
    """pygls' converter, plus strict structuring of the `chat/*` messages."""
    converter = default_converter()
    strict = converter.copy()
    register_strict_scalars(strict)
    strict.register_structure_hook(messages.ThinkParam | None, _structure_think)
    strict.register_structure_hook(messages.MsgId, _structure_id)
    chat_classes = _chat_classes()
    strict.register_structure_hook_factory(
        chat_classes.__contains__, lambda cls: camel_case_structure(cls, strict)
    )
    converter.register_structure_hook_func(chat_classes.__contains__, strict.structure)
    return converter


def _chat_classes() -> set[type]:
    """Every attrs class reachable from the chat message envelopes."""
    found: set[type] = set()
    todo = [*MESSAGE_TYPES.values(), *messages.RESULT_TYPES.values()]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.add(cls)
        todo.extend(_attrs_classes_in(typing.get_type_hints(cls).values()))
    return found


def _attrs_classes_in(hints: typing.Iterable[Any]) -> typing.Iterator[type]:
    """The attrs classes a field's type names, inside `list[...]` and `X | None` too."""
    for hint in hints:
        if attrs.has(hint):
            yield hint
        else:
            yield from _attrs_classes_in(typing.get_args(hint))


def _structure_id(value: Any, _: type) -> messages.MsgId:
    if is_message_id(value):
        return value
    raise TypeError(f"id must be an integer or a string, got {value!r}")


def _structure_think(value: Any, _: type) -> messages.ThinkParam | None:
    if value is None or isinstance(value, bool) or value in _THINK_EFFORTS:
        return value
    *others, last = (f'"{effort}"' for effort in _THINK_EFFORTS)
    raise FieldError("think", f"must be true, false, {', '.join(others)} or {last}, got {value!r}")


_THINK_EFFORTS = typing.get_args(llm.ThinkEffort)


class ChatProtocol(LanguageServerProtocol):
    _answered_early: messages.MsgId | None = None

    def answered_early(self, msg_id: messages.MsgId) -> None:
        """The `initialize` request `msg_id` was answered before pygls was loaded."""
        self._answered_early = msg_id

    def get_message_type(self, method: str) -> type | None:
        return MESSAGE_TYPES.get(method) or super().get_message_type(method)

    def get_result_type(self, method: str) -> type | None:
        return messages.RESULT_TYPES.get(method) or super().get_result_type(method)

    def structure_message(self, data: dict[str, Any]) -> Any:
        if data.get("method") == lsp.INITIALIZE:
            return self._structure_initialize(data)
        message_type = MESSAGE_TYPES.get(data.get("method", ""))
        if message_type is None:
            return super().structure_message(data)
        if data.get("params") is None:
            data = {**data, "params": {}}  # fine when every field is optional
        if not isinstance(data["params"], dict):
            raise invalid_params(f"{data['method']} needs `params`, a JSON object")
        try:
            return self._converter.structure(data, message_type)
        except cattrs.BaseValidationError as error:
            raise _describe(data["method"], error) from None

    def _structure_initialize(self, data: dict[str, Any]) -> lsp.InitializeRequest:
        try:
            capabilities = initialize.read_params(data.get("params")).capabilities
        except initialize.ParamsError as error:
            raise invalid_params(str(error), error.field) from None
        try:
            return self._with_capabilities(data, initialize.capabilities_for_pygls(capabilities))
        except cattrs.BaseValidationError as error:
            _, problem = describe_structure_error(error, root="params")
            logger.warning("initialize: ignoring the client's capabilities but positionEncodings and applyEdit: %s", problem)
        try:
            return self._with_capabilities(data, initialize.capabilities_used(capabilities))
        except cattrs.BaseValidationError as error:
            raise _describe(lsp.INITIALIZE, error) from None

    def _with_capabilities(self, data: dict[str, Any], capabilities: dict[str, Any]) -> lsp.InitializeRequest:
        return self._converter.structure(
            {**data, "params": {**data["params"], "capabilities": capabilities}}, lsp.InitializeRequest
        )

    @lsp_method(lsp.INITIALIZE)
    def lsp_initialize(self, params: lsp.InitializeParams) -> Generator[Any, Any, lsp.InitializeResult]:
        yield from super().lsp_initialize(params)  # sets the session up; its answer is replaced
        declared = initialize.result(self.workspace.position_encoding)
        answer = self._converter.structure(declared, lsp.InitializeResult)
        self.server_capabilities = answer.capabilities
        return answer

    def _send_response(self, msg_id: messages.MsgId, result: Any = None, error: Any = None) -> None:
        if msg_id == self._answered_early:
            self._answered_early = None
            if error is not None:  # `startup` should have left this `initialize` to pygls
                logger.error("initialize failed after it was answered: %s", error.message)
            return
        super()._send_response(msg_id, result, error)


def _describe(method: str, error: cattrs.BaseValidationError) -> JsonRpcInvalidParams:
    field, problem = describe_structure_error(error, root="params")
    return invalid_params(f"{method}: {problem}", field)
