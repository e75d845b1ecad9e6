"""The as-of replay's second process (``as_of``): on a machine with two cores or more it
applies the heaviest projections to a store of its own while the first process copies the
log and applies the others; its tables are then moved into the first store."""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.service import LedgerApp
from projections.as_of.copy import Row, inserter, no_syncs
from projections.registry import build_runner

SECOND_PROCESS = frozenset({"orders", "gigs"})
"""Applied by the second process when there is one (see the module's docstring)."""
PARALLEL_FROM = 20_000
"""Below this many events in the log a second process costs more (starting an interpreter,
about 0.3 s) than it saves."""
APPLY_BATCH = 10_000
QUEUED_BATCHES = 4
"""Batches kept for the second process while it is busy; then the copy waits for it."""


def merge(
    result: LedgerApp, side: Path, tables: Sequence[str], names: Sequence[str], position: int
) -> None:
    """Move ``tables`` from the store at ``side`` into ``result``'s, where the second
    process left them empty (both were created by the same code, so their columns line up),
    and record ``names`` as applied up to ``position`` (the events of other topics, which
    it was not sent, count as processed, as the runner counts them)."""
    recorder = result.recorder
    assert isinstance(recorder, SQLiteApplicationRecorder)
    with recorder.datastore.get_connection(commit=True) as connection:
        cursor = connection.cursor()
        cursor.execute("ATTACH DATABASE ? AS side", (str(side),))
        try:
            with connection.transaction(commit=True) as txn:
                for table in tables:
                    txn.execute(f"DELETE FROM main.{table}")
                    txn.execute(f"INSERT INTO main.{table} SELECT * FROM side.{table}")
                for name in names:
                    txn.execute(
                        "UPDATE main.projection_tracking SET position = ? WHERE name = ?",
                        (position, name),
                    )
        finally:
            cursor.execute("DETACH DATABASE side")


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


class SecondProcess:
    """The second process: it receives the batches this one keeps, inserts each into a
    store of its own and applies its projections to it at once, so it works while this
    process is still copying. It reports the position it reached, then that it is done,
    or its traceback.

    Started with ``spawn`` (a fresh interpreter: nothing of this process's connections
    or threads is inherited). Batches go through a bounded queue and a thread of their own,
    so the copy only waits when the second process lags ``QUEUED_BATCHES`` behind.
    """

    def __init__(self, env: dict[str, str], names: Sequence[str]) -> None:
        context = multiprocessing.get_context("spawn")
        theirs, self._batches = context.Pipe(duplex=False)
        self._reports, mine = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_second_replay,
            args=(theirs, mine, env, list(names)),
            name="ledger-as-of",
            daemon=True,
        )
        self._process.start()
        theirs.close()
        mine.close()
        self.names = list(names)
        self.position = 0
        self._outcome: tuple[str, str] | None = None
        self._queue: queue.Queue[tuple[list[Row], int] | None] = queue.Queue(QUEUED_BATCHES)
        self._sender = threading.Thread(target=self._send, name="ledger-as-of", daemon=True)
        self._sender.start()
        self._finished = False

    def __enter__(self) -> SecondProcess:
        return self

    def __exit__(self, *_: object) -> None:
        if self._outcome is None or self._outcome[0] != "done":
            self._process.terminate()  # this process gave up on it, or it failed
        self._process.join()
        self.finish()
        self._sender.join()
        self._process.close()
        self._reports.close()

    def send(self, rows: list[Row], position: int) -> None:
        """``rows`` to apply, and the position the batch reaches (rows may be fewer)."""
        self._queue.put((rows, position))

    def finish(self) -> None:
        """No more batches."""
        if not self._finished:
            self._finished = True
            self._queue.put(None)

    def _send(self) -> None:
        broken = False
        while True:
            batch = self._queue.get()
            if not broken:
                try:
                    self._batches.send(batch)
                except OSError:  # it died: its report says why; keep draining the queue
                    broken = True
            if batch is None:
                self._batches.close()
                return

    def poll(self, timeout: float = 0.0) -> bool:
        """Read what it said (waiting up to ``timeout`` for the first word); whether done."""
        try:
            while self._outcome is None and self._reports.poll(timeout):
                kind, value = self._reports.recv()
                if kind == "at":
                    self.position = int(value)
                else:
                    self._outcome = (kind, str(value))
                timeout = 0.0
        except EOFError:
            self._outcome = ("error", "it ended without a word")
        return self._outcome is not None

    def check(self) -> None:
        """Raises: RuntimeError, with its traceback, if it failed."""
        if self.poll() and self._outcome is not None and self._outcome[0] != "done":
            names = ", ".join(self.names)
            text = self._outcome[1]
            raise RuntimeError(f"the replay's second process ({names}) failed:\n{text}")

    def wait(self, progress: Callable[[], None]) -> None:
        """Until it is done, calling ``progress`` now and then.

        Raises: RuntimeError, with its traceback, when it failed."""
        while not self.poll(0.2):
            progress()
        self.check()


def _second_replay(
    batches: Connection, reports: Connection, env: dict[str, str], names: list[str]
) -> None:
    """The second process's work (``SecondProcess``)."""
    try:
        with LedgerApp(env) as store:
            no_syncs(store)
            runner = build_runner(store, batch_size=APPLY_BATCH)
            try:
                insert = inserter(store)
                while (batch := batches.recv()) is not None:
                    rows, position = batch
                    if rows:
                        insert(rows)
                        runner.run_once(names)
                    reports.send(("at", position))
            finally:
                runner.stop()
        reports.send(("done", ""))
    except BaseException:  # told to the parent, which raises it (not printed twice)
        reports.send(("error", traceback.format_exc()))
    finally:
        reports.close()
        batches.close()
