"""The JSON-RPC front-end leans on a few private parts of pygls, which a release may
move without notice; pyproject.toml pins pygls to the minor release they were read
from (2.1). Each is checked here by what the daemon does with it, so a pygls that
moves one fails this test naming the attribute and the code that needs it, instead of
a turn failing deep inside a chat.
"""

from __future__ import annotations

import inspect
from importlib import metadata

from pygls.protocol import JsonRPCProtocol

from ollama_chatd.app import open_workspace
from ollama_chatd.config import ServeOptions
from ollama_chatd.rpc.server import create_server

PYGLS = metadata.version("pygls")


def _moved(name: str, used_by: str) -> str:
    return (
        f"pygls {PYGLS} no longer has JsonRPCProtocol.{name} as 2.1 had it; {used_by} relies on it: "
        "adapt that code to the new release, or keep pygls pinned to 2.1 in pyproject.toml"
    )


class _Collected:
    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        pass


async def test_a_request_to_the_editor_is_tracked_where_rpc_peer_forgets_it() -> None:
    server = create_server(ServeOptions(in_memory=True), open_workspace)
    protocol = server.protocol
    protocol.set_writer(_Collected())
    for name in ("_request_futures", "_result_types"):
        assert isinstance(getattr(protocol, name, None), dict), _moved(name, "rpc/peer.py (forgetting a cancelled request)")
    protocol.send_request("chat/requestPermission", None, msg_id="probe")
    assert "probe" in protocol._request_futures, _moved("_request_futures", "rpc/peer.py and ChatServer.close")
    assert "probe" in protocol._result_types, _moved("_result_types", "rpc/peer.py")
    await server.close()


def test_the_shutdown_flag_rpc_dispatch_reads() -> None:
    protocol = create_server(ServeOptions(in_memory=True), open_workspace).protocol
    assert getattr(protocol, "_shutdown", None) is False, _moved("_shutdown", "rpc/dispatch.py (requests after shutdown)")


def test_the_converter_rpc_protocol_structures_initialize_with() -> None:
    protocol = create_server(ServeOptions(in_memory=True), open_workspace).protocol
    assert hasattr(getattr(protocol, "_converter", None), "structure"), _moved("_converter", "rpc/protocol.py (initialize)")


def test_the_response_hook_rpc_protocol_overrides() -> None:
    """ChatProtocol._send_response drops pygls' answer to an `initialize` already answered
    by rpc/startup.py; pygls must still send every response through it."""
    method = getattr(JsonRPCProtocol, "_send_response", None)
    assert method is not None, _moved("_send_response", "rpc/protocol.py (the early initialize answer)")
    assert list(inspect.signature(method).parameters)[:4] == ["self", "msg_id", "result", "error"], _moved(
        "_send_response(msg_id, result, error)", "rpc/protocol.py"
    )
    source = inspect.getsource(JsonRPCProtocol)
    assert "self._send_response(" in source, _moved("_send_response as the one way out of a response", "rpc/protocol.py")


def test_pygls_is_the_pinned_minor_release() -> None:
    assert PYGLS.startswith("2.1."), f"pygls {PYGLS} is installed, but the daemon is pinned to 2.1 (pyproject.toml)"
