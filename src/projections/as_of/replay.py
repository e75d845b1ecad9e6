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

The copy lives in ``as_of.copy``, the second process in ``as_of.second``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ledger.domain.values import OrderStatus, PaymentStatus
from ledger.service import LedgerApp
from projections.as_of.copy import Copied, Row, copy_until, event_time_reader, no_syncs
from projections.as_of.second import (
    APPLY_BATCH,
    PARALLEL_FROM,
    SECOND_PROCESS,
    SecondProcess,
    cores,
    merge,
)
from projections.base import Projection
from projections.escrow.queries import EscrowQueries
from projections.escrow.rules import balance_of
from projections.read_models import ReadModels
from projections.registry import all_projections, build_runner

__all__ = [
    "SUMMARY_PROJECTIONS",
    "AsOfSummary",
    "StatusFigures",
    "event_time_reader",
    "replay_as_of",
]

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``: ``copying`` (log position read of the source's head),
then ``applying`` (position the projections reached of the copied head)."""

SUMMARY_PROJECTIONS = ("escrow", "orders", "payments")
"""The projections the summary reads; the others are not replayed unless asked for."""
TRANSCODING_KEYS = (
    "MAPPER_TOPIC",
    "TRANSCODER_TOPIC",
    "COMPRESSOR_TOPIC",
    "CIPHER_TOPIC",
    "CIPHER_KEY",
)
"""What decides how stored bytes decode (``eventsourcing.persistence.InfrastructureFactory``):
copied from the source's environment into the temporary store's, and nothing else."""


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
        """With the account's natural sign (as ``ledger escrow trial-balance`` shows it)."""
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
        parallel = head >= PARALLEL_FROM and cores() > 1
    if not (parallel and first and second):
        first, second = names, []
    report = _Report(progress, head)
    started = time.perf_counter()
    with ExitStack() as stack:
        other, theirs = None, _topics([known[name] for name in second])
        if second:  # first, so that it loads while this process opens its store
            other = stack.enter_context(SecondProcess(target_env(app, paths[1]), second))
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
            merge(result, paths[1], tables, second, copied.position)
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
    no_syncs(target)
    return target


def _topics(projections: Sequence[Projection]) -> frozenset[str]:
    """The topics ``projections`` read (none: every topic)."""
    if any(getattr(projection, "reads_everything", False) for projection in projections):
        return frozenset()
    return frozenset(topic for projection in projections for topic in projection.topics)


class _Report:
    """Turns the phases' positions into ``Progress`` calls: ``applying`` is the position
    every projection has reached, in this process and in the second one."""

    def __init__(self, progress: Progress | None, head: int) -> None:
        self.progress = progress
        self.head = head
        self.other: SecondProcess | None = None
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
    escrow: EscrowQueries = models.escrow
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
        debits, credits = escrow.totals()
        unbalanced = escrow.unbalanced_entries()
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
