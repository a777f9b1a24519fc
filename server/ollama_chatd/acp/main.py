"""`ollama-chatd acp`: serve one ACP client on stdin/stdout until it closes them."""

from __future__ import annotations

import argparse
import asyncio

from acp import run_agent

from ollama_chatd.acp.agent import ChatAgent
from ollama_chatd.acp.projects import Projects
from ollama_chatd.app import build_backend
from ollama_chatd.config import InitializationOptions, Settings
from ollama_chatd.store import default_state_dir


def run(args: argparse.Namespace) -> int:
    settings = Settings.resolve(InitializationOptions(model=args.model))
    state_dir = None if args.no_store else (args.state_dir or default_state_dir())
    try:
        asyncio.run(_serve(settings, state_dir))
    except KeyboardInterrupt:
        pass
    return 0

async def _serve(settings: Settings, state_dir) -> None:
    backend = build_backend(settings)
    agent = ChatAgent(Projects(backend, settings, state_dir), settings.default_model, settings.auto_approve)
    try:
        await run_agent(agent)
    finally:
        await agent.close()
