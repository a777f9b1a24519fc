"""The writer thread: owns the database, applies writes in order, those queued
together in one transaction, and answers reads in their place in the queue, so a
read sees every write asked for before it.

The event loop only ever puts jobs on a queue, so a slow or locked disk delays
the writes and reads, never the loop; one thread also means one hand-off per
job, where a thread pool would wake several threads that fight for the GIL. The thread also opens the database (a corrupt file
is moved aside, an unusable disk means memory) and, if the disk fails later,
carries the workspace's chats into memory and goes on there.
"""

from __future__ import annotations

import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import attrs

from ollama_chatd.store import reads
from ollama_chatd.store.database import (
    LOCKED_DEADLINE_S,
    Database,
    FileDatabase,
    MemoryDatabase,
    classify,
    file_identity,
    move_aside,
)
from ollama_chatd.store.schema import SchemaTooNew

logger = logging.getLogger(__name__)

Work = Callable[[sqlite3.Connection], None]
MAX_BATCH = 256  # writes applied in one transaction at most


@attrs.frozen
class _Write:
    what: str
    work: Work


@attrs.frozen
class _Read:
    query: Callable[[sqlite3.Connection], Any]
    answer: Future[Any]


@attrs.frozen
class _Barrier:
    done: Future[None]


@attrs.frozen
class _Stop:
    done: Future[None]


_Job = _Write | _Read | _Barrier | _Stop


class Writer:
    def __init__(self, path: Path | None, workspace: str, report_degraded: Callable[[str], None]):
        self._path = path
        self._workspace = workspace
        self._report_degraded = report_degraded
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ollama-chatd-store", daemon=True)
        self._stopping = False
        self._retired: list[Database] = []
        self._database: Database | None = None  # opened, used and closed by the thread
        self.degraded = False

    def start(self) -> None:
        self._thread.start()

    def submit(self, what: str, work: Work) -> None:
        if self._stopping:
            logger.debug("store closed: %s not saved", what)
            return
        self._jobs.put(_Write(what, work))

    def read(self, query: Callable[[sqlite3.Connection], Any]) -> Future[Any]:
        """The future result of `query`, run after every write submitted before it."""
        answer: Future[Any] = Future()
        if self._stopping:
            answer.set_exception(RuntimeError("the chat store is closed"))
        else:
            self._jobs.put(_Read(query, answer))
        return answer

    def barrier(self) -> Future[None]:
        """A future done once every job submitted before it has been applied."""
        done: Future[None] = Future()
        if self._stopping:
            done.set_result(None)
        else:
            self._jobs.put(_Barrier(done))
        return done

    def stop(self) -> Future[None]:
        done: Future[None] = Future()
        if self._stopping:
            done.set_result(None)
            return done
        self._stopping = True
        self._jobs.put(_Stop(done))
        return done

    def _run(self) -> None:
        self._open()
        job: _Job | None = None
        while True:
            job = job or self._jobs.get()
            if isinstance(job, _Write):
                batch, job = self._writes_queued_after(job)
                self._apply_all(batch)
            elif isinstance(job, _Read):
                self._answer(job)
                job = None
            elif isinstance(job, _Barrier):
                _settle(job.done)
                job = None
            else:
                self._close()
                _settle(job.done)
                return

    def _writes_queued_after(self, first: _Write) -> tuple[list[_Write], _Job | None]:
        """`first` and the writes queued behind it; and the job that ended them, if any."""
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if not isinstance(job, _Write):
                return batch, job
            batch.append(job)
        return batch, None

    def _answer(self, job: _Read) -> None:
        if not job.answer.set_running_or_notify_cancel():
            return  # the reader gave up (its request was cancelled)
        assert self._database is not None
        try:
            job.answer.set_result(self._database.read(job.query))
            return
        except Exception as error:
            # Like a write: a disk that fails sends the store to memory; any other
            # failure (a bad row, a bug) reaches the reader.
            if self.degraded or classify(error) == "other":
                job.answer.set_exception(error)
                return
            self._switch_to_memory(error)
        try:
            job.answer.set_result(self._database.read(job.query))
        except Exception as error:
            job.answer.set_exception(error)

    def _apply_all(self, batch: list[_Write]) -> None:
        """One transaction for writes that queued up together (32 chats starting at
        once are one commit, not 32); if it fails, each is tried alone, so one bad
        write does not cost the others."""
        if len(batch) == 1:
            self._apply(batch[0])
            return
        assert self._database is not None
        try:
            self._database.write(lambda connection: [job.work(connection) for job in batch])
        except Exception:  # rolled back as a whole: nothing was applied twice
            for job in batch:
                self._apply(job)

    def _open(self) -> None:
        if self._path is None:
            self._database = MemoryDatabase()
            return
        try:
            self._database = _open_file(self._path, self._report_degraded)
        except Exception as error:  # noqa: BLE001 -- whatever the disk does, the daemon goes on in memory
            self._database = MemoryDatabase()
            self._degrade(error)

    def _apply(self, job: _Write) -> None:
        assert self._database is not None
        try:
            self._database.write(job.work)
            return
        except Exception as error:
            if self.degraded or classify(error) == "other":
                logger.exception("could not save the %s", job.what)
                return
            self._switch_to_memory(error)
        try:
            self._database.write(job.work)
        except Exception:
            logger.exception("could not save the %s", job.what)

    def _switch_to_memory(self, error: Exception) -> None:
        """Go on in memory, with this workspace's chats so far, so the running chats lose nothing."""
        assert self._database is not None
        disk, memory = self._database, MemoryDatabase()
        try:
            rows = disk.read(functools.partial(reads.workspace_rows, workspace=self._workspace))
            memory.write(functools.partial(reads.insert_rows, rows=rows))
        except Exception:
            logger.warning("could not carry this workspace's chats into memory", exc_info=True)
        self._retired.append(disk)
        self._database = memory
        self._degrade(error)

    def _degrade(self, error: Exception) -> None:
        self.degraded = True
        message = (
            f"Chat history cannot be saved: {self._path} {_failure(error)}. "
            "This session's chats are kept in memory only and will be lost when the daemon stops."
        )
        logger.warning("%s", message)
        logger.debug("the failure that made the store go to memory", exc_info=error)
        self._report_degraded(message)

    def _close(self) -> None:
        for database in (*self._retired, self._database):
            try:
                if database is not None:
                    database.close()
            except Exception:
                logger.warning("could not close the chat database", exc_info=True)


def _settle(done: Future[None]) -> None:
    # The waiter may have given up (its turn was cancelled): that must not kill the thread.
    if done.set_running_or_notify_cancel():
        done.set_result(None)


def _open_file(path: Path, tell_user: Callable[[str], None]) -> FileDatabase:
    """Open the database file; one that is unreadable is moved aside for a fresh one
    (and the user told, since their chats seem to vanish)."""
    identity = file_identity(path)
    try:
        return FileDatabase.open(path)
    except Exception as error:
        if classify(error) != "corrupt":
            raise
        moved = move_aside(path, identity)
        if moved is not None:
            message = f"the chat database {path} could not be read ({error}); moved it aside to {moved} and started a new one"
            logger.warning("%s", message)
            tell_user(message)
    # A second failure is not retried: the caller falls back to memory, never a loop.
    return FileDatabase.open(path)


def _failure(error: Exception) -> str:
    """The end of a sentence starting with the database's path."""
    if isinstance(error, SchemaTooNew):
        return f"is not usable: {error}"
    kind = classify(error)
    if kind == "busy":
        return f"stayed locked by another program for over {LOCKED_DEADLINE_S:.0f} s"
    if kind == "corrupt":
        return f"became unreadable ({error})"
    code = getattr(error, "sqlite_errorcode", 0) & 0xFF
    if code == sqlite3.SQLITE_READONLY:
        return "is read-only"
    if code == sqlite3.SQLITE_FULL:
        return "cannot grow: the disk is full"
    return f"cannot be written ({error})"
