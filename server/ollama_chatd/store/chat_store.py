"""The store's API for the event loop: writes that return at once, reads that await."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import platformdirs

from ollama_chatd import llm
from ollama_chatd.store import reads, writes
from ollama_chatd.store.records import ChatSummary, MessageStatus, RevertPlan, StoredChat
from ollama_chatd.store.writer import Writer

logger = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_NAME = "chats.sqlite3"


def default_state_dir() -> Path:
    """Where the database lives unless `--state-dir` says otherwise (e.g. ~/.local/share/ollama-chatd)."""
    return Path(platformdirs.user_data_dir("ollama-chatd", appauthor=False))


class StoreReadError(Exception):
    """A read failed in a way that is not the disk's (those send the store to memory):
    a row this version cannot read, or a bug. Never answered as "no such chat"."""


def _ignore(message: str) -> None:
    pass


class ChatStore:
    """The chats of one workspace, kept in a database shared by every daemon of the user.

    Writes (`begin_turn` ... `delete`) return at once: they are applied in order by
    one writer thread. `await flush()` when a write must be durable before going
    on. Reads see every write asked for before them. No failure of the disk raises:
    an unusable disk turns the store into a memory one, reported once through
    `on_degraded`, which also hears when a corrupt database had to be moved aside.
    A read that fails otherwise raises `StoreReadError`.
    """

    def __init__(self, writer: Writer, workspace: str, clock: Callable[[], float]):
        # Use `open`.
        self._writer = writer
        self._workspace = workspace
        self._clock = clock
        self._closed = False

    @classmethod
    def open(
        cls,
        state_dir: Path | None,
        workspace: str,
        *,
        on_degraded: Callable[[str], None] = _ignore,
        clock: Callable[[], float] = time.time,
    ) -> ChatStore:
        """Open the store of `workspace` in `state_dir` (None: in memory only).

        Returns at once; the database is opened on the writer thread. `on_degraded`
        gets a message for the user when the store falls back to memory (at most
        once) or had to start afresh from a corrupt file, on the event loop running
        now (or on the writer thread if none is).
        """
        path = None if state_dir is None else Path(state_dir) / DATABASE_NAME
        writer = Writer(path, workspace, _on_current_loop(on_degraded))
        writer.start()
        return cls(writer, workspace, clock)

    @property
    def workspace(self) -> str:
        return self._workspace

    @property
    def degraded(self) -> bool:
        """True once the store fell back to memory because its disk failed."""
        return self._writer.degraded

    # -- writes: return at once, applied in order on the writer thread

    def begin_turn(self, chat_id: str, user: llm.Message, *, model: str, system: str | None = None) -> None:
        """Record the user's message; a new chat is created, with `system` as its first message."""
        self._submit_timed("prompt", writes.begin_turn, chat_id=chat_id, user=user, model=model, system=system)

    def checkpoint(self, chat_id: str, partial: llm.Message) -> None:
        """Save the answer streamed so far (status "streaming"), replacing this turn's last checkpoint."""
        self._submit_timed("partial answer", writes.checkpoint, chat_id=chat_id, partial=partial)

    def append(self, chat_id: str, message: llm.Message, status: MessageStatus = "complete") -> None:
        """Add a finished message: an assistant one replaces this turn's checkpoint, if any."""
        self._submit_timed(f"{message.role} message", writes.append, chat_id=chat_id, message=message, status=status)

    def end_turn(
        self,
        chat_id: str,
        *,
        stop_reason: str,
        usage: llm.Usage,
        status_of_partial: MessageStatus | None = None,
    ) -> None:
        """Record the turn's stop reason and usage. A checkpoint never replaced by a final
        answer gets `status_of_partial` (default: "cancelled" if `stop_reason` is
        "cancelled", else "failed")."""
        self._submit_timed(
            "end of turn",
            writes.end_turn,
            chat_id=chat_id,
            stop_reason=stop_reason,
            usage=usage,
            status_of_partial=status_of_partial,
        )

    def discard_turn(self, chat_id: str) -> None:
        """Forget the last turn (it produced nothing, so a retry must not repeat its
        prompt), and the chat if that was its only turn."""
        self._submit("discarded turn", writes.discard_turn, chat_id=chat_id)

    def before_change(self, chat_id: str, path: str, display_path: str, text: str | None, mode: int | None) -> None:
        """Record a file as it is before the chat's running turn changes it (`ChangeLog`)."""
        self._submit(
            "record of a file change", writes.before_change,
            chat_id=chat_id, path=path, display_path=display_path, text=text, mode=mode,
        )  # fmt: skip

    def after_change(self, chat_id: str, path: str, text: str | None) -> None:
        """Record what the running turn's change left in a file (None: deleted)."""
        self._submit("record of a file change", writes.after_change, chat_id=chat_id, path=path, text=text)

    def drop_turns(self, chat_id: str, first: int) -> None:
        """Forget the turns from the `first` (0-based) on, and the chat if none is left."""
        self._submit("reverted turns", writes.drop_turns, chat_id=chat_id, first=first)

    def rename(self, chat_id: str, title: str | None) -> None:
        """Set the title; an empty or None one restores the title derived from the first prompt."""
        self._submit("title", writes.rename, chat_id=chat_id, title=title)

    def delete(self, chat_id: str) -> None:
        self._submit("deletion", writes.delete, chat_id=chat_id)

    def _submit(self, what: str, write: Callable[..., None], **arguments: Any) -> None:
        self._writer.submit(what, functools.partial(write, workspace=self._workspace, **arguments))

    def _submit_timed(self, what: str, write: Callable[..., None], **arguments: Any) -> None:
        # The time is taken now, not when the write runs: a slow disk must not age the chat.
        self._submit(what, write, now=self._clock(), **arguments)

    # -- reads: run on the writer thread, after the writes asked for before them

    async def load(self, chat_id: str) -> StoredChat | None:
        return await self._read(reads.load, None, chat_id=chat_id)

    async def revert_plan(self, chat_id: str, first: int) -> RevertPlan | None:
        """What reverting the turns from the `first` (0-based) on touches; None: no such chat."""
        return await self._read(reads.revert_plan, None, chat_id=chat_id, first=first)

    async def exists(self, chat_id: str) -> bool:
        return await self._read(reads.exists, False, chat_id=chat_id)

    async def list_chats(self, limit: int = 50, before: str | None = None) -> list[ChatSummary]:
        """The most recently updated chats first; `before` is the `cursor` of the last
        chat of the previous page. Raises `InvalidCursor` (a ValueError) for a bad one."""
        if before is not None:
            reads.decode_cursor(before)
        return await self._read(reads.list_chats, [], limit=max(0, limit), before=before)

    async def flush(self) -> None:
        """Wait until every write asked for so far has been applied."""
        await asyncio.wrap_future(self._writer.barrier())

    async def close(self) -> None:
        """Apply the pending writes, then close the database."""
        self._closed = True
        await asyncio.wrap_future(self._writer.stop())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def _read(self, query: Callable[..., T], default: T, **arguments: Any) -> T:
        if self._closed:
            return default
        bound = functools.partial(query, workspace=self._workspace, **arguments)
        try:
            return await asyncio.wrap_future(self._writer.read(bound))
        except Exception as error:
            raise StoreReadError(f"could not read the chat database ({type(error).__name__}: {error})") from error


def _on_current_loop(callback: Callable[[str], None]) -> Callable[[str], None]:
    """`callback`, made callable from the writer thread: it runs on today's event loop."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None

    def call(message: str) -> None:
        try:
            callback(message)
        except Exception:
            logger.exception("on_degraded failed")

    def report(message: str) -> None:
        if loop is not None:
            try:
                loop.call_soon_threadsafe(call, message)
                return
            except RuntimeError:  # the loop is closed: nobody is waiting on it anymore
                pass
        call(message)

    return report
