"""The read models as they were at a past moment: the store replayed up to it.

``replay_as_of`` copies every stored event of the store whose own time is at or before the
moment into a temporary SQLite store, batch by batch, and after each batch lets the real
projections (the runner, the same code that keeps the live read models) apply it there, so
their tables are built from zero; then it reads the figures an auditor asks for: orders and
payments by status, and the escrow ledger's trial balance.

Which events belong to the moment:

- Each event is judged by its own timestamp (the time the command that wrote it read from
  the clock), not by where it sits in the log. Commits normally land in time order, so the
  events up to the moment are a prefix of the log; the whole log up to its head is still
  read, so an event committed late (a slow transaction) is kept if its time is early.
- An aggregate's history is cut at its first event later than the moment: none of its
  later events is kept even if it carries an earlier time (only clocks stepping back
  across processes could do that). It is what ``GET /v1/orders/{id}?asOf=`` does for one
  order, and it keeps every kept history gap-free, so the projections never see version
  ``n + 1`` without ``n``.
- The copied events keep their bytes and their notification ids, so positions in the read
  models (and the audit chain's links) are those of the live store.

The temporary store is an ordinary ``LedgerApp`` store on SQLite, whatever the source's
backend, configured with the source's transcoder, compressor and cipher so it decodes the
copied bytes (checked on the first event). The caller owns ``workdir`` and deletes it.

On a machine with two cores or more, a long log is replayed by two processes: this one
reads and judges the log and hands each batch it keeps to a second process, which copies it
into a store of its own and applies the orders projection (the heaviest: about as long as
the copy and all the others together) there, while this one does the same with the others;
the second store's tables are then moved into the first.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Notification
from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.domain.values import OrderStatus, PaymentStatus
from ledger.service import LedgerApp
from projections.base import Projection
from projections.escrow_queries import EscrowQueries
from projections.models.postings import balance_of
from projections.queries import ReadModels
from projections.registry import all_projections, build_runner

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: ``copying`` (log position read of the source's head),
then ``applying`` (position the projections reached of the copied head)."""

SUMMARY_PROJECTIONS = ("escrow", "orders", "payments")
"""The projections the summary reads; the others are not replayed unless asked for."""
SECOND_PROCESS = frozenset({"orders", "gigs"})
"""Applied by the second process when there is one (see the module's docstring)."""
PARALLEL_FROM = 20_000
"""Below this many events in the log a second process costs more (starting an interpreter,
about 0.3 s) than it saves."""
READ_BATCH = 10_000
APPLY_BATCH = 10_000
QUEUED_BATCHES = 4
"""Batches kept for the second process while it is busy; then the copy waits for it."""
TRANSCODING_KEYS = (
    "MAPPER_TOPIC",
    "TRANSCODER_TOPIC",
    "COMPRESSOR_TOPIC",
    "CIPHER_TOPIC",
    "CIPHER_KEY",
)
"""What decides how stored bytes decode (``eventsourcing.persistence.InfrastructureFactory``):
copied from the source's environment into the temporary store's, and nothing else."""
_TIMESTAMP_PREFIX = b'{"timestamp":{"_type_":"datetime_iso","_data_":"'


@dataclass(frozen=True)
class StatusFigures:
    """One status: how many, and their amounts summed (integer centimes)."""

    count: int = 0
    amount: int = 0
    refunded: int = 0
    """Payments only: what was refunded of them."""


@dataclass(frozen=True)
class AccountFigures:
    account: str
    debits: int
    credits: int

    @property
    def balance(self) -> int:
        """With the account's natural sign (as ``ledger books trial-balance`` shows it)."""
        return balance_of(self.account, self.debits, self.credits)


@dataclass(frozen=True)
class AsOfSummary:
    """The read models' figures at ``moment``, and how the replay went."""

    moment: datetime
    events: int
    """Events replayed: those at or before ``moment``."""
    position: int
    """The notification id of the last event replayed (0 when none)."""
    head: int
    """The source's head when the replay read it: events after it were not looked at."""
    later: int
    """Events up to ``head`` left out: later than ``moment`` (or after a later event of
    their aggregate)."""
    orders: dict[str, StatusFigures]
    """Every order status, with the orders' total amounts."""
    payments: dict[str, StatusFigures]
    """Every payment status, with the amounts and what was refunded of them."""
    accounts: list[AccountFigures]
    debits: int
    credits: int
    unbalanced: list[str]
    """Journal entries whose own debits and credits differ (an auditor expects none)."""
    seconds: float
    """The whole replay's, copying and applying (which overlap)."""
    projections: tuple[str, ...] = field(default=SUMMARY_PROJECTIONS)

    @property
    def balanced(self) -> bool:
        """Total debits equal total credits, and so does every entry."""
        return self.debits == self.credits and not self.unbalanced

    @property
    def rate(self) -> float:
        """Events replayed per second, copying and applying together."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


def replay_as_of(
    app: LedgerApp,
    moment: datetime,
    workdir: Path,
    progress: Progress | None = None,
    projections: Iterable[str] | None = SUMMARY_PROJECTIONS,
    parallel: bool | None = None,
) -> AsOfSummary:
    """Replay ``app``'s store up to ``moment`` into new SQLite stores in ``workdir``
    through the projections named (``None``: all of them) and read the figures there.

    With ``parallel`` (by default when the log holds ``PARALLEL_FROM`` events or more and
    this machine has two cores or more), a second process applies the heaviest projections
    (``SECOND_PROCESS``) to a copy of its own, batch by batch, while this one applies the
    others; the second's tables are then moved into this one's store (``workdir /
    "as-of.db"``, which holds every replayed table at the end either way).

    Raises:
        ValueError: ``moment`` has no timezone; an unknown projection; ``workdir`` already
            holds a replay.
        RuntimeError: the temporary store cannot decode the source's events; the second
            process failed (its traceback is in the message).
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the moment needs a timezone")
    known = {projection.name: projection for projection in all_projections(app)}
    names = sorted(known if projections is None else set(projections))
    unknown = set(names) - set(known)
    if unknown:
        raise ValueError(f"unknown projections: {', '.join(sorted(unknown))}")
    paths = (workdir / "as-of.db", workdir / "as-of-side.db")
    for path in paths:
        if path.exists():
            raise ValueError(f"{path} exists: give each replay a fresh directory")
    head = app.recorder.max_notification_id() or 0
    second = [name for name in names if name in SECOND_PROCESS]
    first = [name for name in names if name not in SECOND_PROCESS]
    if parallel is None:
        parallel = head >= PARALLEL_FROM and _cores() > 1
    if not (parallel and first and second):
        first, second = names, []
    report = _Report(progress, head)
    started = time.perf_counter()
    with ExitStack() as stack:
        other, theirs = None, _topics([known[name] for name in second])
        if second:  # first, so that it loads while this process opens its store
            other = stack.enter_context(_Second(target_env(app, paths[1]), second))
            report.other = other
        result = stack.enter_context(open_target(app, paths[0]))
        runner = build_runner(result, batch_size=APPLY_BATCH)
        stack.callback(runner.stop)

        def apply(rows: list[Row]) -> None:
            """Each batch as soon as it is copied: to the second process (only the events
            its projections read), then here."""
            if other is not None:
                other.send(
                    [row for row in rows if row[3] in theirs] if theirs else rows, rows[-1][0]
                )
            runner.run_once(first)
            report.applying(rows[-1][0])

        copied = copy_until(app, result, moment, report.copying, head, apply)
        if other is not None:
            other.finish()
            other.wait(report.waiting)
            tables = [table for name in second for table in known[name].tables]
            _merge(result, paths[1], tables, second, copied.position)
        seconds = time.perf_counter() - started
        models = ReadModels(runner.db)
        return _summary(models, moment, copied, names, seconds)


def target_env(app: LedgerApp, path: Path) -> dict[str, str]:
    """The ``eventsourcing`` environment of a temporary store at ``path`` that decodes
    ``app``'s bytes: the source's transcoding settings, and SQLite."""
    prefix = f"{app.name.upper()}_"
    env = {k: v for k, v in app.env.items() if k.removeprefix(prefix) in TRANSCODING_KEYS}
    env.update({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    return env


def open_target(app: LedgerApp, path: Path) -> LedgerApp:
    """A ``LedgerApp`` on a new SQLite store at ``path`` that decodes ``app``'s bytes, with
    no gateway (it never runs a command)."""
    target = LedgerApp(target_env(app, path))
    source, copy = app.mapper, target.mapper
    pairs = [
        (source, copy),
        (source.transcoder, copy.transcoder),
        (source.compressor, copy.compressor),
        (source.cipher, copy.cipher),
    ]
    if any(type(a) is not type(b) for a, b in pairs):
        target.close()
        raise RuntimeError("the temporary store would not encode events as the source does")
    _no_syncs(target)
    return target


def _topics(projections: Sequence[Projection]) -> frozenset[str]:
    """The topics ``projections`` read (none: every topic)."""
    if any(getattr(projection, "reads_everything", False) for projection in projections):
        return frozenset()
    return frozenset(topic for projection in projections for topic in projection.topics)


def _merge(
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


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


class _Report:
    """Turns the phases' positions into ``Progress`` calls: ``applying`` is the position
    every projection has reached, in this process and in the second one."""

    def __init__(self, progress: Progress | None, head: int) -> None:
        self.progress = progress
        self.head = head
        self.other: _Second | None = None
        self._mine = 0

    def copying(self, position: int, head: int) -> None:
        if self.other is not None:
            self.other.check()  # keep its messages flowing; no point going on if it failed
        if self.progress is not None:
            self.progress("copying", position, head)

    def applying(self, position: int) -> None:
        self._mine = position
        if self.other is not None:
            self.other.poll()
            position = min(position, self.other.position)
        if self.progress is not None:
            self.progress("applying", position, self.head)

    def waiting(self) -> None:
        """Only the second process moves now."""
        self.applying(self._mine)


class _Second:
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

    def __enter__(self) -> _Second:
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
    """The second process's work (``_Second``)."""
    try:
        with LedgerApp(env) as store:
            _no_syncs(store)
            runner = build_runner(store, batch_size=APPLY_BATCH)
            try:
                insert = _inserter(store)
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


def _no_syncs(target: LedgerApp) -> None:
    """Let the temporary store's commits skip ``fsync`` (a crash loses nothing of value: it
    is deleted anyway). Set on the connection the replay uses (it runs in one thread, so
    the pool hands the same one back); any other would only be slower, not different."""
    recorder = target.recorder
    assert isinstance(recorder, SQLiteApplicationRecorder)
    with recorder.datastore.get_connection(commit=True) as connection:
        connection.cursor().execute("PRAGMA synchronous = OFF")


@dataclass(frozen=True)
class Copied:
    events: int
    position: int
    head: int
    later: int


Row = tuple[int, str, int, str, bytes]
"""A stored event as the SQLite events table holds it: notification id, aggregate id,
version, topic, state."""


def copy_until(
    app: LedgerApp,
    target: LedgerApp,
    moment: datetime,
    progress: Callable[[int, int], None] | None = None,
    head: int | None = None,
    also: Callable[[list[Row]], None] | None = None,
) -> Copied:
    """Copy ``app``'s events of time ``moment`` or earlier (up to ``head``, by default the
    head now) into ``target``, bytes and notification ids unchanged, in log order (the
    rules are the module's). Each batch kept is also handed to ``also``;
    ``progress(position, head)`` after each batch."""
    insert = _inserter(target)
    event_time = event_time_reader(app)
    if head is None:
        head = app.recorder.max_notification_id() or 0
    cut: set[Any] = set()
    events, last, later = 0, 0, 0
    with _no_gc_pauses():
        for batch in _log(app, head):
            kept = []
            for stored in batch:
                if stored.originator_id in cut or event_time(stored) > moment:
                    cut.add(stored.originator_id)
                else:
                    kept.append(stored)
            later += len(batch) - len(kept)
            if kept:
                if not events:
                    _check_decodes(app, target, kept[0])
                rows = [
                    (n.id, _stored_id(n.originator_id), n.originator_version, n.topic, n.state)
                    for n in kept
                ]
                insert(rows)
                events += len(kept)
                last = kept[-1].id
            if progress is not None:
                progress(batch[-1].id, head)
            if kept and also is not None:
                also(rows)
    if progress is not None:
        progress(head, head)
    return Copied(events, last, head, later)


def _inserter(target: LedgerApp) -> Callable[[list[Row]], None]:
    """Inserts rows into ``target``'s events table in one transaction, each with its own
    notification id (the SQLite recorder's is the table's ``rowid``)."""
    recorder = target.recorder
    if not isinstance(recorder, SQLiteApplicationRecorder):
        raise TypeError("the replay's stores are SQLite")
    datastore = recorder.datastore
    statement = (
        f"INSERT INTO {recorder.events_table_name}"
        " (rowid, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)"
    )

    def insert(rows: list[Row]) -> None:
        with datastore.transaction(commit=True) as cursor:
            cursor.executemany(statement, rows)

    return insert


def _log(app: LedgerApp, head: int) -> Iterator[Sequence[Notification]]:
    """The source's notification log up to ``head``, ``READ_BATCH`` events at a time. The
    next batch is read in a thread while the caller copies this one: the database and the
    driver (which lets go of the GIL while it waits) work meanwhile."""

    def read(start: int) -> Sequence[Notification]:
        return app.recorder.select_notifications(
            start=start, limit=READ_BATCH, stop=head, inclusive_of_start=False
        )

    if head <= 0:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="ledger-as-of") as reader:
        pending = reader.submit(read, 0)
        while True:
            batch = pending.result()
            if not batch:
                return
            more = len(batch) == READ_BATCH and batch[-1].id < head
            if more:
                pending = reader.submit(read, batch[-1].id)
            yield batch
            if not more:
                return


@contextmanager
def _no_gc_pauses() -> Iterator[None]:
    """Hold off the cyclic garbage collector while copying (as the runner does while it
    applies a batch): the copy allocates many objects that reference counting frees, and
    the collector would traverse every live one again and again for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stored_id(originator_id: UUID | str) -> str:
    """As the SQLite recorder stores an aggregate id (``SQLiteAggregateRecorder``)."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def _check_decodes(app: LedgerApp, target: LedgerApp, stored: Notification) -> None:
    """The temporary store reads the source's bytes as the source does (a cipher key or
    compressor that differed would only show later, in the middle of the projections)."""
    try:
        copy, original = target.mapper.to_domain_event(stored), app.mapper.to_domain_event(stored)
    except Exception as error:
        raise RuntimeError(f"the temporary store cannot decode the events: {error}") from error
    if type(copy) is not type(original) or vars(copy).keys() != vars(original).keys():
        raise RuntimeError("the temporary store decodes the events differently")


def event_time_reader(app: LedgerApp) -> Callable[[Notification], datetime]:
    """The time of a stored event, read as cheaply as is exact.

    Decoding a whole event (every nested value through the transcoder's hooks, then the
    event object) costs several times what the copy itself does; the time alone is the
    first field of the JSON the library's transcoder writes, so when the bytes are plain
    JSON it is sliced out and parsed as the transcoder would (``datetime_iso`` is
    ``datetime.fromisoformat``). Anything else -- compressed or encrypted bytes, another
    transcoder, another field order -- is decoded in full.
    """
    mapper = app.mapper
    decode = mapper.to_domain_event
    plain = (
        type(mapper.transcoder) is JSONTranscoder
        and mapper.compressor is None
        and mapper.cipher is None
    )
    prefix, size = _TIMESTAMP_PREFIX, len(_TIMESTAMP_PREFIX)
    parse = datetime.fromisoformat

    def decoded(stored: Notification) -> datetime:
        moment: datetime = getattr(decode(stored), "timestamp")  # noqa: B009 (any event type)
        return moment

    def event_time(stored: Notification) -> datetime:
        state = stored.state
        if plain and state.startswith(prefix):
            end = state.find(b'"', size)
            if end > 0:
                return parse(state[size:end].decode())
        return decoded(stored)

    return event_time


def _summary(
    models: ReadModels,
    moment: datetime,
    copied: Copied,
    names: Sequence[str],
    seconds: float,
) -> AsOfSummary:
    db = models.db
    orders = {status.value: StatusFigures() for status in OrderStatus}
    payments = {status.value: StatusFigures() for status in PaymentStatus}
    accounts: list[AccountFigures] = []
    books: EscrowQueries = models.escrow
    debits, credits, unbalanced = 0, 0, []
    if "orders" in names:
        for row in db.read(
            "SELECT status, COUNT(*) AS n, COALESCE(SUM(total_amount), 0) AS amount"
            " FROM orders GROUP BY status"
        ):
            orders[row["status"]] = StatusFigures(int(row["n"]), int(row["amount"]))
    if "payments" in names:
        for row in db.read(
            "SELECT status, COUNT(*) AS n, COALESCE(SUM(amount), 0) AS amount,"
            " COALESCE(SUM(refunded_amount), 0) AS refunded FROM payments GROUP BY status"
        ):
            payments[row["status"]] = StatusFigures(
                int(row["n"]), int(row["amount"]), int(row["refunded"])
            )
    if "escrow" in names:
        rows = db.read("SELECT account, debits, credits FROM escrow_accounts ORDER BY account")
        accounts = [
            AccountFigures(row["account"], int(row["debits"]), int(row["credits"])) for row in rows
        ]
        debits, credits = books.totals()
        unbalanced = books.unbalanced_entries()
    return AsOfSummary(
        moment=moment,
        events=copied.events,
        position=copied.position,
        head=copied.head,
        later=copied.later,
        orders=orders,
        payments=payments,
        accounts=accounts,
        debits=debits,
        credits=credits,
        unbalanced=unbalanced,
        seconds=seconds,
        projections=tuple(names),
    )
