"""Tests of the fake Ollama server itself: the other tests trust its wire format."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fake_ollama import FakeOllama, Reply


@pytest.fixture
def fake():
    with FakeOllama() as server:
        yield server


def chat_body(content: str = "hello world", model: str = "tiny", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def read_chunked_response(sock: socket.socket) -> tuple[bytes, list[bytes]]:
    """Read one chunked response off a raw socket: (head, the chunks exactly as framed)."""
    data = b""

    def need(marker: bytes) -> int:
        nonlocal data
        while (i := data.find(marker)) < 0:
            more = sock.recv(65536)
            assert more, "connection closed early"
            data += more
        return i

    end = need(b"\r\n\r\n")
    head, data = data[:end], data[end + 4 :]
    chunks = []
    while True:
        end = need(b"\r\n")
        size = int(data[:end], 16)
        data = data[end + 2 :]
        if size == 0:
            return head, chunks
        while len(data) < size + 2:
            data += sock.recv(65536)
        chunks.append(data[:size])
        assert data[size : size + 2] == b"\r\n"
        data = data[size + 2 :]


def test_raw_reply_keeps_chunk_boundaries_even_inside_a_utf8_character(fake):
    line = '{"message":{"role":"assistant","content":"é"},"done":false}\n'.encode()
    cut = line.index("é".encode()) + 1  # between the two bytes of "é"
    pieces = [line[:cut], 0.01, line[cut:], b'{"done":true}\n']
    fake.script(Reply.raw(pieces))
    body = json.dumps(chat_body()).encode()
    with socket.create_connection(("127.0.0.1", fake.port)) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        head, chunks = read_chunked_response(sock)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: application/x-ndjson" in head and b"Transfer-Encoding: chunked" in head
    assert chunks == [p for p in pieces if isinstance(p, bytes)]


def test_default_reply_echoes_the_last_user_message_one_word_per_chunk(fake):
    with httpx.Client(base_url=fake.url) as client:
        with client.stream("POST", "/api/chat", json=chat_body("hello world")) as response:
            assert response.headers["content-type"] == "application/x-ndjson"
            lines = [json.loads(line) for line in response.iter_lines()]
    assert [c["message"]["content"] for c in lines] == ["echo:", " hello", " world", ""]
    assert all(c["model"] == "tiny" and c["message"]["role"] == "assistant" for c in lines)
    final = lines[-1]
    assert final["done"] is True and final["done_reason"] == "stop" and final["eval_count"] == 3
    assert not any(c["done"] for c in lines[:-1])
    [recorded] = fake.requests
    assert recorded.body["messages"][0]["content"] == "hello world" and recorded.response_completed


def test_keep_alive_serves_sequential_requests_on_one_connection(fake):
    with httpx.Client(base_url=fake.url) as client:
        for word in ("one", "two"):
            response = client.post("/api/chat", json=chat_body(word, stream=False))
            assert response.json()["message"]["content"] == f"echo: {word}"
        assert client.get("/api/version").json() == {"version": "0.12.10"}
    assert fake.connections_opened == 1
    assert [r.path for r in fake.all_requests] == ["/api/chat", "/api/chat", "/api/version"]


def test_client_closing_mid_stream_is_seen_at_once(fake):
    fake.script(Reply.endless(delay=0.002))
    with httpx.Client(base_url=fake.url) as client:
        with client.stream("POST", "/api/chat", json=chat_body()) as response:
            lines = response.iter_lines()
            assert json.loads(next(lines))["message"]["content"] == "tok "
            next(lines)
            closed_by_client = time.monotonic()
    [recorded] = fake.requests
    assert recorded.wait_closed(timeout=2)
    assert recorded.closed_at - closed_by_client < 0.05
    assert recorded.client_dropped and not recorded.response_completed


def test_client_giving_up_while_the_model_loads_is_seen(fake):
    fake.script(Reply.text(["late"], first_byte_delay=10))
    with httpx.Client(base_url=fake.url, timeout=httpx.Timeout(5, read=0.1)) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/api/chat", json=chat_body())
    [recorded] = fake.requests
    assert recorded.wait_closed(timeout=2) and recorded.status is None


def test_unknown_model_is_404_and_a_script_for_it_wins(fake):
    with httpx.Client(base_url=fake.url) as client:
        response = client.post("/api/chat", json=chat_body(model="nope"))
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.json() == {"error": "model 'nope' not found"}

        fake.script(Reply.text("scripted answer"), model="nope")
        response = client.post("/api/chat", json=chat_body(model="nope:latest", stream=False))
        assert response.json()["message"]["content"] == "scripted answer"


def test_capability_checks_and_mid_stream_error(fake):
    with httpx.Client(base_url=fake.url) as client:
        response = client.post("/api/chat", json=chat_body(model="plain", think=True))
        assert (response.status_code, response.json()) == (400, {"error": '"plain" does not support thinking'})
        fake.script(Reply.mid_stream_error(["partial"], "boom"))  # scripts skip the capability checks
        response = client.post("/api/chat", json=chat_body())
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert response.status_code == 200 and lines[-1] == {"error": "boom"}


def test_command_line_mode_prints_its_url_and_serves():
    script = Path(__file__).with_name("fake_ollama.py")
    proc = subprocess.Popen([sys.executable, str(script), "--port", "0"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = json.loads(proc.stdout.readline())["url"]
        with httpx.Client(base_url=url) as client:
            assert client.get("/").text == "Ollama is running"
            queued = client.post("/_fake/script", json={"model": None, "replies": [
                {"kind": "raw", "pieces": [{"text": '{"done":true}\n'}]}]})
            assert queued.json() == {"queued": 1}
            assert client.post("/api/chat", json=chat_body()).text == '{"done":true}\n'
            [recorded] = client.get("/_fake/requests").json()
            assert recorded["path"] == "/api/chat" and recorded["response_completed"]
        proc.stdin.close()  # EOF on stdin stops the fake
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        proc.wait()
