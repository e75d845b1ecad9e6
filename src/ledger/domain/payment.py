"""The Payment aggregate: one per order, money taken through the gateway, and its refunds.

Its id is derived from the order's id (``payment_id_for``), so a second payment for the same
order collides with the first in the event store itself: the database, not a check-then-act
race, guarantees one payment per order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from ledger.actors import Actor
from ledger.domain.values import CardSummary, PaymentStatus, check_text
from ledger.errors import Forbidden, InvalidTransition, ValidationFailed
from ledger.money import CURRENCY

PAYMENT_NAMESPACE: Final = UUID("6f1c5c3e-52a4-4c1b-9a57-7d0f0c6f3b10")
CARD: Final = "credit_card"
CASHPLUS: Final = "cashplus"
PAYMENT_METHODS: Final = (CARD, CASHPLUS)
"""The methods the ledger processes, each as itself: a card on the gateway's hosted form, or
CashPlus, a code the client pays in cash at an agency. Which of them a payment may use is the
configured gateway's list (``PaymentGateway.methods``); payments stored before the methods
were restricted may name others (``paypal`` …), and are read as they were written."""
MAX_CASH_CODE: Final = 64
EXPIRED: Final = "expired"
"""The failure reason of a payment the clock gave up on (the gateway may still be paid)."""
ORDER_CANCELLED: Final = "order_cancelled"
"""The failure reason of a payment whose order was cancelled before it was paid."""


@dataclass(frozen=True)
class PaymentTerms:
    """The methods a payment may use here (what the gateway takes, as configured), and how
    long each may stay unpaid before the clock fails it: a card's hosted form is a matter of
    minutes, a CashPlus code waits for the client to reach an agency."""

    methods: tuple[str, ...] = PAYMENT_METHODS
    card_window: timedelta = timedelta(minutes=30)
    cash_window: timedelta = timedelta(hours=72)

    def window(self, method: str) -> timedelta:
        return self.cash_window if method == CASHPLUS else self.card_window


def payment_id_for(order_id: UUID) -> UUID:
    """The one payment id an order can ever have."""
    return uuid5(PAYMENT_NAMESPACE, f"payment:{order_id}")


class Payment(Aggregate):
    """Money the client pays for one order, held in escrow until the order ends."""

    expires_at: datetime | None = None
    """When the clock fails the payment if still unpaid; ``None`` for one stored before the
    expiry was recorded with it (the card's window from its creation applies)."""
    cash_code: str | None = None
    """A CashPlus payment's code, which the client quotes at an agency to pay."""
    card: dict[str, str] | None = None
    """The paying card's ``brand`` and ``last4``, when the gateway reported them.

    The three are class defaults, so a payment kept before they existed (a read model's
    state) reads as having none."""

    SETTLERS: ClassVar[tuple[str, ...]] = ("gateway", "clock")
    """Only the gateway (or the clock, for expiry) decides how a payment went. Refunds are
    not checked here: they follow from an order command that was authorised on the order."""

    @event("PaymentCreated")
    def __init__(
        self,
        order_id: UUID,
        client_id: str,
        freelancer_id: str,
        amount: int,
        currency: str,
        payment_method: str,
        actor: Actor,
        timestamp: datetime,
        expires_at: datetime | None = None,
    ) -> None:
        self.order_id = order_id
        self.client_id = client_id
        self.freelancer_id = freelancer_id
        self.amount = amount
        self.currency = currency
        self.payment_method = payment_method
        self.status = PaymentStatus.PENDING
        self.transaction_id: str | None = None
        self.failure_reason: str | None = None
        self.refunded = 0
        self.refunds: list[dict[str, Any]] = []
        self.checkout: dict[str, str | None] | None = None
        self.requested_refunds: list[dict[str, Any]] = []
        self.gateway_transaction: str | None = None
        self.webhook_ids: list[str] = []
        self.expires_at = expires_at

    @property
    def in_cash(self) -> bool:
        """Whether it is paid in cash at a CashPlus agency: a ``cashplus`` payment made since
        each method is processed as itself (it records its expiry). One stored before, so
        labelled, went through the card form, and is a card payment."""
        return self.payment_method == CASHPLUS and self.expires_at is not None

    @staticmethod
    def create_id(order_id: UUID) -> UUID:
        return payment_id_for(order_id)

    @classmethod
    def create(
        cls,
        order_id: UUID,
        client_id: str,
        freelancer_id: str,
        amount: int,
        payment_method: str,
        actor: Actor,
        timestamp: datetime,
        *,
        accepted: Sequence[str] = PAYMENT_METHODS,
        expires_at: datetime | None = None,
    ) -> Payment:
        """Start paying ``amount`` centimes for an order by ``payment_method``, one of the
        methods the gateway takes (``accepted``); unpaid at ``expires_at``, the clock fails it.

        Raises:
            ValidationFailed: a method the gateway does not take, or an expiry not after
                the payment's creation.
        """
        cls.check_method(payment_method, accepted)
        if expires_at is not None and expires_at <= timestamp:
            raise ValidationFailed("a payment must expire after it is created", field="expiresAt")
        return cls(
            order_id=order_id,
            client_id=client_id,
            freelancer_id=freelancer_id,
            amount=amount,
            currency=CURRENCY,
            payment_method=payment_method,
            actor=actor,
            timestamp=timestamp,
            expires_at=expires_at,
        )

    @staticmethod
    def check_method(payment_method: str, accepted: Sequence[str]) -> None:
        """Raises: ValidationFailed, for a method not among ``accepted`` (the detail lists
        them)."""
        if payment_method not in accepted:
            raise ValidationFailed(
                f"paymentMethod must be one of {', '.join(accepted)} (what the gateway takes)",
                field="paymentMethod",
            )

    def _require_settler(self, actor: Actor) -> None:
        if actor.role not in self.SETTLERS:
            raise Forbidden(f"only the gateway may settle a payment, not the {actor.role}")

    def _require_pending(self, doing: str) -> None:
        if self.status != PaymentStatus.PENDING:
            raise InvalidTransition(f"cannot {doing} a payment that is {self.status}")

    def open_checkout(
        self,
        token_id: str,
        payment_url: str | None,
        gateway_transaction: str | None,
        actor: Actor,
        timestamp: datetime,
        cash_code: str | None = None,
    ) -> None:
        """Keep what the gateway opened for this payment: a card payment's hosted form
        (``payment_url``, where the client goes to pay); a CashPlus payment's code, which
        the client quotes at an agency (no form); and the gateway's transaction id when it
        gave one.

        Raises: ValidationFailed, for a card payment without a form, a CashPlus payment
        without a code, or either given to the other method.
        """
        check_text(token_id, "tokenId", max_length=255)
        if gateway_transaction is not None:
            check_text(gateway_transaction, "transactionId", max_length=255)
        if self.payment_method == CASHPLUS:
            if cash_code is None or payment_url is not None:
                raise ValidationFailed("a CashPlus payment opens with a code and no form")
            check_text(cash_code, "cashCode", max_length=MAX_CASH_CODE, single_line=True)
        else:
            if payment_url is None or cash_code is not None:
                raise ValidationFailed("a card payment opens with a form and no code")
            check_text(payment_url, "paymentUrl", max_length=2_000)
        self._require_pending("open a checkout for")
        self._checkout_opened(
            token_id, payment_url, gateway_transaction, actor, timestamp, cash_code
        )

    @event("CheckoutOpened")
    def _checkout_opened(
        self,
        token_id: str,
        payment_url: str | None,
        gateway_transaction: str | None,
        actor: Actor,
        timestamp: datetime,
        cash_code: str | None = None,
    ) -> None:
        self.checkout = {"token_id": token_id, "payment_url": payment_url}
        self.gateway_transaction = gateway_transaction
        self.cash_code = cash_code

    def has_seen(self, webhook_id: str | None) -> bool:
        """Whether the gateway's notification ``webhook_id`` already had its effect."""
        return webhook_id is not None and webhook_id in self.webhook_ids

    def succeed(
        self,
        transaction_id: str,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
        card: CardSummary | None = None,
    ) -> None:
        """The gateway reports the money taken, and for a card, when it says, the card's
        brand and last four digits (never more of its number). Also after a failure (the
        clock expired the payment, or a declined card was followed by one that paid): the
        client did pay, so the money must be accounted for (and given back, since the order
        is gone)."""
        self._require_settler(actor)
        check_text(transaction_id, "transactionId", max_length=255)
        if self.status == PaymentStatus.SUCCESS:
            raise InvalidTransition("cannot record success of a payment that is success")
        if card is not None and self.in_cash:
            card = None  # cash has no card, whatever the notification carries
        summary = None if card is None else asdict(card)
        self._succeeded(transaction_id, actor, timestamp, webhook_id, summary)

    @event("PaymentSucceeded")
    def _succeeded(
        self,
        transaction_id: str,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
        card: dict[str, str] | None = None,
    ) -> None:
        self.status = PaymentStatus.SUCCESS
        self.transaction_id = transaction_id
        self.failure_reason = None
        self.card = card
        self._saw(webhook_id)

    def fail(
        self,
        reason: str,
        transaction_id: str | None,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
    ) -> None:
        """The gateway declined, or the payment expired unpaid."""
        self._require_settler(actor)
        check_text(reason, "reason", max_length=1_000)
        self._require_pending("record failure of")
        self._failed(reason, transaction_id, actor, timestamp, webhook_id)

    @event("PaymentFailed")
    def _failed(
        self,
        reason: str,
        transaction_id: str | None,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
    ) -> None:
        self.status = PaymentStatus.FAILED
        self.failure_reason = reason
        self.transaction_id = transaction_id
        self._saw(webhook_id)

    def abandon(self, actor: Actor, timestamp: datetime) -> None:
        """The order was cancelled before it was paid (the client withdrew, or support for
        a policy violation, both checked on the order): the payment fails
        (``order_cancelled``), so no one is told to pay it. Should the client pay at the
        gateway after all, that success is still recorded, and given back."""
        self._require_pending("abandon")
        self._failed(ORDER_CANCELLED, None, actor, timestamp)

    def _saw(self, webhook_id: str | None) -> None:
        if webhook_id is not None:
            self.webhook_ids.append(webhook_id)

    @property
    def refundable(self) -> int:
        """What may still go back: taken, less refunded, less refunds already asked for."""
        asked = sum(int(request["amount"]) for request in self.requested_refunds)
        return self.amount - self.refunded - asked

    def _check_refund(self, amount: int) -> None:
        if self.status != PaymentStatus.SUCCESS:
            raise InvalidTransition(f"cannot refund a payment that is {self.status}")
        if isinstance(amount, bool) or not 0 < amount <= self.refundable:
            raise ValidationFailed(
                "a refund must be above 0 and at most what remains of the payment",
                field="amount",
            )

    def refund(
        self,
        amount: int,
        reason: str,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
    ) -> None:
        """Record money going back to the client (never more than was taken): a gateway
        that refunds at once (the sandbox), or one that reports a refund made there."""
        self._check_refund(amount)
        self._refund_recorded(amount, reason, actor, timestamp, webhook_id)

    @event("RefundRecorded")
    def _refund_recorded(
        self,
        amount: int,
        reason: str,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
        reference: str | None = None,
    ) -> None:
        self.refunded += amount
        refund = {"amount": amount, "reason": reason, "at": timestamp}
        self.refunds.append(refund if reference is None else {**refund, "reference": reference})
        self._saw(webhook_id)

    def request_refund(self, amount: int, reason: str, actor: Actor, timestamp: datetime) -> None:
        """Ask for money to go back where the gateway offers no refund API (YouCanPay): it
        is refunded there by hand, then confirmed (``confirm_refund``)."""
        self._check_refund(amount)
        self._refund_requested(amount, reason, actor, timestamp)

    @event("RefundRequested")
    def _refund_requested(
        self, amount: int, reason: str, actor: Actor, timestamp: datetime
    ) -> None:
        self.requested_refunds.append({"amount": amount, "reason": reason, "at": timestamp})

    def confirm_refund(
        self,
        reference: str,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
    ) -> None:
        """The oldest requested refund was made at the gateway (``reference`` is its id
        there): it now counts as refunded.

        Raises: InvalidTransition, when no refund is waiting.
        """
        check_text(reference, "reference", max_length=255)
        if not self.requested_refunds:
            raise InvalidTransition("no refund of this payment is waiting for confirmation")
        self._refund_confirmed(reference, actor, timestamp, webhook_id)

    @event("RefundConfirmed")
    def _refund_confirmed(
        self,
        reference: str,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
    ) -> None:
        request = self.requested_refunds.pop(0)
        self.refunded += request["amount"]
        refund = {**request, "at": timestamp, "reference": reference}
        self.refunds.append(refund if webhook_id else {**refund, "by_hand": True})
        self._saw(webhook_id)

    def notice_refund(
        self,
        amount: int,
        reference: str | None,
        actor: Actor,
        timestamp: datetime,
        webhook_id: str | None = None,
    ) -> bool:
        """Match the gateway's notice of a refund to one support already confirmed by hand,
        so it is not counted twice: the one quoting ``reference``, else the oldest of that
        amount. Each is matched once, so a later refund of the same amount counts. Returns
        whether one matched."""
        unnoticed = [
            index
            for index, refund in enumerate(self.refunds)
            if refund.get("by_hand") and not refund.get("noticed")
        ]
        for wanted in ("reference", "amount"):
            value = reference if wanted == "reference" else amount
            for index in unnoticed:
                if value is not None and self.refunds[index].get(wanted) == value:
                    self._refund_noticed(index, actor, timestamp, webhook_id)
                    return True
        return False

    @event("RefundNoticed")
    def _refund_noticed(
        self, index: int, actor: Actor, timestamp: datetime, webhook_id: str | None = None
    ) -> None:
        self.refunds[index] = {**self.refunds[index], "noticed": True}
        self._saw(webhook_id)
