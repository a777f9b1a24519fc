"""The state machine of `chat/toolCall` statuses (protocol/README.md section 10.5),
checked on everything a daemon sent in a test.

Every call starts `pending` (or is announced once, directly `cancelled`), moves only
along the documented arrows, and has at most one final status; `error` comes with
`failed` (optionally `denied` and `cancelled`), `output` only with `completed` (and
with `running`: run_command's output so far, repeated as it grows).
"""

from __future__ import annotations

from typing import Any

FINAL = frozenset({"completed", "failed", "denied", "cancelled"})
NEXT: dict[str | None, frozenset[str]] = {
    None: frozenset({"pending", "cancelled"}),
    "pending": frozenset({"running", "awaiting_permission", "failed", "cancelled"}),
    "awaiting_permission": frozenset({"running", "denied", "failed", "cancelled"}),
    "running": frozenset({"running", "completed", "failed", "cancelled"}),  # running: run_command's output so far
}
ERROR_ALLOWED = frozenset({"failed", "denied", "cancelled"})


def violations(messages: list[dict[str, Any]]) -> list[str]:
    """What in `messages` (as the daemon sent them) breaks the call status rules."""
    found: list[str] = []
    last: dict[tuple[str, str], str] = {}
    for message in messages:
        if message.get("method") != "chat/toolCall" or "id" in message:
            continue
        params = message["params"]
        call = (params["chatId"], params["callId"])
        status, before = params["status"], last.get(call)
        if status not in NEXT.get(before, frozenset()):
            found.append(f"call {call[1]} of chat {call[0]}: {before or 'start'} -> {status}")
        if status == "failed" and not params.get("error"):
            found.append(f"call {call[1]}: failed without an error")
        if "error" in params and status not in ERROR_ALLOWED:
            found.append(f"call {call[1]}: an error with status {status}")
        if "output" in params and status not in ("completed", "running"):
            found.append(f"call {call[1]}: an output with status {status}")
        last[call] = status
    return found


def statuses_by_call(messages: list[dict[str, Any]], chat_id: str) -> dict[str, list[str]]:
    """Each call's statuses in order, for the calls of `chat_id`."""
    calls: dict[str, list[str]] = {}
    for message in messages:
        if message.get("method") == "chat/toolCall" and message["params"]["chatId"] == chat_id:
            calls.setdefault(message["params"]["callId"], []).append(message["params"]["status"])
    return calls
