"""An MCP `CallToolResult` as the model gets it: text (capped), plus images.

A server's output is data for the model, never instructions to the daemon:
nothing here acts on it, it is only turned into text.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import attrs

from ollama_chatd.tools.builtin import READ_MAX_BYTES

MAX_TEXT_BYTES = READ_MAX_BYTES  # the cap of the workspace tools' largest output


@attrs.frozen
class ToolOutput:
    text: str
    images: tuple[str, ...]  # base64, for models that can see
    is_error: bool


def tool_output(result: Any) -> ToolOutput:
    parts: list[str] = []
    images: list[str] = []
    for block in result.content:
        parts.append(_block_text(block, images))
    structured = result.structured_content
    if structured is not None and not any(_same_json(part, structured) for part in parts):
        parts.append(json.dumps(structured, ensure_ascii=False, indent=2))
    return ToolOutput(_capped("\n".join(part for part in parts if part)), tuple(images), bool(result.is_error))


def _block_text(block: Any, images: list[str]) -> str:
    kind = block.type
    if kind == "text":
        return block.text
    if kind == "image":
        images.append(block.data)
        return f"[image {len(images)}: {block.mime_type}, {_decoded_size(block.data)} bytes]"
    if kind == "resource":
        resource = block.resource
        text = getattr(resource, "text", None)
        return text if text is not None else f"[binary resource {resource.uri} ({resource.mime_type or 'unknown type'}) left out]"
    if kind == "resource_link":
        return f"[resource {block.uri}" + (f": {block.name}]" if block.name else "]")
    return f"[{kind} content left out: not supported]"


def _same_json(text: str, value: Any) -> bool:
    """Servers are asked to repeat structured content as JSON text; don't send it twice."""
    try:
        return json.loads(text) == value
    except ValueError:
        return False


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        return 0


def _capped(text: str) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_TEXT_BYTES:
        return text
    kept = encoded[:MAX_TEXT_BYTES].decode("utf-8", errors="ignore")
    return f"{kept}\n[output cut at {MAX_TEXT_BYTES // 1024} KiB of {len(encoded) // 1024} KiB]"
