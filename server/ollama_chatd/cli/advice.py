"""What the command line tells its user to do, in its own terms: options such as
--model and --host, not the protocol's `chat/start` or `initializationOptions`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ollama_chatd import llm

START_OLLAMA = "start it with `ollama serve`, or pass --host ADDRESS (or set OLLAMA_HOST)"
START_OPENAI_SERVER = "start it, or pass --backend openai --base-url URL (or set OPENAI_BASE_URL)"
START_SERVER = {"ollama": START_OLLAMA, "openai": START_OPENAI_SERVER}
NO_MODEL = (
    "no model chosen: pass --model NAME, or set the OLLAMA_CHATD_MODEL environment variable "
    "(`ollama-chatd models` lists the installed ones)"
)
LIST_MODELS = "`ollama-chatd models` lists them (with the same --backend and --base-url)."
# The daemon's advice to an editor, and what a user of the command line does instead.
_EDITOR_ADVICE = {
    "ollama_unreachable": (". Start it", "; {start}"),
}


def unreachable(error: llm.BackendUnreachable, backend: str) -> str:
    """The sentence `chat` prints from the daemon's message, for the commands that ask the
    model server themselves (`models`, `doctor`)."""
    return f"Cannot reach {error.server} at {error.address} ({error.reason}); {START_SERVER[backend]}"


def in_cli_terms(message: str, data: Any, backend: str = "ollama") -> str:
    """The daemon's error `message`, its advice put in the command line's terms."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "no_model":
        return NO_MODEL
    if kind == "model_not_found" and backend == "openai":
        return f"{message} {LIST_MODELS}"  # Ollama's own advice names `ollama pull` and `ollama list`
    if kind in _EDITOR_ADVICE:
        cut, advice = _EDITOR_ADVICE[kind]
        if cut in message:
            return message.split(cut, 1)[0] + advice.format(start=START_SERVER[backend])
    return message
