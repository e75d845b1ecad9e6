"""The Order aggregate: the state machine of docs/architecture.md, one guarded command per row.

Each public method checks who acts and from which status and stage, then triggers one
``@event`` method whose body only assigns state: bodies run again on every replay, so they
read no clock, draw no randomness and do no I/O. Whatever depends on the clock or on
configuration (the time, the fee, the refund) is decided here and passed into the event.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.actors import Actor
from ledger.domain.values import (
    MAX_TEXT,
    CancelReason,
    DeadlineReason,
    DisputeOutcome,
    OrderStatus,
    Package,
    Stage,
    check_text,
)
from ledger.errors import Forbidden, InvalidTransition, ValidationFailed
from ledger.money import fee_of

PENDING, PROCESSING = OrderStatus.PENDING, OrderStatus.PROCESSING
COMPLETED, CANCELLED = OrderStatus.COMPLETED, OrderStatus.CANCELLED
WORKING_STAGES = (Stage.AWAITING_ACCEPTANCE, Stage.IN_PROGRESS, Stage.REVISION_REQUESTED)
NEGOTIABLE_STAGES = (*WORKING_STAGES, Stage.DELIVERED)
PARTIES = ("client", "freelancer")
DIRECT_CANCEL_REASONS = (
    CancelReason.CLIENT_WITHDREW,
    CancelReason.POLICY_VIOLATION,
    CancelReason.PAYMENT_FAILED,
)
"""The reasons an order can be cancelled for without an agreement or a dispute."""


MAX_EXTENSION_DAYS = 30
"""The most days one delivery extension adds."""
MAX_CANCELLATION_REQUESTS = 5
"""Cancellation requests an order takes in its life (withdrawn and declined ones count):
past them, a party who still wants out opens a dispute, so request/withdraw loops cannot
grow an order's story without bound."""


class Order(Aggregate):
    """A client's order of one package of a freelancer's gig."""

    extension: dict[str, object] | None = None
    """The freelancer's open request for more time (``days``, ``reason``, ``requested_at``),
    until the client answers; a class default, so an order kept before extensions existed
    reads as having none."""
    cancellation_requests = 0
    """Cancellation requests made so far; a class default, so an order kept before the
    count existed (a read model's state) reads 0 and counts on from its next request."""

    WHO: ClassVar[dict[str, tuple[str, ...]]] = {
        "await_cash_payment": ("client",),
        "confirm_payment": ("gateway",),
        "accept": ("freelancer",),
        "submit_requirements": ("client",),
        "deliver": ("freelancer",),
        "request_revision": ("client",),
        "complete": ("client", "clock"),
        "request_cancellation": PARTIES,
        "answer_cancellation": PARTIES,
        "open_dispute": PARTIES,
        "resolve_dispute": ("support", "admin"),
        "review": ("client",),
        "take_gateway_refund": ("gateway",),
        "clear_funds": ("clock",),
        "auto_complete": ("clock",),
        "auto_accept_cancellation": ("clock",),
        "mark_late": ("clock",),
        "request_extension": ("freelancer",),
        "answer_extension": ("client",),
        CancelReason.CLIENT_WITHDREW: ("client",),
        CancelReason.POLICY_VIOLATION: ("support", "admin"),
        CancelReason.PAYMENT_FAILED: ("gateway", "clock"),
    }
    """Who may take each command (and each kind of direct cancellation), in the capacity
    the application should pick first. The application reads this table to decide the
    caller's capacity; the aggregate checks it again, so neither can drift from the other."""

    @event("OrderPlaced")
    def __init__(
        self,
        order_id: UUID,
        client_id: str,
        gig_id: UUID,
        freelancer_id: str,
        package: Package,
        fee_rate_bp: int,
        requirements: str | None,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.client_id = client_id
        self.gig_id = gig_id
        self.freelancer_id = freelancer_id
        self.package = package
        self.total = package.price
        self.fee_rate_bp = fee_rate_bp
        self.requirements = requirements
        self.status = PENDING
        self.stage = Stage.AWAITING_PAYMENT
        self.revisions_used = 0
        self.due_at: datetime | None = None
        self.delivered_at: datetime | None = None
        self.cancellation_requested_at: datetime | None = None
        self.marked_late_at: datetime | None = None
        self.paid_amount = 0
        self.payment_id: UUID | None = None
        self.cancellation_by: str | None = None
        self.stage_before_cancellation: Stage | None = None
        self.cancel_reason: CancelReason | None = None
        self.dispute_outcome: DisputeOutcome | None = None
        self.refunded = 0
        self.refunded_at_gateway = 0
        self.fee = 0
        self.net = 0
        self.released_at: datetime | None = None
        self.funds_cleared_at: datetime | None = None
        self.rating: int | None = None
        self.review_comment: str | None = None

    @staticmethod
    def create_id(order_id: UUID) -> UUID:
        return order_id

    # -- guards ---------------------------------------------------------------------------

    def party_id(self, role: str) -> str | None:
        """The user id behind a party role on this order (``None`` for staff and system)."""
        return {"client": self.client_id, "freelancer": self.freelancer_id}.get(role)

    def _require(self, actor: Actor, command: str) -> None:
        allowed = self.WHO[command]
        expected_id = self.party_id(actor.role)
        if actor.role not in allowed or (expected_id is not None and actor.id != expected_id):
            raise Forbidden(f"{command.replace('_', ' ')} is for the {' or '.join(allowed)}")

    def _require_state(
        self, doing: str, *, status: Collection[str] = (), stage: Collection[str] = ()
    ) -> None:
        if (status and self.status not in status) or (stage and self.stage not in stage):
            raise InvalidTransition(f"cannot {doing} an order that is {self.status} ({self.stage})")

    @property
    def held(self) -> int:
        """What escrow holds for this order while it runs: what was paid, less what the
        gateway gave back on its own. Payouts, fees and refunds are all cut from this."""
        return self.paid_amount - self.refunded_at_gateway

    # -- payment ----------------------------------------------------------------------------

    def await_cash_payment(self, payment_id: UUID, actor: Actor, timestamp: datetime) -> None:
        """The client chose to pay in cash (CashPlus): the order waits for the agency's
        payment, which the gateway reports, instead of a card form's minutes."""
        self._require(actor, "await_cash_payment")
        self._require_state(
            "wait for a cash payment of", status=[PENDING], stage=[Stage.AWAITING_PAYMENT]
        )
        self._cash_payment_awaited(payment_id, actor, timestamp)

    @event("CashPaymentAwaited")
    def _cash_payment_awaited(self, payment_id: UUID, actor: Actor, timestamp: datetime) -> None:
        self.stage = Stage.AWAITING_CASH_PAYMENT  # payment_id stays unset: nothing is paid

    def confirm_payment(
        self, payment_id: UUID, amount: int, actor: Actor, timestamp: datetime
    ) -> None:
        """The gateway took the money: the order starts, and its due date is set."""
        self._require(actor, "confirm_payment")
        self._require_state("confirm payment of", status=[PENDING])
        self._payment_confirmed(payment_id, amount, actor, timestamp)

    @event("OrderPaymentConfirmed")
    def _payment_confirmed(
        self, payment_id: UUID, amount: int, actor: Actor, timestamp: datetime
    ) -> None:
        self.status, self.stage = PROCESSING, Stage.AWAITING_ACCEPTANCE
        self.payment_id = payment_id
        self.paid_amount = amount
        self.due_at = timestamp + timedelta(days=self.package.delivery_days)

    # -- the work ---------------------------------------------------------------------------

    def accept(self, actor: Actor, timestamp: datetime) -> None:
        self._require(actor, "accept")
        self._require_state("accept", stage=[Stage.AWAITING_ACCEPTANCE])
        self._accepted(actor, timestamp)

    @event("OrderAccepted")
    def _accepted(self, actor: Actor, timestamp: datetime) -> None:
        self.stage = Stage.IN_PROGRESS

    def submit_requirements(self, text: str, actor: Actor, timestamp: datetime) -> None:
        self._require(actor, "submit_requirements")
        check_text(text, "text", max_length=MAX_TEXT)
        self._require_state("submit requirements for", status=[PROCESSING])
        self._requirements_submitted(text, actor, timestamp)

    @event("RequirementsSubmitted")
    def _requirements_submitted(self, text: str, actor: Actor, timestamp: datetime) -> None:
        self.requirements = text

    def deliver(self, message: str, actor: Actor, timestamp: datetime) -> None:
        self._require(actor, "deliver")
        check_text(message, "message", max_length=MAX_TEXT)
        self._require_state("deliver", stage=WORKING_STAGES)
        self._delivered(message, actor, timestamp)

    @event("OrderDelivered")
    def _delivered(self, message: str, actor: Actor, timestamp: datetime) -> None:
        self.stage = Stage.DELIVERED
        self.delivered_at = timestamp

    def request_revision(self, reason: str, actor: Actor, timestamp: datetime) -> None:
        self._require(actor, "request_revision")
        check_text(reason, "reason", max_length=MAX_TEXT)
        self._require_state("request a revision of", stage=[Stage.DELIVERED])
        if self.revisions_used >= self.package.revisions:
            raise InvalidTransition(
                f"all {self.package.revisions} revisions of the package have been used"
            )
        self._revision_requested(reason, actor, timestamp)

    @event("RevisionRequested")
    def _revision_requested(self, reason: str, actor: Actor, timestamp: datetime) -> None:
        self.stage = Stage.REVISION_REQUESTED
        self.revisions_used += 1

    def complete(self, actor: Actor, timestamp: datetime) -> None:
        """The client accepts the delivery (or the clock does, after the waiting period)."""
        self._require(actor, "complete")
        self._require_state("complete", stage=[Stage.DELIVERED])
        fee = fee_of(self.held, self.fee_rate_bp)
        self._completed(fee, self.held - fee, actor, timestamp)

    @event("OrderCompleted")
    def _completed(
        self, fee: int, net: int, actor: Actor, timestamp: datetime, reason: str | None = None
    ) -> None:
        """``reason`` is set when the clock completed the order (``DeadlineReason``); it
        defaults so that completions stored before it existed still replay."""
        self.status, self.stage = COMPLETED, Stage.CLOSED
        self.fee, self.net = fee, net
        self.released_at = timestamp

    def review(self, rating: int, comment: str | None, actor: Actor, timestamp: datetime) -> None:
        self._require(actor, "review")
        if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
            raise ValidationFailed("rating must be a whole number from 1 to 5", field="rating")
        if comment is not None:
            check_text(comment, "comment", max_length=MAX_TEXT, required=False)
        self._require_state("review", status=[COMPLETED])
        if self.rating is not None:
            raise InvalidTransition("this order has already been reviewed")
        self._reviewed(self.gig_id, rating, comment, actor, timestamp)

    @event("OrderReviewed")
    def _reviewed(
        self, gig_id: UUID, rating: int, comment: str | None, actor: Actor, timestamp: datetime
    ) -> None:
        """``gig_id`` rides along so the gig catalogue can rate the gig from this event."""
        self.rating, self.review_comment = rating, comment

    # -- cancellation by agreement ----------------------------------------------------------

    def request_cancellation(self, reason: str, actor: Actor, timestamp: datetime) -> None:
        self._require(actor, "request_cancellation")
        check_text(reason, "reason", max_length=MAX_TEXT)
        self._require_state("request cancellation of", stage=NEGOTIABLE_STAGES)
        if self.cancellation_requests >= MAX_CANCELLATION_REQUESTS:
            raise InvalidTransition(
                f"this order has had {MAX_CANCELLATION_REQUESTS} cancellation requests;"
                " open a dispute instead"
            )
        self._cancellation_requested(reason, actor, timestamp)

    @event("CancellationRequested")
    def _cancellation_requested(self, reason: str, actor: Actor, timestamp: datetime) -> None:
        self.cancellation_requests += 1
        self.stage_before_cancellation = self.stage
        self.stage = Stage.CANCELLATION_REQUESTED
        self.cancellation_by = actor.role
        self.cancellation_requested_at = timestamp

    def withdraw_cancellation(self, actor: Actor, timestamp: datetime) -> None:
        self._require_answer(actor, "withdraw", by_requester=True)
        self._cancellation_withdrawn(actor, timestamp)

    @event("CancellationWithdrawn")
    def _cancellation_withdrawn(self, actor: Actor, timestamp: datetime) -> None:
        self._resume_after_cancellation_request(timestamp)

    def decline_cancellation(self, actor: Actor, timestamp: datetime) -> None:
        self._require_answer(actor, "decline", by_requester=False)
        self._cancellation_declined(actor, timestamp)

    @event("CancellationDeclined")
    def _cancellation_declined(self, actor: Actor, timestamp: datetime) -> None:
        self._resume_after_cancellation_request(timestamp)

    def accept_cancellation(self, actor: Actor, timestamp: datetime) -> int:
        """The other party agrees: the order is cancelled and what was paid is refunded.

        Returns the refund in centimes, for the application to record on the payment.
        """
        self._require_answer(actor, "accept", by_requester=False)
        self._cancellation_accepted(actor, timestamp)
        refund = self.held
        self._cancelled(CancelReason.MUTUAL_AGREEMENT, None, refund, actor, timestamp)
        return refund

    @event("CancellationAccepted")
    def _cancellation_accepted(
        self, actor: Actor, timestamp: datetime, reason: str | None = None
    ) -> None:
        """``reason`` is set when the clock accepted for the silent party
        (``DeadlineReason``); it defaults so that older acceptances still replay."""
        self.cancellation_by = None
        self.cancellation_requested_at = None

    def _require_answer(self, actor: Actor, answer: str, *, by_requester: bool) -> None:
        self._require(actor, "answer_cancellation")
        self._require_state(
            f"{answer} a cancellation request of", stage=[Stage.CANCELLATION_REQUESTED]
        )
        if (actor.role == self.cancellation_by) != by_requester:
            who = "the party who asked" if by_requester else "the other party"
            raise Forbidden(f"only {who} may {answer} this cancellation request")

    def _resume_after_cancellation_request(self, timestamp: datetime) -> None:
        """Back to where the request found the order. A delivery waits for the client's
        answer afresh from here, so a refused request never lets the clock complete the
        order at once, before the client could answer the delivery."""
        self.stage = self.stage_before_cancellation or Stage.AWAITING_ACCEPTANCE
        self.stage_before_cancellation = None
        self.cancellation_by = None
        self.cancellation_requested_at = None
        if self.stage == Stage.DELIVERED:
            self.delivered_at = timestamp

    # -- direct cancellation ----------------------------------------------------------------

    def cancel(
        self, reason: CancelReason, note: str | None, actor: Actor, timestamp: datetime
    ) -> int:
        """Cancel without agreement: the client before paying, support for a policy
        violation, the gateway or clock when payment failed. Returns the refund due."""
        if reason not in DIRECT_CANCEL_REASONS:
            raise ValidationFailed(
                f"an order cannot be cancelled directly for {reason}", field="reason"
            )
        self._require(actor, reason)
        if note is not None:
            check_text(note, "note", max_length=MAX_TEXT, required=False)
        allowed = [PENDING, PROCESSING] if reason == CancelReason.POLICY_VIOLATION else [PENDING]
        self._require_state(f"cancel ({reason})", status=allowed)
        refund = self.held
        self._cancelled(reason, note, refund, actor, timestamp)
        return refund

    @event("OrderCancelled")
    def _cancelled(
        self,
        reason: CancelReason,
        note: str | None,
        refund: int,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.status, self.stage = CANCELLED, Stage.CLOSED
        self.cancel_reason = CancelReason(reason)
        self.refunded = refund

    # -- disputes -------------------------------------------------------------------------

    def open_dispute(self, reason: str, actor: Actor, timestamp: datetime) -> None:
        self._require(actor, "open_dispute")
        check_text(reason, "reason", max_length=MAX_TEXT)
        self._require_state("open a dispute on", status=[PROCESSING])
        if self.stage == Stage.IN_DISPUTE:
            raise InvalidTransition("this order is already in dispute")
        self._dispute_opened(reason, actor, timestamp)

    @event("DisputeOpened")
    def _dispute_opened(self, reason: str, actor: Actor, timestamp: datetime) -> None:
        self.stage = Stage.IN_DISPUTE
        self.cancellation_by = self.stage_before_cancellation = None
        self.cancellation_requested_at = None

    def resolve_dispute(
        self, outcome: DisputeOutcome, refund: int | None, actor: Actor, timestamp: datetime
    ) -> int:
        """Support decides: release everything, refund everything, or split.

        ``refund`` is required for a split (strictly between 0 and the amount paid) and
        refused otherwise. Returns the refund due to the client.
        """
        self._require(actor, "resolve_dispute")
        self._require_state("resolve a dispute on", stage=[Stage.IN_DISPUTE])
        refund = self._dispute_refund(DisputeOutcome(outcome), refund)
        kept = self.held - refund
        fee = fee_of(kept, self.fee_rate_bp)
        self._dispute_resolved(outcome, refund, fee, kept - fee, actor, timestamp)
        return refund

    def _dispute_refund(self, outcome: DisputeOutcome, refund: int | None) -> int:
        if outcome != DisputeOutcome.SPLIT:
            if refund is not None:
                raise ValidationFailed("refundAmount is only for a split", field="refundAmount")
            return self.held if outcome == DisputeOutcome.REFUND else 0
        if refund is None or isinstance(refund, bool) or not 0 < refund < self.held:
            raise ValidationFailed(
                "a split needs a refundAmount above 0 and below the amount held in escrow",
                field="refundAmount",
            )
        return refund

    @event("DisputeResolved")
    def _dispute_resolved(
        self,
        outcome: DisputeOutcome,
        refund: int,
        fee: int,
        net: int,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.dispute_outcome = DisputeOutcome(outcome)
        self.refunded, self.fee, self.net = refund, fee, net
        if fee + net:
            self.released_at = timestamp
        if self.dispute_outcome == DisputeOutcome.REFUND:
            self.status, self.cancel_reason = CANCELLED, CancelReason.DISPUTE_REFUND
        else:
            self.status = COMPLETED
        self.stage = Stage.CLOSED

    # -- money after the fact ---------------------------------------------------------------

    def take_gateway_refund(self, amount: int, actor: Actor, timestamp: datetime) -> None:
        """The gateway gave money back to the client on its own (a refund made in its
        dashboard) while the order runs: escrow holds less, so the payout shrinks; once
        nothing is held the order is cancelled, since nobody could be paid for it.

        Raises: Forbidden (not the gateway), InvalidTransition (not processing),
        ValidationFailed (more than is held).
        """
        self._require(actor, "take_gateway_refund")
        self._require_state("take a gateway refund on", status=[PROCESSING])
        if isinstance(amount, bool) or not 0 < amount <= self.held:
            raise ValidationFailed(
                "a gateway refund must be above 0 and at most what escrow holds", field="amount"
            )
        self._refunded_at_gateway(amount, actor, timestamp)
        if self.held == 0:
            refunded = self.refunded_at_gateway
            self._cancelled(CancelReason.REFUNDED_AT_GATEWAY, None, refunded, actor, timestamp)

    @event("OrderRefundedAtGateway")
    def _refunded_at_gateway(self, amount: int, actor: Actor, timestamp: datetime) -> None:
        self.refunded_at_gateway += amount

    def clear_funds(self, after: timedelta, actor: Actor, timestamp: datetime) -> None:
        """The clock: the freelancer's share, released at least ``after`` ago, is cleared
        (available to withdraw rather than pending clearance).

        Raises: Forbidden (not the clock), InvalidTransition (nothing released to the
        freelancer, already cleared, or not due yet).
        """
        self._require(actor, "clear_funds")
        if self.released_at is None or self.net <= 0:
            raise InvalidTransition("nothing of this order was released to the freelancer")
        if self.funds_cleared_at is not None:
            raise InvalidTransition("the funds of this order have already cleared")
        if self.released_at + after > timestamp:
            raise InvalidTransition(f"the funds clear at {(self.released_at + after).isoformat()}")
        self._funds_cleared(actor, timestamp)

    @event("FundsCleared")
    def _funds_cleared(self, actor: Actor, timestamp: datetime) -> None:
        self.funds_cleared_at = timestamp

    # -- deadlines (the clock) --------------------------------------------------------------
    # Each decides on the order's own state whether its moment has come, so a timer that
    # read a stale read model, or a second worker that lost the race, is refused here.

    def auto_complete(self, after: timedelta, actor: Actor, timestamp: datetime) -> None:
        """The clock completes a delivery the client left unanswered for ``after``, as the
        client's completion would (``OrderCompleted``, same fee and net), with the reason.

        Raises: Forbidden (not the clock), InvalidTransition (not delivered, or not due).
        """
        self._require(actor, "auto_complete")
        self._require_state("complete", stage=[Stage.DELIVERED])
        self._require_due("the delivery completes itself", self.delivered_at, after, timestamp)
        fee = fee_of(self.held, self.fee_rate_bp)
        reason = DeadlineReason.DELIVERY_UNANSWERED
        self._completed(fee, self.held - fee, actor, timestamp, reason)

    def auto_accept_cancellation(self, after: timedelta, actor: Actor, timestamp: datetime) -> int:
        """The clock accepts a cancellation request left unanswered for ``after``, as the
        other party would (``CancellationAccepted``, ``OrderCancelled`` by mutual agreement),
        with the reason. Returns the refund due, for the application to record.

        Raises: Forbidden (not the clock), InvalidTransition (no request, or not due).
        """
        self._require(actor, "auto_accept_cancellation")
        self._require_state(
            "accept a cancellation request of", stage=[Stage.CANCELLATION_REQUESTED]
        )
        since = self.cancellation_requested_at
        self._require_due("the cancellation request is accepted", since, after, timestamp)
        self._cancellation_accepted(actor, timestamp, DeadlineReason.CANCELLATION_UNANSWERED)
        refund = self.held
        self._cancelled(CancelReason.MUTUAL_AGREEMENT, None, refund, actor, timestamp)
        return refund

    # -- delivery extensions ----------------------------------------------------------------

    def request_extension(self, days: int, reason: str, actor: Actor, timestamp: datetime) -> None:
        """The freelancer asks for ``days`` more (1 to ``MAX_EXTENSION_DAYS``), saying why,
        while the order is processing and not delivered; one open request at a time.

        Raises: Forbidden (not the freelancer), ValidationFailed, InvalidTransition.
        """
        self._require(actor, "request_extension")
        if isinstance(days, bool) or not isinstance(days, int):
            raise ValidationFailed("days must be a whole number", field="days")
        if not 1 <= days <= MAX_EXTENSION_DAYS:
            raise ValidationFailed(f"days must be 1 to {MAX_EXTENSION_DAYS}", field="days")
        check_text(reason, "reason", max_length=MAX_TEXT)
        self._require_state("extend", status=[PROCESSING], stage=WORKING_STAGES)
        if self.delivered_at is not None:
            raise InvalidTransition("this order was delivered: there is nothing to extend")
        if self.extension is not None:
            raise InvalidTransition("an extension request is already waiting for an answer")
        self._extension_requested(days, reason, actor, timestamp)

    @event("ExtensionRequested")
    def _extension_requested(
        self, days: int, reason: str, actor: Actor, timestamp: datetime
    ) -> None:
        self.extension = {"days": days, "reason": reason, "requested_at": timestamp}

    def answer_extension(self, accept: bool, actor: Actor, timestamp: datetime) -> None:
        """The client accepts (``dueAt`` moves by the days asked, and an order already
        marked late may be marked again at the new date) or declines the open request.

        Raises: Forbidden (not the client), InvalidTransition (no open request, or the
        order is over).
        """
        self._require(actor, "answer_extension")
        self._require_state("answer an extension request on", status=[PROCESSING])
        if self.extension is None or self.due_at is None:
            raise InvalidTransition("there is no extension request to answer")
        if accept:
            days = int(str(self.extension["days"]))
            self._extension_accepted(self.due_at + timedelta(days=days), actor, timestamp)
        else:
            self._extension_declined(actor, timestamp)

    @event("ExtensionAccepted")
    def _extension_accepted(self, due_at: datetime, actor: Actor, timestamp: datetime) -> None:
        """``due_at`` is the new due date, decided when accepted."""
        self.due_at, self.extension = due_at, None
        self.marked_late_at = None  # the lateness timer follows the new date

    @event("ExtensionDeclined")
    def _extension_declined(self, actor: Actor, timestamp: datetime) -> None:
        self.extension = None

    def mark_late(self, actor: Actor, timestamp: datetime) -> None:
        """The clock records, once, that a processing order passed its ``dueAt`` with no
        delivery (``OrderMarkedLate``; status and stage unchanged). Only a first delivery
        counts: an order delivered on time and sent back for a revision after ``dueAt`` is
        not late. A later delivery adds nothing: the order stays marked.

        Raises: Forbidden (not the clock), InvalidTransition (delivered or otherwise not
        working, already marked, or not past due).
        """
        self._require(actor, "mark_late")
        self._require_state("mark late", status=[PROCESSING], stage=WORKING_STAGES)
        if self.delivered_at is not None:
            raise InvalidTransition("this order was delivered")
        if self.marked_late_at is not None:
            raise InvalidTransition("this order has already been marked late")
        if self.due_at is None or timestamp <= self.due_at:
            raise InvalidTransition(f"this order is due at {self.due_at}")
        self._marked_late(self.due_at, DeadlineReason.PAST_DUE, actor, timestamp)

    @staticmethod
    def _require_due(
        what: str, since: datetime | None, after: timedelta, timestamp: datetime
    ) -> None:
        if since is None or since + after > timestamp:
            at = "a later time" if since is None else (since + after).isoformat()
            raise InvalidTransition(f"{what} at {at}")

    @event("OrderMarkedLate")
    def _marked_late(
        self, due_at: datetime, reason: str, actor: Actor, timestamp: datetime
    ) -> None:
        """``due_at`` rides along so readers (notifications) need not look it up."""
        self.marked_late_at = timestamp
