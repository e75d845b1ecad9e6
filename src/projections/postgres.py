"""PostgreSQL only: one applier per projection, and wake-ups by LISTEN/NOTIFY.

``Leadership`` holds a session-level advisory lock per projection on a dedicated
connection: while this process holds it, no other process applies that projection; when
the process dies, its session ends and another runner's next attempt takes the lock over.

``Listener`` waits on the store's own notify channel (the library NOTIFYs on every insert)
and on ``ledger_projections`` (which runners NOTIFY when they commit a batch), so runners
wake at once on new events, and processes that do not lead a projection still learn when
it has moved, without polling.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder

PROJECTIONS_CHANNEL = "ledger_projections"
_LOCK_CLASS = 0x4C47  # "LG": the first key of our two-key advisory locks


def _connect(recorder: PostgresApplicationRecorder) -> psycopg.Connection[Any]:
    pool = recorder.datastore.pool  # the library builds it from a dict and a string
    kwargs: dict[str, Any] = dict(pool.kwargs)  # type: ignore[arg-type]
    kwargs.pop("row_factory", None)
    return psycopg.connect(str(pool.conninfo), autocommit=True, **kwargs)


def lock_key(name: str) -> int:
    """A stable signed 32-bit key for a projection name."""
    return zlib.crc32(name.encode()) - 2**31


class Leadership:
    """Advisory locks, one per projection, on one dedicated session."""

    def __init__(self, recorder: PostgresApplicationRecorder) -> None:
        self._recorder = recorder
        self._conn: psycopg.Connection[Any] | None = None
        self.held: set[str] = set()
        self._guard = threading.Lock()

    def claim(self, names: Iterable[str]) -> set[str]:
        """Try to take every lock not yet held; returns the names this process leads."""
        with self._guard:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn, self.held = _connect(self._recorder), set()
                else:
                    # A session killed by the server (restart, idle timeout, an operator)
                    # has lost its locks; only a round trip tells.
                    self._conn.execute("SELECT 1")
                for name in set(names) - self.held:
                    row = self._conn.execute(
                        "SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_CLASS, lock_key(name))
                    ).fetchone()
                    if row and row[0]:
                        self.held.add(name)
            except psycopg.Error:
                self.close_locked()
            return set(self.held)

    def close(self) -> None:
        with self._guard:
            self.close_locked()

    def close_locked(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self.held = None, set()


class Listener:
    """A daemon thread that calls ``on_events`` / ``on_projections`` when NOTIFYs arrive."""

    def __init__(
        self,
        recorder: PostgresApplicationRecorder,
        on_events: Callable[[], None],
        on_projections: Callable[[], None],
    ) -> None:
        self._recorder = recorder
        self._on = {recorder.channel_name: on_events, PROJECTIONS_CHANNEL: on_projections}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                with _connect(self._recorder) as conn:
                    for channel in self._on:
                        conn.execute(f'LISTEN "{channel}"')
                    while not self._stopping.is_set():
                        for notice in conn.notifies(timeout=0.5):
                            self._on[notice.channel]()
            except psycopg.Error:
                self._stopping.wait(1.0)  # the database went away: reconnect shortly
