"""A `session/prompt`'s content blocks as the engine's prompt text and images.

Files the editor attaches (embedded `resource`s, and `resource_link`s read through
the client) are appended to the text, each fenced and named, so the model sees
them as part of the user's message.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import attrs
from acp import schema

from ollama_chatd.acp.client_side import client_reads
from ollama_chatd.tools.workspace import ToolError, Workspace


class UnsupportedContent(ValueError):
    """A block this agent cannot pass on to the model."""


@attrs.frozen
class PromptParts:
    text: str
    images: tuple[str, ...]


async def read_prompt(blocks: list[Any], workspace: Workspace) -> PromptParts:
    texts: list[str] = []
    images: list[str] = []
    for block in blocks:
        if isinstance(block, schema.TextContentBlock):
            texts.append(block.text)
        elif isinstance(block, schema.ImageContentBlock):
            images.append(block.data)
        elif isinstance(block, schema.ResourceContentBlock):
            texts.append(await _linked_file(block, workspace))
        elif isinstance(block, schema.EmbeddedResourceContentBlock):
            texts.append(_embedded(block.resource))
        else:
            raise UnsupportedContent(
                f"session/prompt: {getattr(block, 'type', 'this')} content is not supported; "
                "send text, images, files (resource_link) or embedded resources"
            )
    return PromptParts("\n\n".join(texts), tuple(images))


def _embedded(resource: schema.TextResourceContents | schema.BlobResourceContents) -> str:
    if isinstance(resource, schema.TextResourceContents):
        return _attachment(resource.uri, resource.text)
    return f"[attached {_name(resource.uri)}: binary content, not shown to the model]"


async def _linked_file(link: schema.ResourceContentBlock, workspace: Workspace) -> str:
    path = _local_path(link.uri)
    if path is None or workspace.folder_of(path) is None:
        return f"[attached {link.name} ({link.uri}): outside the workspace, not read]"
    try:
        with client_reads():
            text = await asyncio.to_thread(workspace.read_text, path)
    except ToolError as error:
        return f"[attached {link.name}: cannot be read: {error}]"
    return _attachment(link.uri, text)


def _local_path(uri: str) -> Path | None:
    parsed = urlparse(uri)
    if parsed.scheme not in ("file", "") or parsed.netloc not in ("", "localhost"):
        return None
    path = unquote(parsed.path)
    return Path(os.path.realpath(path)) if os.path.isabs(path) else None


def _attachment(uri: str, text: str) -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    body = text if text.endswith("\n") else text + "\n"
    return f"{_name(uri)}:\n{fence}\n{body}{fence}"


def _name(uri: str) -> str:
    path = _local_path(uri)
    return str(path) if path is not None else uri
