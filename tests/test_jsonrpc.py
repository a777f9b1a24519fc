"""The JSON-RPC core the CLI, the harness and the benchmark share (ollama_chatd/jsonrpc.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from ollama_chatd.jsonrpc import FrameDecoder, Peer, RpcError, encode_frame

MESSAGES = [{"jsonrpc": "2.0", "id": 1, "result": {"text": "héllo"}}, {"jsonrpc": "2.0", "method": "chat/token"}]


def test_frames_split_at_every_byte_decode_to_the_same_messages() -> None:
    stream = encode_frame(MESSAGES[0]) + b"content-type: application/vscode-jsonrpc; charset=utf-8\r\n" \
        b"CONTENT-LENGTH: 2\r\n\r\n{}" + encode_frame(MESSAGES[1])
    for cut in range(len(stream) + 1):
        decoder = FrameDecoder()
        bodies = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        decoder.close()
        assert [json.loads(b) for b in bodies] == [MESSAGES[0], {}, MESSAGES[1]], cut
        assert decoder.violations == [], cut


@pytest.mark.parametrize("garbage", [b"hello\n", b"Content-Length: x\r\n\r\n", b"X-Debug: 1\r\n\r\n"])
def test_bytes_that_are_not_a_frame_are_reported_and_the_next_frame_still_decodes(garbage: bytes) -> None:
    decoder = FrameDecoder()
    bodies = decoder.feed(garbage + encode_frame(MESSAGES[0]))
    assert [json.loads(b) for b in bodies] == [MESSAGES[0]]
    assert len(decoder.violations) == 1 and "not a frame header at byte 0" in decoder.violations[0]


def test_an_unfinished_frame_at_the_end_is_reported() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(MESSAGES[0])[:-1]) == []
    decoder.close()
    assert [v.split(":")[0] for v in decoder.violations] == ["trailing bytes on stdout"]


async def test_server_requests_are_answered_and_pending_requests_fail_at_eof() -> None:
    written: list[bytes] = []
    peer = Peer(written.append)

    async def failing(params: object) -> object:
        raise OSError("disk gone")

    peer.request_handlers["editor/fails"] = failing
    peer.receive(encode_frame({"jsonrpc": "2.0", "id": 7, "method": "editor/unknown"}).split(b"\r\n\r\n")[1])
    peer.receive(json.dumps({"jsonrpc": "2.0", "id": 8, "method": "editor/fails", "params": {}}).encode())
    _, answered = peer.send_request("chat/list", {})
    _, pending = peer.send_request("chat/list", {})
    peer.receive(b'{"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "bad", "data": 3}}')
    with pytest.raises(RpcError) as raised:
        await answered
    assert (raised.value.code, raised.value.message, raised.value.data) == (-32602, "bad", 3)
    await asyncio.sleep(0)  # the answers to the server's requests are written by tasks
    replies = {m["id"]: m["error"] for m in map(_body, written) if "error" in m}
    assert replies[7]["code"] == -32601 and "editor/unknown" in replies[7]["message"]
    assert replies[8]["code"] == -32603 and "disk gone" in replies[8]["message"]
    peer.connection_lost("the daemon closed its output")
    with pytest.raises(ConnectionError, match="closed its output"):
        await pending


def _body(frame: bytes) -> dict[str, object]:
    decoder = FrameDecoder()
    (body,) = decoder.feed(frame)
    return json.loads(body)
