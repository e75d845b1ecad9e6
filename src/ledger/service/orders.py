"""Order commands: one method per row of the transition table (docs/architecture.md), what
every order command shares (load, access, version check, the refund it makes due), and order
reads."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import cast
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate

from ledger import access
from ledger.actors import Actor, Caller
from ledger.domain.gig import Gig
from ledger.domain.order import DIRECT_CANCEL_REASONS, Order
from ledger.domain.payment import Payment, payment_id_for
from ledger.domain.values import (
    MAX_TEXT,
    CancelReason,
    DisputeOutcome,
    OrderStatus,
    PaymentStatus,
    check_text,
)
from ledger.errors import Conflict, NotFound, ValidationFailed, VersionMismatch
from ledger.service.base import Done, LedgerBase, StaleRead

OrderAction = Callable[[Order, Actor, datetime], int | None]
"""Applies one command to a loaded order; returns the refund it makes due, if any."""


class OrderCommands(LedgerBase):
    """Placing orders and moving them through their life."""

    # -- what every order command shares --------------------------------------------------

    @staticmethod
    def _check_version(order: Order, expected_version: int | None) -> None:
        """Raises: VersionMismatch, when the caller (``If-Match``) expected another version.

        Checked only after access was granted, so a stranger learns nothing of the version.
        """
        if expected_version is not None and order.version != expected_version:
            raise VersionMismatch(expected_version, order.version)

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
            return [
                order,
                *self._refund(order, refund or 0, actor, now),
                *self._abandon_unpaid(order, actor, now),
            ]

        return self._run(decide)

    def _abandon_unpaid(self, order: Order, actor: Actor, now: datetime) -> list[Payment]:
        """An order cancelled before it was paid takes its still pending payment with it
        (``Payment.abandon``), so nobody is told to pay a code for a dead order."""
        if order.status != OrderStatus.CANCELLED or order.payment_id is not None:
            return []
        try:
            payment = self._payment(payment_id_for(order.id))
        except NotFound:
            return []
        if payment.status != PaymentStatus.PENDING:
            return []
        payment.abandon(actor, now)
        return [payment]

    def _refund(self, order: Order, amount: int, actor: Actor, now: datetime) -> list[Payment]:
        if amount <= 0 or order.payment_id is None:
            return []
        payment = self._payment(order.payment_id)
        if amount > payment.refundable and self._moved_on(order):
            raise StaleRead  # another writer refunded it between our two reads
        reason = order.cancel_reason or "dispute_split"
        self._give_back(payment, amount, str(reason), actor, now)
        return [payment]

    def _moved_on(self, order: Order) -> bool:
        """Whether the store holds events of ``order`` newer than those it was loaded with
        (asked of the store itself, not of this process's cache)."""
        loaded = order.version - len(order.pending_events)
        return self._stored(Order, order.id).version != loaded

    # -- orders -----------------------------------------------------------------------------

    def place_order(
        self,
        caller: Caller,
        gig_id: UUID,
        package_id: str,
        requirements: str | None = None,
        order_id: UUID | None = None,
    ) -> Done[Order]:
        """Order a package of a gig: pending, awaiting payment, total = the package price.

        Raises:
            NotFound: unknown gig. Forbidden: the caller may not create.
            ValidationFailed: unknown package or bad requirements.
            Conflict: the caller owns the gig, or ``order_id`` is taken.
        """
        actor = access.require_creator(caller, "client")
        if requirements is not None:
            check_text(requirements, "requirements", max_length=MAX_TEXT, required=False)
        new_id = order_id or uuid4()

        def decide() -> list[Order]:
            gig = self._latest(Gig, gig_id)
            if gig.freelancer_id == caller.id:
                raise Conflict("you cannot order your own gig")
            package = gig.package(package_id)
            return [
                Order(
                    order_id=new_id,
                    client_id=caller.id,
                    gig_id=gig.id,
                    freelancer_id=gig.freelancer_id,
                    package=package,
                    fee_rate_bp=self.fee_rate_bp,
                    requirements=requirements,
                    actor=actor,
                    timestamp=self.clock(),
                )
            ]

        return self._run(decide, creates=new_id)

    def get_order(
        self,
        caller: Caller,
        order_id: UUID,
        version: int | None = None,
        as_of: datetime | None = None,
    ) -> Order:
        """The order now, as it was at ``version``, or as it stood at the moment ``as_of``.

        Raises:
            NotFound: unknown, not the caller's, no such version, or placed after ``as_of``.
        """
        current = self._order(order_id)
        access.require_visible(caller, current)
        if as_of is not None:
            version = self._version_at(order_id, as_of)
        if version is None or version == current.version:
            return current
        if not 1 <= version <= current.version:
            raise NotFound(f"order {order_id} has no version {version}")
        return self._load(Order, order_id, version)

    def _version_at(self, order_id: UUID, moment: datetime) -> int:
        """The version of the order's last event recorded at or before ``moment``.

        Raises: NotFound, when the order was placed after ``moment``.
        """
        version = 0
        for event in self.events.get(order_id):
            if cast(Aggregate.Event, event).timestamp > moment:
                break
            version = event.originator_version
        if version == 0:
            raise NotFound(f"order {order_id} did not exist at {moment.isoformat()}")
        return version

    def accept_order(
        self, caller: Caller, order_id: UUID, expected_version: int | None = None
    ) -> Done[Order]:
        """Freelancer confirms the paid order. Raises: NotFound, Forbidden, InvalidTransition."""
        return self._on_order(
            caller, order_id, "accept", expected_version, lambda o, a, t: o.accept(a, t)
        )

    def submit_requirements(
        self, caller: Caller, order_id: UUID, text: str, expected_version: int | None = None
    ) -> Done[Order]:
        """Client adds requirements.

        Raises: NotFound, Forbidden, ValidationFailed, InvalidTransition.
        """
        return self._on_order(
            caller,
            order_id,
            "submit_requirements",
            expected_version,
            lambda o, a, t: o.submit_requirements(text, a, t),
        )

    def deliver_order(
        self, caller: Caller, order_id: UUID, message: str, expected_version: int | None = None
    ) -> Done[Order]:
        """Freelancer delivers. Raises: NotFound, Forbidden, ValidationFailed, InvalidTransition."""
        return self._on_order(
            caller, order_id, "deliver", expected_version, lambda o, a, t: o.deliver(message, a, t)
        )

    def request_revision(
        self, caller: Caller, order_id: UUID, reason: str, expected_version: int | None = None
    ) -> Done[Order]:
        """Client asks for a revision, within the package's allowance.

        Raises: NotFound, Forbidden, ValidationFailed, InvalidTransition (none left).
        """
        return self._on_order(
            caller,
            order_id,
            "request_revision",
            expected_version,
            lambda o, a, t: o.request_revision(reason, a, t),
        )

    def request_extension(
        self,
        caller: Caller,
        order_id: UUID,
        days: int,
        reason: str,
        expected_version: int | None = None,
    ) -> Done[Order]:
        """Freelancer asks for more time. Raises: NotFound, Forbidden, ValidationFailed,
        InvalidTransition (delivered, not processing, a request already open)."""
        return self._on_order(
            caller,
            order_id,
            "request_extension",
            expected_version,
            lambda o, a, t: o.request_extension(days, reason, a, t),
        )

    def accept_extension(
        self, caller: Caller, order_id: UUID, expected_version: int | None = None
    ) -> Done[Order]:
        """Client agrees to the open extension request: ``dueAt`` moves by its days.

        Raises: NotFound, Forbidden, InvalidTransition (none open).
        """
        return self._answer_extension(caller, order_id, True, expected_version)

    def decline_extension(
        self, caller: Caller, order_id: UUID, expected_version: int | None = None
    ) -> Done[Order]:
        """Client refuses the open extension request. Raises: as ``accept_extension``."""
        return self._answer_extension(caller, order_id, False, expected_version)

    def _answer_extension(
        self, caller: Caller, order_id: UUID, accept: bool, expected_version: int | None
    ) -> Done[Order]:
        return self._on_order(
            caller,
            order_id,
            "answer_extension",
            expected_version,
            lambda o, a, t: o.answer_extension(accept, a, t),
        )

    def complete_order(
        self, caller: Caller, order_id: UUID, expected_version: int | None = None
    ) -> Done[Order]:
        """Client accepts the delivery; the fee is fixed in the event.

        Raises: NotFound, Forbidden, InvalidTransition.
        """
        return self._on_order(
            caller, order_id, "complete", expected_version, lambda o, a, t: o.complete(a, t)
        )

    def review_order(
        self,
        caller: Caller,
        order_id: UUID,
        rating: int,
        comment: str | None = None,
        expected_version: int | None = None,
    ) -> Done[Order]:
        """Client rates a completed order, once.

        Raises: NotFound, Forbidden, ValidationFailed, InvalidTransition.
        """
        return self._on_order(
            caller,
            order_id,
            "review",
            expected_version,
            lambda o, a, t: o.review(rating, comment, a, t),
        )

    def request_cancellation(
        self, caller: Caller, order_id: UUID, reason: str, expected_version: int | None = None
    ) -> Done[Order]:
        """Either party asks to cancel.

        Raises: NotFound, Forbidden, ValidationFailed, InvalidTransition.
        """
        return self._on_order(
            caller,
            order_id,
            "request_cancellation",
            expected_version,
            lambda o, a, t: o.request_cancellation(reason, a, t),
        )

    def withdraw_cancellation(
        self, caller: Caller, order_id: UUID, expected_version: int | None = None
    ) -> Done[Order]:
        """The requester takes the request back. Raises: NotFound, Forbidden, InvalidTransition."""
        return self._on_order(
            caller,
            order_id,
            "answer_cancellation",
            expected_version,
            lambda o, a, t: o.withdraw_cancellation(a, t),
        )

    def decline_cancellation(
        self, caller: Caller, order_id: UUID, expected_version: int | None = None
    ) -> Done[Order]:
        """The other party says no. Raises: NotFound, Forbidden, InvalidTransition."""
        return self._on_order(
            caller,
            order_id,
            "answer_cancellation",
            expected_version,
            lambda o, a, t: o.decline_cancellation(a, t),
        )

    def accept_cancellation(
        self, caller: Caller, order_id: UUID, expected_version: int | None = None
    ) -> Done[Order]:
        """The other party agrees: cancelled, and the payment refunded in the same save.

        Raises: NotFound, Forbidden, InvalidTransition.
        """
        return self._on_order(
            caller,
            order_id,
            "answer_cancellation",
            expected_version,
            lambda o, a, t: o.accept_cancellation(a, t),
        )

    def cancel_order(
        self,
        caller: Caller,
        order_id: UUID,
        reason: CancelReason,
        note: str | None = None,
        expected_version: int | None = None,
    ) -> Done[Order]:
        """Client withdraws a pending order; support or admin cancel for a policy violation
        (refunding what was paid).

        Raises: NotFound, Forbidden, ValidationFailed, InvalidTransition.
        """
        if reason not in DIRECT_CANCEL_REASONS:
            allowed = ", ".join(DIRECT_CANCEL_REASONS)
            raise ValidationFailed(f"reason must be one of {allowed}", field="reason")
        kind = CancelReason(reason)
        return self._on_order(
            caller, order_id, kind, expected_version, lambda o, a, t: o.cancel(kind, note, a, t)
        )

    def open_dispute(
        self, caller: Caller, order_id: UUID, reason: str, expected_version: int | None = None
    ) -> Done[Order]:
        """Either party disputes a processing order.

        Raises: NotFound, Forbidden, ValidationFailed, InvalidTransition.
        """
        return self._on_order(
            caller,
            order_id,
            "open_dispute",
            expected_version,
            lambda o, a, t: o.open_dispute(reason, a, t),
        )

    def resolve_dispute(
        self,
        caller: Caller,
        order_id: UUID,
        outcome: DisputeOutcome,
        refund: int | None = None,
        expected_version: int | None = None,
    ) -> Done[Order]:
        """Support releases, refunds or splits (``refund`` centimes back to the client).

        Raises: NotFound, Forbidden, ValidationFailed, InvalidTransition.
        """
        return self._on_order(
            caller,
            order_id,
            "resolve_dispute",
            expected_version,
            lambda o, a, t: o.resolve_dispute(outcome, refund, a, t),
        )
