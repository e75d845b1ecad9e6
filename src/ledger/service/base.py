"""``LedgerApp``: the application service. Every command is *load → decide → save*.

Commands load aggregates, decide (guards, then events) with the time read once from the
injected clock, and save every changed aggregate atomically: the events go to the process's
writer (``service.commit``), which records those of concurrent commands in one transaction
and answers each command once that transaction committed. When another writer got there
first (the (id, version) key is taken) the command is decided again on fresh state, and if
it is no longer allowed the caller gets the domain error. Each command returns the aggregate
and the notification position of its last event, which the API hands out for
read-your-writes. A command run under an ``Idempotency-Key`` leaves a receipt in the same
transaction (``ledger.receipts``), and a retry that finds it is answered from it.

A command is called in a thread, which it holds while its events are written (``_run``), or
performed on an event loop, which it holds only while it decides on what this process has in
memory (``perform``): the same steps (``_attempts``), driven either way.

This module holds the plumbing; the sibling modules add one method per command.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Generator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NoReturn, TypeVar, cast
from uuid import UUID

from eventsourcing.application import (
    AggregateNotFoundError,
    Application,
    ProcessingEvent,
    project_aggregate,
)
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Notification,
    Recording,
)
from eventsourcing.utils import Environment

from ledger import receipts
from ledger.actors import Actor
from ledger.clock import Clock, iso, utc_now
from ledger.domain.gig import Gig
from ledger.domain.inbox import Inbox
from ledger.domain.order import Order
from ledger.domain.payment import Payment, PaymentTerms
from ledger.domain.values import ActorAsDict, PackageAsDict
from ledger.errors import Busy, Conflict, NotFound
from ledger.gateway.port import PaymentGateway
from ledger.receipts import Receipt, ReceiptEntry
from ledger.service import reads
from ledger.service.commit import Batching, Deferred, GroupCommit, Pending, Retried
from ledger.service.reads import ReadCache
from ledger.store import FACTORY_TOPICS, RECORDER_TOPICS, EventsAt, Receipts, insert_attempts

log = logging.getLogger("ledger")
A = TypeVar("A", bound=Aggregate)
Decision = Callable[[], Sequence[Aggregate]]


class Previewed(Exception):
    """How a command run under ``LedgerBase.preview`` hands back what it decided."""

    def __init__(self, events: list[Aggregate.Event]) -> None:
        super().__init__(f"{len(events)} events decided, none saved")
        self.events = events


_previewing: ContextVar[bool] = ContextVar("ledger_previewing", default=False)
_performing: ContextVar[bool] = ContextVar("ledger_performing", default=False)
"""Set by ``LedgerBase.perform``: ``_run`` hands its attempts over instead of making them."""
_on_loop: ContextVar[bool] = ContextVar("ledger_on_loop", default=False)
"""Set while a decision is tried on the event loop: loading from the store is refused."""


class WouldBlock(Exception):
    """A decision tried on the event loop needs to load from the store (``perform``): it is
    decided again in a thread. Raised before the decision changed anything of its own."""


Steps = Generator["Pending | _Call", Any, "Done[Any]"]
"""``LedgerBase._attempts``: what a command's driver has to do, step by step."""


def _resume(steps: Steps, answer: Any, failure: Exception | None) -> Pending | _Call | Done[Any]:
    """The next step, once the last one answered ``answer`` or raised ``failure``; the
    command's ``Done`` when there is none (or its error, raised)."""
    try:
        return steps.throw(failure) if failure is not None else steps.send(answer)
    except StopIteration as finished:
        return cast(Done[Any], finished.value)


class _Handed(Exception):
    """How ``_run`` hands its attempts to ``LedgerBase.perform``."""

    def __init__(self, steps: Steps) -> None:
        super().__init__("attempts handed to the event loop")
        self.steps = steps


@dataclass(frozen=True)
class _Call:
    """A step of ``_run`` that may wait on the store or the gateway; ``decides``: the
    command's decision, which ``perform`` first tries on the event loop."""

    call: Callable[[], Any]
    decides: bool = False


class Unchanged(Exception):
    """Raised by ``decide``: the command changes nothing (archiving an archived gig, marking
    a read notification read). Nothing is saved, and the command answers with the aggregate
    as found and the head of the log, which is at or after the event that made that state,
    so reading at it sees that state. Not an error for anyone."""

    def __init__(self, aggregate: Aggregate) -> None:
        super().__init__("unchanged")
        self.aggregate = aggregate


class StaleRead(Exception):
    """``decide`` read one aggregate before and another after someone else's save: its
    decision rests on state that no longer holds, so it is taken again (as on a lost race)."""


@dataclass(frozen=True)
class Done(Generic[A]):
    """What a command answers: the aggregate as saved, and its last event's position."""

    aggregate: A
    position: int


class LedgerBase(Application[UUID]):
    """Store set-up, loading and the retrying save that every command goes through."""

    # The library's own class attribute; inboxes gather a read mark per notification.
    snapshotting_intervals = {Gig: 10, Inbox: 50}  # noqa: RUF012
    max_attempts = 5
    """How often a command is decided again after losing a race on the same aggregate."""
    max_deferrals = 64
    """How often it is decided again, besides, for having been behind another command of
    this process on the same aggregate (``Deferred``): a burst of commands on one aggregate
    (a user marking many notifications read at once) is written one per transaction, in
    turn, and the last of the burst waits behind all the others."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock = utc_now,
        fee_rate_bp: int = 2_000,
        gateway: PaymentGateway | None = None,
        public_url: str = "http://127.0.0.1:8000",
        batching: Batching | None = None,
        payment_terms: PaymentTerms | None = None,
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.fee_rate_bp = fee_rate_bp
        self.gateway = gateway
        """Opens a checkout for each new payment; without one (unit tests) payments are
        recorded with no checkout."""
        self.payment_terms = payment_terms or PaymentTerms(
            gateway.methods if gateway is not None else PaymentTerms.methods
        )
        """The methods offered and each one's window to pay (``PaymentTerms``)."""
        self.public_url = public_url.rstrip("/")
        self._listeners: list[Callable[[int], None]] = []
        self.read_cache = ReadCache()
        """The aggregates commands read without writing (``service.reads``)."""
        self.writer = GroupCommit(
            self._insert,
            self._after_commit,
            self._latest_version,
            batching or Batching(),
            self._stored_at,
        )

    def close(self) -> None:
        """Record the commands already handed to the writer, then close the store, and the
        gateway's HTTP client where it has one."""
        self.writer.close()
        closer = getattr(self.gateway, "close", None)
        if callable(closer):
            closer()
        super().close()

    def construct_env(self, name: str, env: Any = None) -> Environment:
        """Configure only from ``env`` (built by ``Settings``), never from ``os.environ``:
        a stray ``POSTGRES_HOST`` in the shell must not redirect the ledger's writes."""
        values = dict(type(self).env)
        if type(self).snapshotting_intervals:
            values["IS_SNAPSHOTTING_ENABLED"] = "y"
        values.update(env or {})
        module = values.get("PERSISTENCE_MODULE", "")
        topic = RECORDER_TOPICS.get(module)
        if topic is not None:  # the append-only events table (``ledger.store``)
            values.setdefault("APPLICATION_RECORDER_TOPIC", topic)
        values["PERSISTENCE_MODULE"] = FACTORY_TOPICS.get(module, module)
        return Environment(name, values)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(ActorAsDict())
        transcoder.register(PackageAsDict())

    # -- loading ----------------------------------------------------------------------------

    def _load(self, kind: type[A], aggregate_id: UUID, version: int | None = None) -> A:
        """The aggregate at ``version``, or its latest. A deciding command gets the latest
        from this process's cache when it is there (``_latest``), as a copy of its own to
        change; anything else reads the store.

        Raises: NotFound, for no aggregate of that kind; WouldBlock, for a read of the
        store while a decision is tried on the event loop (``perform``).
        """
        if version is None and reads.deciding():
            return self._latest(kind, aggregate_id, own=True)
        return self._stored(kind, aggregate_id, version)

    def _stored(self, kind: type[A], aggregate_id: UUID, version: int | None = None) -> A:
        """The aggregate read from the store (never the cache)."""
        self._may_wait(f"loading {kind.__name__.lower()} {aggregate_id}")
        found: Aggregate | None
        if kind in self.snapshotting_intervals:
            try:
                found = self.repository.get(aggregate_id, version=version)
            except AggregateNotFoundError:
                found = None
        else:  # never snapshotted: the repository would ask for a snapshot all the same
            found = project_aggregate(None, self.events.get(aggregate_id, lte=version))
        if not isinstance(found, kind):
            raise NotFound(f"{kind.__name__.lower()} {aggregate_id} not found")
        return found

    def _exists(self, aggregate_id: UUID) -> bool:
        """Whether any aggregate has this id: known to this process, or one event stored."""
        if self.read_cache.get(aggregate_id) is not None:
            return True
        self._may_wait(f"looking up {aggregate_id}")
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    @staticmethod
    def _may_wait(what: str) -> None:
        """Raises: WouldBlock, while a decision is tried on the event loop (``perform``)."""
        if _on_loop.get():
            raise WouldBlock(what)

    def _order(self, order_id: UUID) -> Order:
        return self._load(Order, order_id)

    def _payment(self, payment_id: UUID) -> Payment:
        return self._load(Payment, payment_id)

    def _gig(self, gig_id: UUID) -> Gig:
        return self._load(Gig, gig_id)

    def _latest(self, kind: type[A], aggregate_id: UUID, *, own: bool = False) -> A:
        """The latest state of an aggregate this process knows: from its cache, else from
        the store (and kept); noted as read by the deciding command, so the insert checks
        it is still the latest unless the command writes it, whose own events' keys then
        guard it (``service.reads``). The cache's aggregates are never changed in place: a
        command that changes one asks for a copy of its own (``own``); one that only reads
        it gets the cache's instance. One copy either way: what the store gave is fresh."""
        aggregate = self.read_cache.get(aggregate_id)
        if isinstance(aggregate, kind):
            reads.note(aggregate, cached=True)
            return copy.deepcopy(aggregate) if own else aggregate
        aggregate = self._stored(kind, aggregate_id)
        self.read_cache.put(copy.deepcopy(aggregate) if own else aggregate)
        reads.note(aggregate, cached=False)
        return aggregate

    def _give_back(
        self, payment: Payment, amount: int, reason: str, actor: Actor, now: datetime
    ) -> None:
        """Refund at once where the gateway does; else ask for the refund to be made at
        the gateway and confirmed later (``confirm_refund``, or its webhook)."""
        if self.gateway is None or self.gateway.refunds_at_once:
            payment.refund(amount, reason, actor, now)
        else:
            payment.request_refund(amount, reason, actor, now)

    # -- saving -----------------------------------------------------------------------------

    def _run(
        self,
        decide: Decision,
        creates: UUID | None = None,
        taken: str | None = None,
        prepare: Callable[[], None] | None = None,
    ) -> Done[Any]:
        """Decide and save; on a lost race decide again on fresh state.

        The first aggregate ``decide`` returns is the one the command answers with. A
        command that ``creates`` an aggregate of a given id does not look it up first (one
        round trip less on the hot path): the store's key refuses a second one, and only
        then is the id checked, to answer ``taken``. ``prepare`` runs once before deciding,
        and only if the request is not answered from an earlier run's receipt: the place
        for a call outside the ledger (the gateway's checkout), never to be made twice.

        Under ``perform`` nothing is run here: the attempts are handed to its driver, which
        makes the same steps on the event loop.

        Raises:
            Conflict: the id ``creates`` names exists.
            Busy: still losing races after ``max_attempts`` (a very hot aggregate), or
                behind this process's other commands more than ``max_deferrals`` times.
            LedgerError: whatever ``decide`` raises, on the state current at that attempt.
        """
        if _previewing.get():
            self._preview(decide, prepare)
        steps = self._attempts(decide, creates, taken, prepare)
        if _performing.get():
            raise _Handed(steps)
        answer: Any = None
        failure: Exception | None = None
        while not isinstance(step := _resume(steps, answer, failure), Done):
            answer, failure = None, None
            try:
                answer = self.writer.record(step) if isinstance(step, Pending) else step.call()
            except Exception as error:
                failure = error
        return step

    async def perform(self, command: Callable[[], Done[A]]) -> Done[A]:
        """Run ``command`` (a call of one of this app's commands) without holding a thread
        while its events are written: what the HTTP edge does on its event loop.

        The command runs up to its ``_run``, which hands over its attempts; they are then
        made here. Each decision is first tried on the loop itself with the store out of
        bounds: one that needs no load (placing an order on a cached gig) is decided there;
        one that would load is decided again in a thread (``asyncio.to_thread``), as are
        the lookups of receipts and ``prepare``. The events go to the writer, whose commit
        is awaited. The answers and errors are exactly ``_run``'s.

        Only for commands that return ``_run``'s answer as it is (no handler around it) and
        touch no store before calling it, as every order command does.
        """
        token = _performing.set(True)
        try:
            command()
        except _Handed as handed:
            steps = handed.steps
        else:
            raise TypeError("the command did not reach _run: it cannot be performed")
        finally:
            _performing.reset(token)
        answer: Any = None
        failure: Exception | None = None
        try:
            while not isinstance(step := _resume(steps, answer, failure), Done):
                answer, failure = None, None
                try:
                    if isinstance(step, Pending):
                        answer = await self._record_soon(step)
                    elif step.decides:
                        answer = await self._decide_soon(step.call)
                    else:
                        answer = await asyncio.to_thread(step.call)
                except Exception as error:
                    failure = error
        finally:
            steps.close()  # (cancelled: leave its context as it found it, here)
        return cast(Done[A], step)

    async def _record_soon(self, pending: Pending) -> list[Recording[UUID]]:
        if not self.writer.batching.enabled:  # each command in its caller's thread
            return await asyncio.to_thread(self.writer.record, pending)
        return await asyncio.wrap_future(self.writer.submit(pending))

    @staticmethod
    async def _decide_soon(decide: Callable[[], Any]) -> Any:
        token = _on_loop.set(True)
        try:
            return decide()
        except WouldBlock:
            pass
        finally:
            _on_loop.reset(token)
        return await asyncio.to_thread(decide)

    def _attempts(
        self,
        decide: Decision,
        creates: UUID | None,
        taken: str | None,
        prepare: Callable[[], None] | None,
    ) -> Steps:
        """``_run``'s steps, made by its driver: each ``_Call`` (what may wait on the store or
        the gateway) is called, each ``Pending`` recorded, and the outcome sent back in (or
        its exception thrown in). Written once for the two drivers, ``_run`` (in the
        caller's thread) and ``perform`` (on the event loop)."""
        receipt = receipts.take()
        if receipt and receipt.recheck:
            recorded = yield _Call(lambda: self._recorded_before(receipt))
            if recorded is not None:
                return cast(Done[Any], recorded)
        if prepare is not None:
            yield _Call(prepare)
        attempts = deferrals = 0
        while attempts < self.max_attempts:
            with reads.reading() as read:
                try:
                    aggregates = yield _Call(decide, decides=True)
                except StaleRead:
                    self.read_cache.forget(read)  # what it read moved on: read it afresh
                    attempts += 1
                    continue
                except Exception as outcome:
                    if read.cached:
                        # Decided on what this process remembered, and nothing to write:
                        # another process may have moved it on, and no insert will check.
                        # Such an answer (a refusal, nothing to do) stands only on the
                        # state as stored.
                        self.read_cache.forget(read.cached)
                        attempts += 1
                        continue
                    if not isinstance(outcome, Unchanged):
                        raise
                    head = yield _Call(self.recorder.max_notification_id)
                    return Done(outcome.aggregate, head or 0)
            try:
                recordings = yield self._pending(aggregates, receipt, read)
            except IntegrityError as error:
                if not isinstance(error, Deferred):  # (the writer's commit replaced those)
                    self.read_cache.forget(read)  # perhaps what moved on: read it afresh
                # The writer has already told a commit that went through with its
                # acknowledgement lost (the events it holds are ours: ``Done``) from a race
                # lost; a keyed command still looks for its receipt, which an earlier run
                # of the same request may have left.
                if receipt:
                    recorded = yield _Call(lambda: self._recorded_before(receipt))
                    if recorded is not None:
                        return cast(Done[Any], recorded)
                if creates is not None:
                    exists = yield _Call(lambda: self._exists(creates))
                    if exists:
                        raise Conflict(taken or f"{creates} already exists") from None
                if isinstance(error, Deferred) and deferrals < self.max_deferrals:
                    deferrals += 1
                else:
                    attempts += 1
                continue
            return Done(aggregates[0], recordings[-1].notification.id)
        raise Busy("the resource changed too often while this command ran; try again")

    def _preview(self, decide: Decision, prepare: Callable[[], None] | None) -> NoReturn:
        """Under ``preview``: decide, and hand back the events instead of saving them."""
        if prepare is not None:
            raise ValueError("a command calling outside the ledger cannot be previewed")
        for _ in range(self.max_attempts):
            try:
                aggregates = decide()
            except StaleRead:  # read between two writes: read again, as ``_run`` does
                continue
            except Unchanged:
                raise Previewed([]) from None
            events = [e for aggregate in aggregates for e in aggregate.collect_events()]
            raise Previewed(cast(list[Aggregate.Event], events))
        raise Busy("the resource changed too often while this command ran; try again")

    def preview(self, command: Callable[[], object]) -> list[Aggregate.Event]:
        """The events ``command`` (a call of one of this app's commands) would record now,
        decided on the current state with the same rules, access checks included, and not
        saved: what a console shows before a person confirms. An empty list: it would change
        nothing (the command also returned without deciding anything to save).

        Raises: whatever the command raises when it is not allowed; ValueError for a
        command whose call outside the ledger is part of saving (``_run``'s ``prepare``).
        A command that first *reads* outside the ledger (``sync_payment`` asks the gateway)
        makes that read.
        """
        token = _previewing.set(True)
        try:
            command()
        except Previewed as previewed:
            return previewed.events
        finally:
            _previewing.reset(token)
        return []

    def _recorded_before(self, receipt: Receipt) -> Done[Any] | None:
        """The answer an earlier run of this keyed request committed, if one did: its
        aggregate at the version it left."""
        if not isinstance(self.recorder, Receipts):
            return None
        outcome = self.recorder.receipt_of(receipt.caller_id, receipt.key)
        if outcome is None or outcome.request_hash != receipt.request_hash:
            return None
        receipt.replayed = True
        aggregate: Aggregate = self.repository.get(outcome.aggregate_id, version=outcome.version)
        return Done(aggregate, outcome.position)

    def _pending(
        self, aggregates: Sequence[Aggregate], receipt: Receipt | None, read: dict[UUID, int]
    ) -> Pending:
        """Take the decided events off ``aggregates`` and encode them, in the caller's
        thread (the writer then only inserts), with the request's receipt if it has one
        and what the command only read."""
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        stored = [self.mapper.to_stored_event(event) for event in events]
        return Pending(aggregates, events, stored, receipt, reads.only_read(read, aggregates))

    def _insert(self, batch: list[Pending]) -> Sequence[int]:
        """The writer's one transaction: the events of ``batch`` and the receipts of its
        keyed commands; returns the events' positions."""
        stored = [event for pending in batch for event in pending.stored]
        entries, end, now = [], 0, str(iso(self.clock()))
        read: dict[UUID, int] = {}  # the oldest version any command read
        for pending in batch:
            for aggregate_id, version in pending.reads.items():
                read[aggregate_id] = min(version, read.get(aggregate_id, version))
            end += len(pending.events)
            if pending.receipt is not None:
                answer = pending.aggregates[0]
                entries.append(
                    ReceiptEntry(pending.receipt, answer.id, answer.version, end - 1, now)
                )
        insert_attempts()  # counts from here
        try:
            return self.recorder.insert_events(stored, receipts=entries, reads=read) or []
        except IntegrityError as error:
            if insert_attempts() > 1:  # the store's retry: the first attempt may be stored
                raise Retried(str(error)) from error
            raise

    def _after_commit(self, batch: Sequence[Pending], recordings: list[Recording[UUID]]) -> None:
        """What the library's ``save`` does after recording: cache, snapshots, listeners.
        The events are committed: a failing snapshot is logged, never the command's error."""
        done: ProcessingEvent[UUID] = ProcessingEvent()
        for pending in batch:
            done.events.extend(pending.events)
            done.aggregates.update((aggregate.id, aggregate) for aggregate in pending.aggregates)
        if self.repository.cache and not self.repository.fastforward:
            for aggregate_id, aggregate in done.aggregates.items():
                self.repository.cache.put(aggregate_id, aggregate)
        self.read_cache.committed(a for pending in batch for a in pending.aggregates)
        try:
            self._take_snapshots(done)
        except Exception:
            log.exception("taking a snapshot failed (the events are recorded)")
        self._notify(recordings)

    def _stored_at(self, keys: Sequence[tuple[UUID, int]], wait: bool) -> list[Notification]:
        """The events stored at ``keys`` with their positions (the writer compares them with
        what a command whose commit failed had sent: ``GroupCommit._recover``)."""
        if isinstance(self.recorder, EventsAt):
            return self.recorder.events_at(keys, wait)
        # The library's in-memory store (unit tests): its commits are never in doubt, but
        # the same answer is found the slow way, from the whole log.
        wanted, found, start = set(keys), [], 1
        while True:
            page = self.recorder.select_notifications(start, 1_000)
            found += [n for n in page if (n.originator_id, n.originator_version) in wanted]
            if len(page) < 1_000:
                return found
            start = page[-1].id + 1

    def _latest_version(self, aggregate_id: UUID) -> int:
        latest = self.recorder.select_events(aggregate_id, desc=True, limit=1)
        return latest[0].originator_version if latest else 0

    # -- telling others ---------------------------------------------------------------------

    def on_saved(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(position)`` after each successful save in this process (the read
        side uses it to wake its runner at once instead of polling)."""
        self._listeners.append(listener)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings:
            for listener in self._listeners:
                listener(recordings[-1].notification.id)
