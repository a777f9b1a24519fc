#!/usr/bin/env python3
"""Baseline 2: the same relay written with the official `ollama` Python client, which is
what a plugin author would reach for: `AsyncClient.chat(stream=True)` yields one pydantic
`ChatResponse` per NDJSON line; each token becomes one framed `chat/token` with
`write` + `flush`. Run: `OLLAMA_HOST=http://127.0.0.1:PORT python bench/ollama_python_relay.py`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import ollama

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relay_stdio import host, send, serve  # noqa: E402


def setup() -> ollama.AsyncClient:
    return ollama.AsyncClient(host=host())


async def relay(client: ollama.AsyncClient, msg_id: Any, params: dict[str, Any]) -> None:
    chat_id = params["chatId"]
    model = params.get("model") or os.environ.get("OLLAMA_CHATD_MODEL")
    seq = 0
    content: list[str] = []
    final = None
    stream = await client.chat(model=model, messages=[{"role": "user", "content": params["prompt"]}], stream=True)
    async for part in stream:
        for kind, text in (("thinking", part.message.thinking), ("content", part.message.content)):
            if text:
                send({"jsonrpc": "2.0", "method": "chat/token",
                      "params": {"chatId": chat_id, "kind": kind, "text": text, "seq": seq}})
                seq += 1
                if kind == "content":
                    content.append(text)
        if part.done:
            final = part
    send({"jsonrpc": "2.0", "id": msg_id, "result": {
        "chatId": chat_id,
        "stopReason": "max_tokens" if final is not None and final.done_reason == "length" else "end_turn",
        "message": {"role": "assistant", "content": "".join(content)},
        "usage": {"promptTokens": (final and final.prompt_eval_count) or 0,
                  "completionTokens": (final and final.eval_count) or 0,
                  "totalDurationMs": ((final and final.total_duration) or 0) / 1e6},
    }})


if __name__ == "__main__":
    sys.exit(serve(relay, setup))
