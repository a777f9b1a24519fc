"""`run_command`: the model runs a shell command in the workspace, once the user allows it.

Asked for every time (the exact command is the prompt's title) unless the user said
"always" to that very command or it matches `allowedCommands` (`command_policy`);
`autoApprove` never covers it. While it runs, the output so far goes to the client a
few times a second as `running` updates; the model gets it capped (`command_output`)
with the exit code. A timeout or a cancel ends every process of the command
(`command_process`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import attrs

from ollama_chatd import llm
from ollama_chatd.events import Decision, ToolCallStatus

from .command_output import SHOWN_CHARS, CommandOutput
from .command_policy import CommandPolicy
from .command_process import RunningCommand, sandboxed, shell_argv, supervised
from .registry import check_arguments
from .workspace import ToolError, Workspace

RUN_COMMAND = "run_command"
PROGRESS_SECONDS = 0.25  # at most four `running` updates a second
DEFAULT_TIMEOUT_SECONDS = 120.0


class CallApprover(Protocol):
    async def ask_to_run(self, chat_id: str, call_id: str, call: llm.ToolCall, title: str) -> Decision:
        """Ask the user whether the call may run; raise ToolError when there is no way to ask."""
        ...


class Reporter(Protocol):
    def __call__(
        self, status: ToolCallStatus, *, output: str | None = None, error: str | None = None, output_length: int | None = None
    ) -> None: ...


@attrs.frozen
class CommandSettings:
    shell: str
    env: Mapping[str, str]  # the daemon's, without its credentials
    allowed_prefixes: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT_SECONDS  # the default, and the most a call may ask for
    bwrap: str | None = None  # the sandbox's program when it is on


class RunCommand:
    def __init__(self, workspace: Workspace, approver: CallApprover, settings: CommandSettings):
        self._workspace = workspace
        self._approver = approver
        self._settings = settings
        self._policy = CommandPolicy(settings.allowed_prefixes)
        self._running: set[RunningCommand] = set()

    def spec(self) -> llm.ToolSpec:
        return llm.ToolSpec(RUN_COMMAND, self._description(), _PARAMETERS)

    def _description(self) -> str:
        limit = f"{self._settings.timeout:g}"
        mode = (
            "It runs in a sandbox: files outside the workspace are read-only (use /tmp for scratch "
            "files) and there is no network."
            if self._settings.bwrap
            else "It runs with the user's rights and network access."
        )
        return (
            "Run a shell command in the workspace root, e.g. 'pytest -x' or 'npm test', and get its "
            "exit code and output (stdout and stderr together; long output keeps its beginning and "
            f"end). The user is asked to approve each command. It is stopped after {limit} seconds "
            f"(or the timeout you give, up to {limit}). No input can be typed into it. {mode}"
        )

    async def run(self, chat_id: str, call_id: str, call: llm.ToolCall, given: object, report: Reporter) -> str:
        """The result for the model; raises ToolError for a command that did not run."""
        arguments = check_arguments(self.spec(), given)
        command = arguments["command"]
        if not command.strip():
            raise ToolError("command is empty; give the shell command to run, e.g. 'pytest -x'")
        if "\x00" in command:
            raise ToolError("command contains a NUL character, which no shell command can hold; remove it")
        timeout = min(arguments.get("timeout") or self._settings.timeout, self._settings.timeout)
        if not self._policy.runs_without_asking(command):
            report("awaiting_permission")
            decision = await self._approver.ask_to_run(chat_id, call_id, call, command)
            if decision == "deny":
                report("denied")
                return "The user did not allow this command. Do not retry it; ask what they want instead."
            if decision == "allow_always":
                self._policy.allow_always(command)
        report("running")
        return await self._execute(command, timeout, report)

    async def _execute(self, command: str, timeout: float, report: Reporter) -> str:
        output = CommandOutput()
        root = self._workspace.folders[0].path
        try:
            process = await RunningCommand.start(self._argv(command, root), root, dict(self._settings.env), output)
        except OSError as error:
            raise ToolError(f"the command could not be started: {error.strerror or error} ({self._settings.shell})") from None
        self._running.add(process)
        progress = _Progress(output, report)
        try:
            finished = await process.wait(timeout)
            elapsed = time.monotonic() - process.started
            await process.end()  # what it left running in the background ends with it
        except asyncio.CancelledError:
            # Stopped: the grace period and SIGKILL still run, even if the turn is gone.
            await asyncio.shield(process.end())
            raise
        finally:
            progress.stop()
            self._running.discard(process)
        progress.flush()  # the output's end, so a client printing it live misses nothing
        ending = _ending(process.exit_code, elapsed)
        result = _result(command, output, ending)
        if not finished:
            reason = f"timed out after {timeout:g} s; the command and its processes were stopped"
            report("failed", error=reason)
            return f"{result}\nError: {reason}"
        report("completed", output=_preview(output, ending))
        return result

    def _argv(self, command: str, root: Path) -> list[str]:
        argv = shell_argv(command, self._settings.shell)
        if self._settings.bwrap is None:
            return supervised(argv)
        # The sandbox's PID namespace ends every process of the command already.
        return sandboxed(argv, self._settings.bwrap, [folder.path for folder in self._workspace.folders], root)

    def kill_all(self) -> None:
        """The daemon is exiting: end every command now."""
        for process in list(self._running):
            process.kill_now()


class CommandTimedOut(ToolError):
    """The call fails with the reason; the model gets the output so far too."""

    def __init__(self, reason: str, result: str):
        super().__init__(reason)
        self.result = f"{result}\nError: {reason}"


_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "description": "The shell command, e.g. 'pytest -x tests/test_app.py'"},
        "timeout": {"type": "integer", "description": "Seconds before it is stopped", "minimum": 1},
    },
    "required": ["command"],
}


class _Progress:
    """Sends the output so far (its last characters) when there is new output, at most
    every PROGRESS_SECONDS while the command runs, and once more when it has ended."""

    def __init__(self, output: CommandOutput, report: Reporter):
        self._output = output
        self._report = report
        self._sent = 0
        self._ticking = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS)
            self.flush()

    def flush(self) -> None:
        if self._output.shown_length != self._sent:
            self._sent = self._output.shown_length
            self._report("running", output=self._output.shown, output_length=self._sent)

    def stop(self) -> None:
        self._ticking.cancel()


def _ending(code: int | None, elapsed: float) -> str:
    seconds = f"after {elapsed:.1f} s"
    if code is None:
        return f"stopped {seconds}"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name} {seconds}"
    return f"exit code {code} {seconds}"


def _result(command: str, output: CommandOutput, ending: str) -> str:
    text = output.for_model().rstrip("\n") if output.total_bytes else "(no output)"
    return f"$ {command}\n{text}\n[{ending}]"


def _preview(output: CommandOutput, ending: str) -> str:
    """The end of the output and how it ended: what a person looks at first."""
    last = f"[{ending}]"
    if not output.shown:
        return last
    return output.shown[-(SHOWN_CHARS - len(last) - 1) :] + "\n" + last
