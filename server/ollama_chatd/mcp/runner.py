"""Running the model's calls of MCP tools, with the same rules as the workspace tools:
the user's permission first (unless the tool says it only reads), a status for
each step, output capped, cancellation honoured.

`CombinedTools` offers the workspace tools and the MCP tools to the engine as one
`ToolRunner`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from ollama_chatd import llm
from ollama_chatd.events import EventSink, ToolResult, ToolRunner
from ollama_chatd.mcp.config import ServerConfig
from ollama_chatd.mcp.connection import CallFailed, ServerUnavailable
from ollama_chatd.mcp.host import McpHost, OfferedTool
from ollama_chatd.tools.commands import CallApprover
from ollama_chatd.tools.runner import PREVIEW_CHARS, CallReporter
from ollama_chatd.tools.workspace import ToolError

DEFAULT_CALL_TIMEOUT = 120.0


def with_mcp_tools(
    tools: ToolRunner,
    servers: Sequence[ServerConfig],
    *,
    approver: CallApprover,
    cwd: Path,
    auto_approve: frozenset[str],
    call_timeout: float,
    on_problem: Callable[[str], None],
) -> tuple[ToolRunner, McpHost | None]:
    """`tools` and the tools of `servers`, which start now (in the background), with
    the host that runs them (to list and close); `tools` alone without servers.

    What a front-end calls once per session: `app.open_workspace` with the editor's
    `initializationOptions.mcpServers`, the ACP front-end with `config.from_acp()` of
    `session/new`'s `mcpServers`."""
    if not servers:
        return tools, None
    host = McpHost(servers, cwd=cwd, on_problem=on_problem)
    host.start()
    return CombinedTools(tools, McpTools(host, approver, auto_approve, call_timeout)), host


class McpTools:
    def __init__(
        self,
        host: McpHost,
        approver: CallApprover,
        auto_approve: frozenset[str] = frozenset(),
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
    ):
        self._host = host
        self._approver = approver
        self._allowed = set(auto_approve)
        self._call_timeout = call_timeout

    def specs(self) -> tuple[llm.ToolSpec, ...]:
        return self._host.specs()

    def owns(self, name: str) -> bool:
        return self._host.find(name) is not None

    async def run(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink) -> str | ToolResult:
        report = CallReporter(call_id, call, emit)
        report("pending")
        offered = self._host.find(call.name)
        assert offered is not None, "CombinedTools sends only the calls McpTools owns"
        try:
            if not await self._permitted(chat_id, call_id, call, offered, report):
                report("denied")
                return f"The user did not allow this call of {call.name}. Do not retry it; ask what they want instead."
            report("running")
            output = await self._host.call(offered, call.arguments, self._call_timeout)
        except (ServerUnavailable, CallFailed, ToolError) as error:
            report("failed", error=str(error))
            return f"Error: {error}"
        # Cancelled: the engine `skip`s this call, which reports its one final status.
        if output.is_error:
            report("failed", error=output.text[:PREVIEW_CHARS])
            return f"Error: {output.text}"
        report("completed", output=output.text[:PREVIEW_CHARS])
        return ToolResult(output.text, output.images) if output.images else output.text

    async def _permitted(
        self, chat_id: str, call_id: str, call: llm.ToolCall, offered: OfferedTool, report: CallReporter
    ) -> bool:
        if offered.tool.read_only or offered.name in self._allowed:
            return True
        report("awaiting_permission")
        title = f"Run {offered.tool.name} of the MCP server '{offered.connection.name}'"
        decision = await self._approver.ask_to_run(chat_id, call_id, call, title)
        if decision == "allow_always":
            self._allowed.add(offered.name)
        return decision != "deny"


class CombinedTools:
    """The workspace tools first, then the MCP tools, as one ToolRunner."""

    def __init__(self, workspace: ToolRunner, mcp: McpTools):
        self._workspace = workspace
        self._mcp = mcp

    def specs(self) -> tuple[llm.ToolSpec, ...]:
        return (*self._workspace.specs(), *self._mcp.specs())

    async def run(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink) -> str | ToolResult:
        runner = self._mcp if self._mcp.owns(call.name) else self._workspace
        return await runner.run(chat_id, call_id, call, emit)

    def skip(self, chat_id: str, call_id: str, call: llm.ToolCall, emit: EventSink, why: str) -> str:
        return self._workspace.skip(chat_id, call_id, call, emit, why)  # the same for every tool
