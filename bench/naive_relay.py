#!/usr/bin/env python3
"""Baseline 1, the naive relay: what a chat relay looks like written the obvious way.

For each `chat/start` read from stdin: POST /api/chat with httpx (one `AsyncClient`,
reused), then `aiter_lines()` -> `json.loads` per line -> one framed `chat/token`
notification per token, written to stdout with `write` + `flush`; then the response.
Run: `OLLAMA_HOST=http://127.0.0.1:PORT python bench/naive_relay.py` (see relay_stdio.py
for the stdio side).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_stdio import host, send, serve  # noqa: E402


def setup() -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=host(), timeout=httpx.Timeout(10.0, read=None))


async def relay(client: httpx.AsyncClient, msg_id: Any, params: dict[str, Any]) -> None:
    chat_id = params["chatId"]
    model = params.get("model") or os.environ.get("OLLAMA_CHATD_MODEL")
    body = {"model": model, "messages": [{"role": "user", "content": params["prompt"]}], "stream": True}
    seq = 0
    content: list[str] = []
    final: dict[str, Any] = {}
    async with client.stream("POST", "/api/chat", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line:
                continue
            chunk = json.loads(line)
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            message = chunk.get("message") or {}
            for kind in ("thinking", "content"):
                text = message.get(kind)
                if text:
                    send({"jsonrpc": "2.0", "method": "chat/token",
                          "params": {"chatId": chat_id, "kind": kind, "text": text, "seq": seq}})
                    seq += 1
                    if kind == "content":
                        content.append(text)
            if chunk.get("done"):
                final = chunk
                break
    send({"jsonrpc": "2.0", "id": msg_id, "result": {
        "chatId": chat_id,
        "stopReason": "max_tokens" if final.get("done_reason") == "length" else "end_turn",
        "message": {"role": "assistant", "content": "".join(content)},
        "usage": {"promptTokens": final.get("prompt_eval_count", 0),
                  "completionTokens": final.get("eval_count", 0),
                  "totalDurationMs": final.get("total_duration", 0) / 1e6},
    }})


if __name__ == "__main__":
    sys.exit(serve(relay, setup))
