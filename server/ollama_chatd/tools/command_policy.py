"""Which commands `run_command` may run without asking, and what they may see.

A command runs without `chat/requestPermission` only when the user allowed that
exact command string (`allow_always`) or it starts with one of `allowedCommands`,
whole words only ("pytest" allows "pytest -x tests", never "pytest-evil"). A prefix
never allows a command that the shell would read as more than one: any of
`; & | $ \\` < > ( ) { }`, a backslash or a line break in it means it is asked for.

The command's environment is the daemon's without the credentials the daemon holds.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping

from ollama_chatd.redaction import MIN_SECRET_CHARS

# Chaining, pipes, substitutions, redirections, subshells, escapes, line breaks.
_SHELL_SYNTAX = re.compile(r"[;&|$`<>(){}\\\n\r\x00]")
CREDENTIAL_VARIABLES = ("OLLAMA_API_KEY", "OPENAI_API_KEY")


class CommandPolicy:
    def __init__(self, allowed_prefixes: Iterable[str] = ()):
        self._prefixes = [words for prefix in allowed_prefixes if (words := _words(prefix))]
        self._always: set[str] = set()

    def runs_without_asking(self, command: str) -> bool:
        if command in self._always:
            return True
        if _SHELL_SYNTAX.search(command):
            return False
        words = _words(command)
        return words is not None and any(words[: len(prefix)] == prefix for prefix in self._prefixes)

    def allow_always(self, command: str) -> None:
        """The user said "always" for this command: this exact string, not the tool."""
        self._always.add(command)


def _words(command: str) -> list[str] | None:
    """The words as the shell splits them (quotes removed); None when it cannot."""
    try:
        return shlex.split(command)
    except ValueError:  # an unclosed quote
        return None


def command_environment(
    environ: Mapping[str, str], credential_variables: Iterable[str], secret_values: Iterable[str]
) -> dict[str, str]:
    """`environ` without the named variables nor any variable holding one of the secrets
    (a header value, an MCP server's token: however the user passed it in)."""
    names = set(credential_variables)
    secrets = [value for value in secret_values if len(value) >= MIN_SECRET_CHARS]
    return {
        name: value
        for name, value in environ.items()
        if name not in names and not any(secret in value for secret in secrets)
    }
