"""The projection runner: batched, exactly once, resumable, woken without busy polling.

For each projection it reads the notification log after the projection's position, up to
the head it saw *before* reading (the store's insert lock makes commit order equal id order,
so every id up to that head is either committed or a gap left by a rollback), applies the
batch and moves the position in one transaction. Events of topics a projection does not read
still count as processed, so its position reaches the head.

Catching up (and rebuilding) is where the time goes, so while one batch is applied the next
is already read and decoded in a thread (PostgreSQL only), and the garbage collector waits
until a batch is done.

Wake-ups: an in-process signal after each save, LISTEN/NOTIFY on PostgreSQL, and a slow poll
as a fallback. ``wait_for`` lets a reader block until the read models it uses have caught up
with a position (read-your-writes), woken by each committed batch rather than by a timer.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from eventsourcing.postgres import PostgresApplicationRecorder

from ledger.clock import iso, utc_now
from ledger.service import LedgerApp
from projections import tracking
from projections.base import Envelope, Projection
from projections.db import Database
from projections.postgres import PROJECTIONS_CHANNEL, Leadership, Listener

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Status:
    name: str
    position: int
    head: int
    leading: bool
    error: str | None

    @property
    def lag(self) -> int:
        """Notification ids between the head and this projection (gaps count too)."""
        return max(self.head - self.position, 0)


class ProjectionRunner:
    """Applies ``projections`` to the read models of ``app``'s store."""

    def __init__(
        self,
        app: LedgerApp,
        projections: Sequence[Projection],
        *,
        batch_size: int = 1_000,
        poll_interval: float = 2.0,
    ) -> None:
        self.app = app
        self.db = Database(app.recorder)
        self.projections = {p.name: p for p in projections}
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._positions: dict[str, int] = {}
        self._applying = threading.Lock()
        """One batch at a time (the batch read ahead belongs to the one applying)."""
        self._prefetched: _Prefetch | None = None
        self._errors: dict[str, str] = {}
        self._moved = threading.Condition()
        self._listeners: list[Callable[[str], None]] = []
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._applies = True
        recorder = app.recorder
        self._postgres = isinstance(recorder, PostgresApplicationRecorder)
        self._leadership: Leadership | None = None
        self._listener: Listener | None = None
        if isinstance(recorder, PostgresApplicationRecorder):
            self._leadership = Leadership(recorder)
            self._listener = Listener(recorder, self._wake.set, self._refresh)
        self.setup()
        app.on_saved(lambda _position: self._wake.set())

    # -- set-up and state -------------------------------------------------------------------

    def setup(self) -> None:
        """Create the tracking table and every projection's tables (idempotent). A
        projection whose tables have another shape than its code (``Projection.version``)
        is dropped and starts again from position 0: the runner rebuilds it from the log."""
        with self.db.transaction() as txn:
            txn.lock_schema()
            tracking.create(txn, list(self.projections))
            for projection in self.projections.values():
                stored = tracking.stored_version(txn, projection.name)
                if stored is not None and stored != projection.version:
                    log.warning(
                        "projection %s: tables are version %s, code is %s; rebuilding",
                        projection.name,
                        stored,
                        projection.version,
                    )
                    projection.drop(txn)
                    tracking.reset(txn, projection.name)
                for statement in projection.schema():
                    txn.execute(statement)
                tracking.record_version(txn, projection.name, projection.version)
        self._refresh()

    def _refresh(self) -> None:
        """Re-read every position (another process may have moved those it leads)."""
        positions = tracking.positions(self.db)
        with self._moved:
            self._positions.update(positions)
            self._moved.notify_all()

    def leading(self) -> set[str]:
        """The projections this process applies (all of them, except on PostgreSQL where
        another process may hold some)."""
        if not self._applies:
            return set()
        if self._leadership is None:
            return set(self.projections)
        return self._leadership.claim(self.projections)

    def status(self) -> list[Status]:
        self._refresh()
        head = self.app.recorder.max_notification_id() or 0
        leading = self.leading()
        return [
            Status(n, self._positions.get(n, 0), head, n in leading, self._errors.get(n))
            for n in self.projections
        ]

    # -- applying ---------------------------------------------------------------------------

    def run_once(self, names: Iterable[str] | None = None) -> int:
        """Bring the projections this process leads up to the current head.

        Returns the number of events applied (an event read by two projections counts
        twice). Errors are raised to the caller.
        """
        wanted = set(names) if names is not None else set(self.projections)
        return self._catch_up(sorted(wanted & self.leading())).applications

    def _catch_up(self, names: Sequence[str], progress: Progress | None = None) -> Applied:
        done = Applied()
        while names:
            step = self._step(names)
            if step is None:
                return done
            done += step
            if progress is not None:
                progress(min(self._positions[n] for n in names), self._head())
        return done

    def _head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def _step(self, names: Sequence[str]) -> Applied | None:
        """Apply one batch to each of ``names`` in ONE transaction (one commit, however many
        projections); ``None`` when there was nothing to do."""
        with self._applying, no_gc_pauses():
            try:
                return self._step_locked(names)
            except BaseException:
                self._take_prefetched(None)
                raise

    def _step_locked(self, names: Sequence[str]) -> Applied | None:
        olds = {name: self._positions.get(name, 0) for name in names}
        start = min(olds.values())
        topics = self._topics(names)
        read = self._take_prefetched((start, topics, self.batch_size))
        if read is None or not read.batch:  # (nothing then; the head may have moved since)
            read = self._read(start, topics, self.batch_size)
        if read.head <= start:
            return None
        full = len(read.batch) == self.batch_size
        new = read.batch[-1][1].position if full else read.head
        if full and self._postgres:  # more to come: read it while this batch is applied
            key = (new, topics, self.batch_size)
            self._prefetched = _Prefetch(key, lambda: self._read(*key))
        try:
            applied = self._apply(names, olds, new, read.batch)
        except _LostRace:
            self._take_prefetched(None)
            self._refresh()  # another runner moved a position: nothing was written, re-read
            return Applied()
        for name in names:
            self._set_position(name, new)
        return Applied(len(read.batch), applied)

    def _topics(self, names: Sequence[str]) -> tuple[str, ...]:
        """The topics to read for ``names``; none (every topic) when one reads everything."""
        projections = [self.projections[name] for name in names]
        if any(projection.reads_everything for projection in projections):
            return ()
        return tuple(sorted({t for projection in projections for t in projection.topics}))

    def _read(self, start: int, topics: Sequence[str], limit: int) -> _Read:
        """The (decoded) notifications of ``topics`` after ``start``: up to ``limit`` of them,
        and none after the head as it was before reading (so none can appear later)."""
        head = self._head()
        if head <= start:
            return _Read(head, [])
        notifications = self.app.recorder.select_notifications(
            start=start, limit=limit, stop=head, topics=topics, inclusive_of_start=False
        )
        decode = self.app.mapper.to_domain_event
        return _Read(head, [(n.topic, Envelope(n.id, decode(n), n)) for n in notifications])

    def _take_prefetched(self, key: tuple[int, tuple[str, ...], int] | None) -> _Read | None:
        """The batch read ahead, if it was read for ``key``; drops it either way."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is None:
            return None
        read = prefetched.result()
        return read if prefetched.key == key else None

    def _apply(
        self,
        names: Sequence[str],
        olds: dict[str, int],
        new: int,
        batch: Sequence[tuple[str, Envelope]],
    ) -> int:
        applied = 0
        with self.db.transaction() as txn:
            for name in names:
                if olds[name] >= new:
                    continue
                projection = self.projections[name]
                topics = set(projection.topics)
                mine = [
                    e
                    for t, e in batch
                    if (projection.reads_everything or t in topics) and e.position > olds[name]
                ]
                if not tracking.advance(txn, name, olds[name], new, iso(utc_now()) or ""):
                    raise _LostRace(name)
                projection.apply(mine, txn)
                applied += len(mine)
            if self._postgres:
                txn.execute(f"NOTIFY {PROJECTIONS_CHANNEL}")
        return applied

    def _set_position(self, name: str, position: int) -> None:
        with self._moved:
            self._positions[name] = max(position, self._positions.get(name, 0))
            self._moved.notify_all()
        for listener in self._listeners:
            listener(name)

    def on_moved(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(name)`` each time this process moves a projection on (the
        webhook dispatcher wakes when ``webhooks`` decided new deliveries)."""
        self._listeners.append(listener)

    # -- waiting ----------------------------------------------------------------------------

    def wait_for(self, position: int, timeout: float, names: Iterable[str] | None = None) -> bool:
        """Block until the named projections (default: all) have processed the log up to
        ``position``, or ``timeout`` seconds pass. Returns whether they got there."""
        wanted = list(names) if names is not None else list(self.projections)
        deadline = time.monotonic() + timeout
        with self._moved:
            while any(self._positions.get(n, 0) < position for n in wanted):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._moved.wait(remaining):
                    return all(self._positions.get(n, 0) >= position for n in wanted)
        return True

    # -- the background loop ----------------------------------------------------------------

    def start(self, apply: bool = True) -> None:
        """Run in a daemon thread until ``stop``. With ``apply=False`` (an API whose
        projections run in ``ledger worker``) only follow the positions others reach, so
        ``wait_for`` still answers: woken by NOTIFY on PostgreSQL, else by polling."""
        self._applies = apply
        if self._listener is not None:
            self._listener.start()
        self._thread = threading.Thread(target=self._loop, name="ledger-projections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._listener is not None:
            self._listener.stop()
        if self._leadership is not None:
            self._leadership.close()
        prefetched = self._prefetched
        if prefetched is not None:
            prefetched.result()  # let no reader use the store after the app closes it

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            leading = sorted(self.leading()) if self._applies else []
            if leading:
                self._guarded(leading)
            elif not self._applies:
                self._follow()
            self._wake.wait(self.poll_interval)

    def _follow(self) -> None:
        try:
            self._refresh()
        except Exception:  # a lost database must not end the loop
            log.exception("could not read the projections' positions; will retry")

    def _guarded(self, names: Sequence[str]) -> None:
        try:
            self._catch_up(names)
            self._errors.clear()
        except Exception as error:  # a projection bug or a lost database must not kill the loop
            if self._errors.get(names[0]) != repr(error):
                log.exception("projections %s failed; will retry", ", ".join(names))
            self._errors.update(dict.fromkeys(names, repr(error)))

    # -- rebuilding -------------------------------------------------------------------------

    def rebuild(
        self, names: Sequence[str], progress: Progress | None = None, batch_size: int = 10_000
    ) -> Applied:
        """Drop the named projections' tables and replay the whole log into them, in one
        pass that decodes each event once. Returns the events read and the applications.

        Raises:
            KeyError: no projection of that name.
            RuntimeError: another process applies one of them (PostgreSQL): stop it first.
        """
        projections = [self.projections[name] for name in names]
        busy = set(names) - self.leading()
        if busy:
            raise RuntimeError(
                f"{', '.join(sorted(busy))} applied by another process; stop it first"
            )
        with self.db.transaction() as txn:
            txn.lock_schema()
            for projection in projections:
                projection.drop(txn)
                for statement in projection.schema():
                    txn.execute(statement)
                tracking.reset(txn, projection.name)
        with self._moved:
            self._positions.update(dict.fromkeys(names, 0))
        saved, self.batch_size = self.batch_size, batch_size
        try:
            return self._catch_up(list(names), progress)
        finally:
            self.batch_size = saved


@dataclass(frozen=True)
class Applied:
    """What a pass over the log did: the ``events`` it read, and the ``applications`` (one
    event to one projection: an event that three projections read counts three times)."""

    events: int = 0
    applications: int = 0

    def __add__(self, other: Applied) -> Applied:
        return Applied(self.events + other.events, self.applications + other.applications)


@dataclass(frozen=True)
class _Read:
    head: int
    """The head of the log before reading: every id up to it is final."""
    batch: list[tuple[str, Envelope]]
    """Each notification's topic and its decoded event, in notification order."""


class _Prefetch:
    """A batch read and decoded in a thread of its own while the previous batch is applied:
    the database works on the previous batch's rows meanwhile, and psycopg lets go of the
    GIL while it waits. Only on PostgreSQL (on SQLite the two would contend for the GIL row
    by row, and an in-memory database has one connection)."""

    def __init__(self, key: tuple[int, tuple[str, ...], int], read: Callable[[], _Read]) -> None:
        self.key = key
        self._read = read
        self._value: _Read | None = None
        self._thread = threading.Thread(target=self._run, name="ledger-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._read()
        except Exception:  # the runner reads again itself, and meets the error there
            log.debug("reading ahead failed", exc_info=True)

    def result(self) -> _Read | None:
        self._thread.join()
        return self._value


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Hold off the cyclic garbage collector while a batch is applied.

    A batch allocates hundreds of thousands of objects (events, aggregates, rows) that
    reference counting frees; the collector, triggered by the allocations alone, would
    meanwhile traverse every live object again and again for nothing (about a fifth of a
    rebuild's time, measured). It runs once the batch is done instead. Process-wide, so
    restored only if it was on: concurrent users still end with it on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _LostRace(Exception):
    """Another runner moved a projection's position under us; the transaction rolls back."""
