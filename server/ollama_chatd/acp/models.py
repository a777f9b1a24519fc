"""Model choice as ACP's session config option of category `model`."""

from __future__ import annotations

import asyncio
import logging

from acp import schema

from ollama_chatd import llm
from ollama_chatd.acp.session import Session

logger = logging.getLogger(__name__)

MODEL_OPTION = "model"
DESCRIBE_SECONDS = 3.0  # initialize must not wait long on a slow model server


async def config_options(session: Session) -> list[schema.SessionConfigOptionSelect]:
    """The model selector, offering the server's models; the session's model is current.

    A session without a model (no --model, no OLLAMA_CHATD_MODEL) takes the first
    installed one. When the server cannot be asked, the selector offers just the
    current model and the first prompt reports why the server is unreachable.
    """
    try:
        installed = [model.name for model in await session.engine.models.installed()]
    except llm.BackendError as error:
        logger.warning("cannot list the models: %s", error)
        installed = []
    if session.model is None and installed:
        session.model = installed[0]
    elif f"{session.model}:latest" in installed:  # the name Ollama lists it under
        session.model = f"{session.model}:latest"
    names = installed if session.model is None or session.model in installed else [session.model, *installed]
    return [
        schema.SessionConfigOptionSelect(
            id=MODEL_OPTION,
            name="Model",
            description="The model that answers in this chat",
            category="model",
            type="select",
            current_value=session.model or "",
            options=[schema.SessionConfigSelectOption(value=name, name=name) for name in names],
        )
    ] if names else []


async def sees_images(backend: llm.ChatBackend, model: str | None) -> bool:
    """Whether the default model takes images (unknown, or the server silent: no)."""
    if model is None:
        return False
    try:
        info = await asyncio.wait_for(backend.describe_model(model), DESCRIBE_SECONDS)
    except (llm.BackendError, TimeoutError) as error:
        logger.info("cannot tell whether %s sees images: %s", model, error)
        return False
    return info.capabilities is not None and "vision" in info.capabilities
