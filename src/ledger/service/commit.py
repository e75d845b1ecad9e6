"""Group commit: the events of concurrent commands recorded in one transaction.

The store serialises its insert transactions (one table lock each, so that commit order is
notification order); with one command per transaction the write path is bound by that
lock and by one disk flush per command. Here commands still *decide* in their callers'
threads, and hand their pending events to one writer per process, which records whatever
has gathered — up to ``max_aggregates`` aggregates, waiting at most ``max_wait`` for more —
in one transaction. Each caller is answered only after that transaction committed, with the
positions of its own events.

A batch never fails an innocent command:

- two commands for the same aggregate are never in one batch (nor one writing an aggregate
  another one only read, ``service.reads``; many may read it): the later one is sent back
  to be decided again, once the batch that holds the earlier one has committed; so is a
  command decided on a version older than one this writer has already written (it
  remembers the versions of the last ``REMEMBERED`` aggregates it wrote), without a
  transaction failing for it. Both are ``Deferred``, which the command does not count as
  a race lost: a burst of commands on one aggregate is written one per transaction, in
  turn;
- on a version conflict the writer finds the commands whose aggregates moved on in the
  store (another process wrote them) and sends only those back; the rest commit without
  them;
- a failure of the store itself (connection lost, database down, a write lock held past
  its timeout) fails every command of the batch: nothing of it was written, and nobody's
  fault is the others'. It also fails, at once, the commands queued behind it: the store
  has already been given seconds (the library's retries on PostgreSQL, the lock timeout
  on SQLite), and each further batch would wait out the same retries before failing, every
  caller queued behind it waiting too; answered now, they can retry (503 with
  ``Retry-After``) when the store is back;
- any other failure halves the batch until the command that causes it fails alone;
- a failed transaction may have committed all the same, its acknowledgement lost (the
  connection died after COMMIT; the driver's retry then met the first attempt's rows as an
  ``IntegrityError``). So before any command of a failed insert is failed or sent back, the
  writer reads what the store holds at each (aggregate, version) the command wrote and
  compares it, bytes for bytes, with what it sent: a command found whole is answered as
  committed (with the positions found, and what follows a commit runs for it); one found in
  part, or whose events cannot be read, fails with ``OutcomeUnknown``; only one of which
  nothing was found gets the failure (it was not recorded).

With ``enabled=False`` each command is recorded in its caller's thread in a transaction of
its own, by the same code: the mode to compare and debug against. A command issued from the
writer's own thread (a listener told of a commit) is recorded the same way, inline.

Callers are answered as soon as their transaction committed; what follows a commit (cache,
snapshots, listeners) runs after that and can fail nobody.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from queue import Empty
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    Recording,
    StoredEvent,
)

from ledger.errors import OutcomeUnknown
from ledger.receipts import Receipt
from ledger.recent import Recent
from ledger.threads import Fed

log = logging.getLogger("ledger.commit")
REMEMBERED = 10_000
"""Aggregates whose last written version the writer remembers (least recently written
forgotten first): a command decided on an older version is sent back without trying the
store. One that is forgotten is still refused by the store, only at a higher cost."""


@dataclass(eq=False)
class Pending:
    """One command's decision on its way to the store.

    ``events`` and ``stored`` were taken from the aggregates and encoded in the caller's
    thread (the writer only inserts); ``reads``: the aggregates it decided on without
    writing them, at the version read (``service.reads``), which the insert checks are
    still the latest; ``outcome`` is answered with the command's recordings, or with the
    exception the command must see.
    """

    aggregates: Sequence[Aggregate]
    events: Sequence[Any]
    stored: Sequence[StoredEvent]
    receipt: Receipt | None = None
    reads: Mapping[UUID, int] = field(default_factory=dict)
    outcome: Future[list[Recording[UUID]]] = field(default_factory=Future)

    @property
    def ids(self) -> set[UUID]:
        return {aggregate.id for aggregate in self.aggregates}

    def first_versions(self) -> dict[UUID, int]:
        """Each aggregate's first new version: the store must hold the one before it."""
        first: dict[UUID, int] = {}
        for event in self.events:
            first.setdefault(event.originator_id, event.originator_version)
        return first

    def expected(self) -> dict[UUID, int]:
        """The version the store must hold of each aggregate the command wrote or read."""
        wrote = {aggregate_id: v - 1 for aggregate_id, v in self.first_versions().items()}
        return {**self.reads, **wrote}


class Deferred(IntegrityError):
    """Decided on a version of an aggregate that this writer was writing (an earlier
    command of the same batch) or had already replaced: to be decided again on what it
    wrote. Not a race lost to another process, and each one means another command on the
    aggregate went first."""


class Retried(IntegrityError):
    """An insert failed with the store's failure, was retried, and the retry met rows that
    are there: perhaps those of the first attempt, committed unacknowledged."""


Insert = Callable[[list[Pending]], Sequence[int]]
"""Inserts a batch's stored events in one transaction; returns their positions."""
After = Callable[[Sequence[Pending], list[Recording[UUID]]], None]
"""What follows a commit (cache, snapshots, listeners): never the commands' failure."""
Latest = Callable[[UUID], int]
"""The version the store holds of an aggregate (0 for none)."""
Read = Callable[[Sequence[tuple[UUID, int]], bool], Sequence[Notification]]
"""The events the store holds at the given (aggregate id, version) keys, with positions;
the flag: first wait for insert transactions still open to end (after a failure of the
store, when a COMMIT may still be on its way; not after an integrity error, whose rows
the store has already waited for)."""


@dataclass(frozen=True)
class Batching:
    """How commands are grouped: ``enabled`` (else one transaction per command), at most
    ``max_aggregates`` aggregates per transaction, ``max_wait`` seconds spent gathering."""

    enabled: bool = True
    max_aggregates: int = 256
    max_wait: float = 0.0


class GroupCommit:
    """One writer thread per application, started with the first command."""

    def __init__(
        self, insert: Insert, after: After, latest: Latest, batching: Batching, read: Read
    ) -> None:
        self._insert = insert
        self._after = after
        self._latest = latest
        self._read = read
        self.batching = batching
        self._fed: Fed[Pending] = Fed("ledger-group-commit", self._run, "the ledger is closed")
        self._lock = threading.Lock()
        self._written: Recent[UUID, int] = Recent(REMEMBERED)
        self.batch_sizes: deque[int] = deque(maxlen=10_000)
        """The number of commands of each of the last 10,000 transactions written."""
        self.transactions = 0
        self.commands = 0
        """Transactions written and the commands they held, since start (``/metrics``)."""

    def record(self, pending: Pending) -> list[Recording[UUID]]:
        """Record one command's events; returns its recordings once committed.

        Raises: whatever recording it raised (``IntegrityError`` when it must decide again).
        """
        if self.batching.enabled and not self._fed.here():
            self._fed.put(pending)
        else:  # batching off; or a command from the writer's own thread (a listener),
            self._fed.check_open()  # which would otherwise wait for itself forever
            self._write([pending])
        return pending.outcome.result()

    def submit(self, pending: Pending) -> Future[list[Recording[UUID]]]:
        """Hand one command's events to the writer thread without waiting: the future is
        answered as ``record`` would answer (an event loop awaits it: ``LedgerBase.perform``).

        Raises: OperationalError, once closed; RuntimeError with batching off (nobody would
        write it: ``record`` it in the caller's thread instead).
        """
        if not self.batching.enabled:
            raise RuntimeError("with batching off, commands are recorded by their callers")
        # Running, so that an awaiting task cancelled cannot cancel it: the writer will
        # answer it whatever becomes of the task, and must not find it cancelled.
        pending.outcome.set_running_or_notify_cancel()
        self._fed.put(pending)
        return pending.outcome

    def close(self) -> None:
        """Refuse new commands, record those already queued, and stop the writer."""
        self._fed.close()

    # -- the writer ---------------------------------------------------------------------------

    def _run(self) -> None:
        carried: Pending | None = None
        while True:
            first = carried if carried is not None else self._fed.queue.get()
            if first is None:
                return
            batch, carried, stop = self._gather(first)
            failure = self._write(batch)
            if failure is not None:
                stop = self._shed(failure, carried) or stop
                carried = None
            if stop:
                self._drain()
                return

    def _gather(self, first: Pending) -> tuple[list[Pending], Pending | None, bool]:
        """Take what is queued, up to the bounds. Returns the batch, a command that did not
        fit (it starts the next one), and whether the stop sign was met."""
        batch, size = [first], len(first.aggregates)
        deadline = time.monotonic() + self.batching.max_wait
        while size < self.batching.max_aggregates:
            wait = deadline - time.monotonic()
            try:
                pending = (
                    self._fed.queue.get(timeout=wait) if wait > 0 else self._fed.queue.get_nowait()
                )
            except Empty:
                break
            if pending is None:
                return batch, None, True
            if size + len(pending.aggregates) > self.batching.max_aggregates:
                return batch, pending, False
            batch.append(pending)
            size += len(pending.aggregates)
        return batch, None, False

    def _drain(self) -> None:
        """After the stop sign: nothing should be queued (``close`` refuses new commands
        first), but whatever is gets recorded rather than left unanswered."""
        while True:
            try:
                pending = self._fed.queue.get_nowait()
            except Empty:
                return
            if pending is not None:
                self._write([pending])

    def _shed(self, failure: Exception, carried: Pending | None) -> bool:
        """Fail ``carried`` and every command queued now with the store's ``failure``.
        Returns whether the stop sign was among them."""
        shed = [carried] if carried is not None else []
        stop = False
        while True:
            try:
                pending = self._fed.queue.get_nowait()
            except Empty:
                break
            if pending is None:
                stop = True
            else:
                shed.append(pending)
        _fail(shed, failure)
        if shed:
            log.warning("the store failed: %d queued commands failed with it", len(shed))
        return stop

    def _write(self, batch: list[Pending]) -> Exception | None:
        """Record ``batch``, answering every command in it, whatever happens. Returns the
        store's failure, if it failed (``OperationalError``, ``InterfaceError``)."""
        written: set[UUID] = set()
        read: set[UUID] = set()
        alone: list[Pending] = []
        later: list[Pending] = []
        for pending in batch:
            ids, reads = pending.ids, pending.reads.keys()
            # Many commands may read one aggregate in a batch, none may write one another
            # command of it wrote or read (the insert checks the reads after its writes).
            if ids & (written | read) or reads & written or self._behind(pending):
                later.append(pending)
            else:
                alone.append(pending)
                written |= ids
                read |= reads
        failure: Exception | None = None
        try:
            failure = self._settle(alone)
        except BaseException as error:  # a bug here must not leave callers waiting forever
            _fail([pending for pending in alone if not pending.outcome.done()], error)
            log.exception("recording a batch of %d commands failed", len(alone))
        finally:
            # Decided on a state the batch (or an earlier one) replaced: stale for sure.
            # Answered only now, so that deciding again reads what the batch wrote; if the
            # store failed instead, with its failure (deciding again could not be saved).
            _fail(later, failure or Deferred("decided on a version already replaced"))
        return failure

    def _behind(self, pending: Pending) -> bool:
        """Whether ``pending`` was decided on a version older than this writer wrote."""
        with self._lock:
            return any(
                version < self._written.get(aggregate_id, 0)
                for aggregate_id, version in pending.expected().items()
            )

    def _settle(self, batch: list[Pending]) -> Exception | None:
        """Record ``batch`` (halving it to find a command that fails), answering each
        command; returns the store's failure, if it failed."""
        while batch:
            try:
                positions = self._insert(batch)
            except IntegrityError as error:
                if isinstance(error, Retried):
                    try:
                        # The retry of a commit that went through meets its own rows.
                        batch = self._recover(batch, wait=False)
                    except (OperationalError, InterfaceError) as failure:  # reading
                        _fail(batch, _unknown(failure))
                        return failure
                    if not batch:
                        return None
                try:
                    stale = batch if len(batch) == 1 else self._stale(batch)
                except (OperationalError, InterfaceError) as failure:  # asking the store
                    _fail(batch, failure)
                    return failure
                if not stale:  # not a version conflict we can place: find it by halving
                    return self._halve(batch)
                _fail(stale, error)
                batch = [pending for pending in batch if pending not in stale]
            except (OperationalError, InterfaceError) as error:  # the store itself
                try:
                    # The connection may have died after COMMIT reached the store.
                    batch = self._recover(batch, wait=True)
                except (OperationalError, InterfaceError):
                    _fail(batch, _unknown(error))
                    return error
                _fail(batch, error)  # nothing of theirs is stored: not recorded
                return error
            except Exception as error:
                if len(batch) == 1:
                    _fail(batch, error)
                    return None
                return self._halve(batch)
            else:
                self._committed(batch, positions)
                return None
        return None

    def _halve(self, batch: list[Pending]) -> Exception | None:
        """Settle each half; once the store failed, the second half fails with it."""
        middle = len(batch) // 2
        failure = self._settle(batch[:middle])
        if failure is None:
            return self._settle(batch[middle:])
        _fail(batch[middle:], failure)
        return failure

    def _stale(self, batch: list[Pending]) -> list[Pending]:
        """The commands whose aggregates (written or read) the store holds at another
        version than they were decided on."""
        return [
            pending
            for pending in batch
            if any(
                self._latest(aggregate_id) != version
                for aggregate_id, version in pending.expected().items()
            )
        ]

    def _recover(self, batch: list[Pending], *, wait: bool) -> list[Pending]:
        """After an insert of ``batch`` failed: answer as committed each command the store
        holds exactly (its acknowledgement was lost), fail with ``OutcomeUnknown`` each one
        it holds in part; returns the others, of which it holds nothing.

        Raises: the store's failure (``OperationalError``, ``InterfaceError``) if it cannot
        be read.
        """
        keys = [_key(saved) for pending in batch for saved in pending.stored]
        found = {
            (note.originator_id, note.originator_version): note for note in self._read(keys, wait)
        }
        committed: list[Pending] = []
        positions: list[int] = []
        partly: list[Pending] = []
        rest: list[Pending] = []
        for pending in batch:
            notes = [found.get(_key(saved)) for saved in pending.stored]
            same = [_same(note, saved) for note, saved in zip(notes, pending.stored, strict=True)]
            if all(same):
                committed.append(pending)
                positions.extend(note.id for note in notes if note is not None)
            elif any(same):
                partly.append(pending)
            else:
                rest.append(pending)
        if partly:
            _fail(partly, OutcomeUnknown(_PARTLY))
            log.error("%d commands found stored in part after a failed commit", len(partly))
        if committed:
            log.warning(
                "%d commands were committed though the store answered with a failure",
                len(committed),
            )
            self._committed(committed, positions)
        return rest

    def _committed(self, batch: list[Pending], positions: Sequence[int]) -> None:
        """Answer each command with its own recordings, then do what follows a commit.
        Nothing from here on may be taken for a failure to record: the batch is stored."""
        with self._lock:
            self.batch_sizes.append(len(batch))
            self.transactions += 1
            self.commands += len(batch)
            for pending in batch:
                for aggregate in pending.aggregates:
                    self._written.keep(aggregate.id, aggregate.version)
        recordings: list[Recording[UUID]] = []
        start = 0
        for pending in batch:
            end = start + len(pending.events)
            own = [
                Recording(event, _notification(saved, position))
                for event, saved, position in zip(
                    pending.events, pending.stored, positions[start:end], strict=True
                )
            ]
            start = end
            recordings.extend(own)
            pending.outcome.set_result(own)
        try:
            self._after(batch, recordings)
        except Exception:
            log.exception("after recording %d commands (they are stored)", len(batch))


def _fail(commands: Sequence[Pending], error: BaseException) -> None:
    """Answer each command with its own copy of ``error``: each caller raises it in its own
    thread, and one shared instance would gather all their tracebacks (and keep their
    frames alive as long as any caller holds it)."""
    for pending in commands:
        try:
            own = copy.copy(error)
        except Exception:  # an exception that cannot be copied is shared, as raised
            own = error
        own.__cause__ = error.__cause__  # a copy has its args, not its cause
        pending.outcome.set_exception(own)


_PARTLY = (
    "the store failed around this command's commit and holds only some of its events; it"
    " cannot tell whether the command was recorded"
)


def _unknown(failure: Exception) -> OutcomeUnknown:
    unknown = OutcomeUnknown(
        "the store failed around this command's commit and could not be read to tell whether"
        " it was recorded; retry with the same Idempotency-Key, or read the resource first"
    )
    unknown.__cause__ = failure
    return unknown


def _key(saved: StoredEvent) -> tuple[UUID, int]:
    """Where ``saved`` goes in the store: its aggregate's id and its version."""
    originator_id = saved.originator_id
    if not isinstance(originator_id, UUID):
        originator_id = UUID(originator_id)
    return originator_id, saved.originator_version


def _same(note: Notification | None, saved: StoredEvent) -> bool:
    """Whether the store holds exactly ``saved`` (its bytes: topic and state)."""
    return note is not None and note.topic == saved.topic and bytes(note.state) == saved.state


def _notification(saved: StoredEvent, position: int) -> Notification:
    return Notification(
        id=position,
        originator_id=saved.originator_id,
        originator_version=saved.originator_version,
        topic=saved.topic,
        state=saved.state,
    )
