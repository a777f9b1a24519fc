"""The composition root: the one place that builds the daemon's parts from its settings.

    front-ends (rpc/, acp/)  ->  app.py  ->  engine/, tools/, store/  ->  llm.py  <-  ollama/, openai/

A front-end turns its client's options into `Settings` and calls `open_workspace`
with what only it knows: the workspace (its folders, seen through the editor's
unsaved buffers), how to ask the user (`approver`) and how an allowed change
lands (`applier`). It gets back the engine and the store to speak to, and
releases them with `aclose()`. The model server is chosen in `backends.py`; the
command line's `models` and `doctor` use `build_backend` alone, and the ACP
front-end, which serves several workspaces at once, `build_backend` and `build_engine`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from ollama_chatd import llm
from ollama_chatd.backends import build_backend
from ollama_chatd.config import OptionError, ServeOptions, Settings
from ollama_chatd.engine.engine import ChatEngine
from ollama_chatd.engine.model_call import ModelCalls
from ollama_chatd.events import FileRestorer, RulesSource, ToolRunner
from ollama_chatd.mcp.config import HttpServer, ServerConfig
from ollama_chatd.redaction import secret_values
from ollama_chatd.store import ChatStore, default_state_dir
from ollama_chatd.tools.command_policy import CREDENTIAL_VARIABLES, command_environment
from ollama_chatd.tools.command_process import find_bwrap
from ollama_chatd.tools.commands import CallApprover, CommandSettings, RunCommand
from ollama_chatd.tools.rules import RulesFile
from ollama_chatd.tools.runner import Approver, EditApplier, WorkspaceTools
from ollama_chatd.tools.undo import Restorer
from ollama_chatd.tools.workspace import Workspace

if TYPE_CHECKING:
    from ollama_chatd.mcp.host import McpHost

__all__ = ["Parts", "build_backend", "build_engine", "command_tool", "open_workspace", "store_location"]

logger = logging.getLogger(__name__)


class UserApprover(Approver, CallApprover, Protocol):
    """Asks the user before a change to a file (with its diff) and before an MCP tool call."""


@attrs.frozen
class Parts:
    """What a front-end speaks to for one workspace."""

    settings: Settings
    workspace: Workspace
    backend: llm.ChatBackend
    store: ChatStore
    engine: ChatEngine
    model_calls: ModelCalls  # stateless calls to the model, beside the chats
    mcp: McpHost | None  # the MCP servers whose tools the model gets, if any
    files: FileRestorer  # puts files back when turns are reverted
    commands: RunCommand | None = None

    async def aclose(self) -> None:
        if self.commands is not None:
            self.commands.kill_all()
        if self.mcp is not None:
            await self.mcp.close()
        await self.backend.aclose()
        await self.store.close()


def open_workspace(
    settings: Settings,
    serve: ServeOptions,
    workspace: Workspace,
    *,
    approver: UserApprover,
    applier: EditApplier,
    on_problem: Callable[[str], None],
) -> Parts:
    """Build the backend, the store, the tools (the workspace's and the MCP servers'),
    the engine and the model calls for `workspace`; the MCP servers start now.

    `on_problem` hears what the user should know that is not part of any chat (chats
    kept in memory only, an MCP server that failed). Raises OptionError naming a
    setting that cannot be used.
    """
    backend = build_backend(settings)
    folder = workspace.folders[0].path
    store = ChatStore.open(store_location(serve, settings), str(folder), on_degraded=on_problem)
    commands = command_tool(settings, workspace, approver, settings.mcp_servers)
    tools: ToolRunner = WorkspaceTools(
        workspace, approver, applier, auto_approve=settings.auto_approve, commands=commands, changes=store
    )
    mcp = None
    if settings.mcp_servers:
        # The MCP host is loaded only for a workspace that has servers (issue 15: a small daemon).
        from ollama_chatd.mcp.runner import with_mcp_tools

        tools, mcp = with_mcp_tools(
            tools,
            settings.mcp_servers,
            approver=approver,
            cwd=folder,
            auto_approve=settings.auto_approve,
            call_timeout=settings.mcp_call_timeout,
            on_problem=on_problem,
        )
    engine = build_engine(settings, backend, store, tools, RulesFile(workspace))
    model_calls = ModelCalls(backend, engine.models, max_context=settings.max_context)
    return Parts(settings, workspace, backend, store, engine, model_calls, mcp, Restorer(workspace, applier), commands)


def command_tool(
    settings: Settings, workspace: Workspace, approver: CallApprover, mcp_servers: Sequence[ServerConfig]
) -> RunCommand:
    """`run_command` for `workspace`: its commands see the daemon's environment without
    the credentials the daemon holds (API keys, configured header values). Raises
    OptionError when the sandbox is asked for and bubblewrap is missing."""
    bwrap = find_bwrap() if settings.command_sandbox else None
    if settings.command_sandbox and bwrap is None:
        raise OptionError(
            "commandSandbox",
            "`commandSandbox` needs bubblewrap (`bwrap`), which is not installed: install it "
            "(Debian and Ubuntu: `apt install bubblewrap`) or set commandSandbox to false",
        )
    names = [*CREDENTIAL_VARIABLES, *([settings.api_key_env] if settings.api_key_env else [])]
    keys = {name: os.environ[name] for name in names if os.environ.get(name)}
    held = [settings.headers, keys, *(server.headers for server in mcp_servers if isinstance(server, HttpServer))]
    secrets = [secret for values in held for secret in secret_values(values)]
    return RunCommand(
        workspace,
        approver,
        CommandSettings(
            shell=os.environ.get("SHELL") or "/bin/sh",
            env=command_environment(os.environ, names, secrets),
            allowed_prefixes=settings.allowed_commands,
            timeout=settings.command_timeout,
            bwrap=bwrap,
        ),
    )


def build_engine(
    settings: Settings, backend: llm.ChatBackend, store: ChatStore, tools: ToolRunner, rules: RulesSource
) -> ChatEngine:
    """The engine of one store's chats, following the workspace's `rules` (AGENTS.md);
    a front-end serving several workspaces at once (acp/) shares one backend between
    them and brings its own `ToolRunner`."""
    return ChatEngine(
        backend,
        store,
        default_model=settings.default_model,
        tools=tools,
        max_tool_rounds=settings.max_tool_rounds,
        max_context=settings.max_context,
        rules=rules,
    )


def store_location(serve: ServeOptions, settings: Settings) -> Path | None:
    """The state directory (None: keep chats in memory). The command line wins."""
    if serve.in_memory:
        return None
    return serve.state_dir or (Path(settings.state_dir).expanduser() if settings.state_dir else default_state_dir())
