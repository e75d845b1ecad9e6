"""``LedgerApp``: the application service. Every command is *load → decide → save*.

Commands load aggregates, decide (guards, then events) with the time read once from the
injected clock, and save every changed aggregate in one atomic ``save``. When another writer
got there first the store raises ``IntegrityError`` (the (id, version) key is taken); the
command is then decided again on fresh state, and if it is no longer allowed the caller gets
the domain error. Each command returns the aggregate and the notification position of its
last event, which the API hands out for read-your-writes.

This module holds the plumbing; the sibling modules add one method per command.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Recording
from eventsourcing.utils import Environment

from ledger import access
from ledger.actors import Actor, Caller
from ledger.clock import Clock, utc_now
from ledger.domain.gig import Gig
from ledger.domain.inbox import Inbox
from ledger.domain.order import Order
from ledger.domain.payment import Payment
from ledger.domain.values import ActorAsDict, PackageAsDict
from ledger.errors import Busy, Conflict, NotFound, VersionMismatch
from ledger.gateway.port import PaymentGateway
from ledger.store import RECORDER_TOPICS

A = TypeVar("A", bound=Aggregate)
Decision = Callable[[], Sequence[Aggregate]]
OrderAction = Callable[[Order, Actor, datetime], int | None]
"""Applies one command to a loaded order; returns the refund it makes due, if any."""


class _StaleRead(Exception):
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

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        clock: Clock = utc_now,
        fee_rate_bp: int = 2_000,
        gateway: PaymentGateway | None = None,
        public_url: str = "http://127.0.0.1:8000",
    ) -> None:
        super().__init__(env)
        self.clock = clock
        self.fee_rate_bp = fee_rate_bp
        self.gateway = gateway
        """Opens a checkout for each new payment; without one (unit tests) payments are
        recorded with no checkout."""
        self.public_url = public_url.rstrip("/")
        self._listeners: list[Callable[[int], None]] = []

    def close(self) -> None:
        """Close the store, and the gateway's HTTP client where it has one."""
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
        topic = RECORDER_TOPICS.get(values.get("PERSISTENCE_MODULE", ""))
        if topic is not None:  # the append-only events table (``ledger.store``)
            values.setdefault("APPLICATION_RECORDER_TOPIC", topic)
        return Environment(name, values)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(ActorAsDict())
        transcoder.register(PackageAsDict())

    # -- loading ----------------------------------------------------------------------------

    def _load(self, kind: type[A], aggregate_id: UUID, version: int | None = None) -> A:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound(f"{kind.__name__.lower()} {aggregate_id} not found") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"{kind.__name__.lower()} {aggregate_id} not found")
        return aggregate

    def _order(self, order_id: UUID) -> Order:
        return self._load(Order, order_id)

    @staticmethod
    def _check_version(order: Order, expected_version: int | None) -> None:
        """Raises: VersionMismatch, when the caller (``If-Match``) expected another version.

        Checked only after access was granted, so a stranger learns nothing of the version.
        """
        if expected_version is not None and order.version != expected_version:
            raise VersionMismatch(expected_version, order.version)

    def _payment(self, payment_id: UUID) -> Payment:
        return self._load(Payment, payment_id)

    def _gig(self, gig_id: UUID) -> Gig:
        return self._load(Gig, gig_id)

    def _give_back(
        self, payment: Payment, amount: int, reason: str, actor: Actor, now: datetime
    ) -> None:
        """Refund at once where the gateway does; else ask for the refund to be made at
        the gateway and confirmed later (``confirm_refund``, or its webhook)."""
        if self.gateway is None or self.gateway.refunds_at_once:
            payment.refund(amount, reason, actor, now)
        else:
            payment.request_refund(amount, reason, actor, now)

    # -- order commands ---------------------------------------------------------------------

    def _on_order(
        self,
        caller: Caller,
        order_id: UUID,
        command: str,
        expected_version: int | None,
        act: OrderAction,
    ) -> Done[Order]:
        """Load the order, pick the caller's capacity for ``command``, act, refund if due.
        Every order command goes this way, the parties' and the clock's alike, so a refund
        is recorded the same way whoever caused it."""

        def decide() -> list[Order | Payment]:
            order = self._order(order_id)
            actor = access.acting_on(caller, order, Order.WHO[command])
            self._check_version(order, expected_version)
            now = self.clock()
            refund = act(order, actor, now)
            return [order, *self._refund(order, refund or 0, actor, now)]

        return self._run(decide)

    def _refund(self, order: Order, amount: int, actor: Actor, now: datetime) -> list[Payment]:
        if amount <= 0 or order.payment_id is None:
            return []
        payment = self._payment(order.payment_id)
        if amount > payment.refundable and self._moved_on(order):
            raise _StaleRead  # another writer refunded it between our two reads
        reason = order.cancel_reason or "dispute_split"
        self._give_back(payment, amount, str(reason), actor, now)
        return [payment]

    def _moved_on(self, order: Order) -> bool:
        """Whether the store holds events of ``order`` newer than those it was loaded with."""
        loaded = order.version - len(order.pending_events)
        return self._order(order.id).version != loaded

    # -- saving -----------------------------------------------------------------------------

    def _run(
        self, decide: Decision, creates: UUID | None = None, taken: str | None = None
    ) -> Done[Any]:
        """Decide and save; on a lost race decide again on fresh state.

        The first aggregate ``decide`` returns is the one the command answers with. A
        command that ``creates`` an aggregate of a given id does not look it up first (one
        round trip less on the hot path): the store's key refuses a second one, and only
        then is the id checked, to answer ``taken``.

        Raises:
            Conflict: the id ``creates`` names exists.
            Busy: still losing races after ``max_attempts`` (a very hot aggregate).
            LedgerError: whatever ``decide`` raises, on the state current at that attempt.
        """
        for _ in range(self.max_attempts):
            try:
                aggregates = decide()
            except _StaleRead:
                continue
            try:
                recordings = self.save(*aggregates)
            except IntegrityError:
                if creates is not None and creates in self.repository:
                    raise Conflict(taken or f"{creates} already exists") from None
                continue
            return Done(aggregates[0], recordings[-1].notification.id)
        raise Busy("the resource changed too often while this command ran; try again")

    # -- telling others ---------------------------------------------------------------------

    def on_saved(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(position)`` after each successful save in this process (the read
        side uses it to wake its runner at once instead of polling)."""
        self._listeners.append(listener)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        if recordings:
            for listener in self._listeners:
                listener(recordings[-1].notification.id)
