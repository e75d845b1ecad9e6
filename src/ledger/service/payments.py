"""Payment commands: open the one payment of an order, and record what the gateway says.

Settling a payment and moving its order happen in one save, so the order is never
``processing`` without a successful payment nor ``pending`` after one.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from ledger import access
from ledger.actors import Actor, Caller
from ledger.domain.order import Order
from ledger.domain.payment import CASHPLUS, EXPIRED, Payment, payment_id_for
from ledger.domain.values import (
    CancelReason,
    CardSummary,
    OrderStatus,
    PaymentStatus,
    check_text,
)
from ledger.errors import (
    AlreadyApplied,
    Conflict,
    InvalidTransition,
    NotFound,
    ValidationFailed,
    VersionMismatch,
)
from ledger.gateway.port import Checkout, CheckoutRequest, Transaction
from ledger.money import CURRENCY
from ledger.service.base import Done, LedgerBase

LATE_PAYMENT_REFUND = "order_cancelled_before_payment"
GATEWAY_REFUND = "refunded_at_gateway"


class _NothingToDo(Exception):
    """A timer found nothing due on this aggregate (not an error for anyone)."""


class PaymentCommands(LedgerBase):
    """The client starts paying; the gateway (or the clock) settles."""

    def create_payment(
        self,
        caller: Caller,
        order_id: UUID,
        payment_method: str,
        customer_ip: str | None = None,
    ) -> Done[Payment]:
        """Open the order's payment for its total by ``payment_method``, with what the
        gateway opens for it: a card's hosted form, or a CashPlus code (the order then waits
        for a cash payment, ``CashPaymentAwaited``). The payment expires unpaid after its
        method's window (``PaymentTerms``).

        The checkout is asked for before anything is stored: if the gateway fails, there is
        no payment and the order stays pending, as it was. The method is checked first, so
        a method not offered never reaches the gateway.

        Raises:
            NotFound: unknown order, or not the caller's.
            Forbidden: the caller is not the order's client.
            InvalidTransition: the order is not pending.
            Conflict: the order already has a payment.
            ValidationFailed: a method not offered (the detail lists those that are).
            GatewayError: the gateway could not open a checkout.
        """
        payment_id = payment_id_for(order_id)
        terms = self.payment_terms
        checkout: Checkout | None = None

        def open_checkout() -> None:
            nonlocal checkout
            checkout = self._open_checkout(
                caller, order_id, payment_id, customer_ip, payment_method
            )

        def decide() -> list[Payment | Order]:
            order = self._order(order_id)
            actor = self._payer(caller, order)
            now = self.clock()
            payment = Payment.create(
                order.id,
                order.client_id,
                order.freelancer_id,
                order.total,
                payment_method,
                actor,
                now,
                accepted=terms.methods,
                expires_at=now + terms.window(payment_method),
            )
            if checkout is not None:
                payment.open_checkout(
                    checkout.token_id,
                    checkout.payment_url,
                    checkout.transaction_id,
                    actor,
                    now,
                    checkout.cash_code,
                )
            if payment_method != CASHPLUS:
                return [payment]
            order.await_cash_payment(payment.id, actor, now)
            return [payment, order]

        return self._run(
            decide,
            creates=payment_id,
            taken="this order already has a payment",
            prepare=open_checkout,
        )

    @staticmethod
    def _payer(caller: Caller, order: Order) -> Actor:
        """Raises: NotFound, Forbidden (not the client), InvalidTransition (not pending)."""
        actor = access.acting_on(caller, order, ("client",))
        if order.status != OrderStatus.PENDING:
            raise InvalidTransition(f"cannot pay for an order that is {order.status}")
        return actor

    def _open_checkout(
        self,
        caller: Caller,
        order_id: UUID,
        payment_id: UUID,
        customer_ip: str | None,
        method: str,
    ) -> Checkout | None:
        if self.gateway is None:
            return None
        # A check before the gateway is asked, on what this process knows of the order: an
        # order never becomes pending again, and its client never changes, so what it
        # refuses is refused as stored; what it lets through is decided again after.
        order = self._latest(Order, order_id)
        self._payer(caller, order)  # no checkout for someone who may not pay
        Payment.check_method(method, self.payment_terms.methods)  # before the gateway hears of it
        if self._exists(payment_id):
            raise Conflict("this order already has a payment")
        return self.gateway.tokenize(
            CheckoutRequest(
                order_id=str(order_id),
                amount=order.total,
                currency=CURRENCY,
                success_url=f"{self.public_url}/checkout/{payment_id}/success",
                error_url=f"{self.public_url}/checkout/{payment_id}/error",
                customer_ip=customer_ip,
                metadata={"payment_id": str(payment_id)},
                method=method,
            )
        )

    def confirm_payment(
        self,
        caller: Caller,
        payment_id: UUID,
        transaction_id: str,
        amount: int,
        currency: str,
        webhook_id: str | None = None,
        card: CardSummary | None = None,
    ) -> Done[Payment]:
        """The gateway took the money: payment ``success`` (keeping the card's brand and
        last four digits when the gateway named them) and the order ``processing``.

        If the order was cancelled while the client was paying (the payment expired, or an
        earlier card was declined), the money is taken and at once given back in the same
        save, so escrow never keeps money for a dead order.

        Raises:
            NotFound: unknown payment. Forbidden: the caller is not the gateway.
            Conflict: amount or currency differ from the payment's, or a second paid
                transaction for a payment already paid (a person must refund it).
            AlreadyApplied: this webhook was recorded before.
            InvalidTransition: the payment is already settled.
        """

        def decide() -> list[Payment | Order]:
            payment, order, actor = self._settling(caller, payment_id, webhook_id)
            if payment.status == PaymentStatus.SUCCESS and payment.transaction_id not in (
                None,
                transaction_id,
            ):
                raise Conflict(
                    f"the gateway reports a second paid transaction {transaction_id} for a "
                    f"payment already paid by {payment.transaction_id}: the client paid twice"
                )
            if (amount, currency) != (payment.amount, payment.currency):
                raise Conflict(
                    f"the gateway reports {amount} {currency} centimes, but the payment is "
                    f"{payment.amount} {payment.currency}"
                )
            now = self.clock()
            payment.succeed(transaction_id, actor, now, webhook_id, card)
            if order.status == OrderStatus.PENDING:
                order.confirm_payment(payment.id, payment.amount, actor, now)
                return [payment, order]
            self._give_back(payment, payment.amount, LATE_PAYMENT_REFUND, actor, now)
            return [payment]

        return self._run(decide)

    def fail_payment(
        self,
        caller: Caller,
        payment_id: UUID,
        reason: str,
        transaction_id: str | None = None,
        webhook_id: str | None = None,
    ) -> Done[Payment]:
        """The gateway declined (or the clock expired it): payment ``failed``, and a still
        pending order cancelled with reason ``payment_failed``.

        Raises:
            NotFound, Forbidden (not the gateway or clock), AlreadyApplied,
            InvalidTransition (settled).
        """

        def decide() -> list[Payment | Order]:
            payment, order, actor = self._settling(caller, payment_id, webhook_id)
            now = self.clock()
            payment.fail(reason, transaction_id, actor, now, webhook_id)
            if order.status != OrderStatus.PENDING:
                return [payment]
            order.cancel(CancelReason.PAYMENT_FAILED, reason, actor, now)
            return [payment, order]

        return self._run(decide)

    def record_gateway_refund(
        self,
        caller: Caller,
        payment_id: UUID,
        amount: int,
        currency: str,
        webhook_id: str | None = None,
        reference: str | None = None,
        transaction_id: str | None = None,
    ) -> Done[Payment]:
        """The gateway reports money returned to the client, from the payment's transaction
        (``transaction_id``, when the gateway names it). It is the notice of a refund
        support confirmed by hand already (``Payment.notice_refund``: nothing more counts),
        or it confirms the oldest refund the ledger asked for, or, when none waits, it
        records a refund made at the gateway (at most what remains of the payment): a running
        order then holds that much less in escrow (``Order.take_gateway_refund``), and is
        cancelled if nothing is left.

        Raises:
            NotFound, Forbidden (not the gateway), AlreadyApplied, InvalidTransition
            (not a successful payment), Conflict (another transaction than the payment's,
            another currency, or another amount than the refund asked for),
            ValidationFailed (more than remains).
        """

        def decide() -> list[Payment | Order]:
            payment, order, actor = self._settling(caller, payment_id, webhook_id)
            if (
                transaction_id is not None
                and payment.status == PaymentStatus.SUCCESS
                and transaction_id != payment.transaction_id
            ):
                raise Conflict(
                    f"the gateway reports a refund of transaction {transaction_id}, but the "
                    f"payment was paid by {payment.transaction_id}"
                )
            if currency != payment.currency:
                raise Conflict(f"the gateway refunds in {currency}, the payment is in MAD")
            now = self.clock()
            if payment.notice_refund(amount, reference, actor, now, webhook_id):
                return [payment]  # support confirmed this very refund by hand already
            if not payment.requested_refunds:
                payment.refund(amount, GATEWAY_REFUND, actor, now, webhook_id)
                if order.status != OrderStatus.PROCESSING:
                    return [payment]  # after the payout the books claw it back
                order.take_gateway_refund(amount, actor, now)
                return [payment, order]
            asked = payment.requested_refunds[0]["amount"]
            if amount != asked:
                raise Conflict(f"the gateway refunded {amount} centimes; {asked} were asked")
            payment.confirm_refund(reference or webhook_id or "gateway", actor, now, webhook_id)
            return [payment]

        return self._run(decide)

    def confirm_refund(
        self,
        caller: Caller,
        payment_id: UUID,
        reference: str,
        expected_version: int | None = None,
    ) -> Done[Payment]:
        """Support confirms the oldest requested refund was made at the gateway, quoting
        the gateway's reference for it; with ``expected_version``, only if the payment is
        still at that version (the refund confirmed is the one that was shown).

        Raises: NotFound, Forbidden (not support or admin), InvalidTransition (none waits),
        ValidationFailed (bad reference: one line of visible text), VersionMismatch.
        """

        def decide() -> list[Payment]:
            payment = self._payment(payment_id)
            order = self._order(payment.order_id)
            actor = access.acting_on(caller, order, ("support", "admin"))
            if expected_version is not None and payment.version != expected_version:
                raise VersionMismatch(expected_version, payment.version)
            check_text(reference, "reference", max_length=255, single_line=True)
            payment.confirm_refund(reference, actor, self.clock())
            return [payment]

        return self._run(decide)

    def apply_gateway_event(
        self,
        webhook_id: str,
        event_name: str,
        transaction: Transaction,
        request_id: str | None = None,
    ) -> Done[Payment]:
        """Record what a gateway notification says about the payment of
        ``transaction.order_id``: ``transaction.paid``, ``.failed`` or ``.refunded``.

        Raises:
            NotFound: no payment for that order.
            Conflict: amount or currency differ from the payment's, a second paid
                transaction for a payment already paid (a person must refund it), or a
                refund of another transaction than the one that paid.
            AlreadyApplied: this notification was recorded before.
            InvalidTransition: it arrives out of order (a failure after the payment
                succeeded, a second success): nothing is recorded.
            ValidationFailed: an unknown event name, or a refund beyond what remains.
        """
        gateway = Caller.system("gateway", request_id)
        try:
            payment_id = payment_id_for(UUID(transaction.order_id))
        except ValueError:
            raise NotFound(f"no payment for order {transaction.order_id!r}") from None
        if event_name == "transaction.paid":
            return self.confirm_payment(
                gateway,
                payment_id,
                transaction.id,
                transaction.amount,
                transaction.currency,
                webhook_id,
                transaction.card,
            )
        if event_name == "transaction.failed":
            reason = transaction.reason or "declined"
            return self.fail_payment(gateway, payment_id, reason, transaction.id, webhook_id)
        if event_name == "transaction.refunded":
            return self.record_gateway_refund(
                gateway,
                payment_id,
                transaction.amount,
                transaction.currency,
                webhook_id,
                transaction.id,
                transaction.id,
            )
        raise ValidationFailed(f"unknown gateway event {event_name!r}", field="event_name")

    def _expiry(self, payment: Payment) -> datetime:
        """When ``payment`` expires unpaid: the moment recorded with it, or for one stored
        before that was recorded, the card's window from its creation."""
        if payment.expires_at is not None:
            return payment.expires_at
        return payment.created_on + self.payment_terms.card_window

    def expire_payment(self, payment_id: UUID) -> Done[Payment] | None:
        """The clock fails a payment still pending at its expiry (reason ``expired``) and
        cancels its order. ``None`` when it is settled or not yet due.

        Raises: NotFound.
        """
        clock = Caller.system("clock")

        def decide() -> list[Payment | Order]:
            payment, order, actor = self._settling(clock, payment_id, None)
            now = self.clock()
            if payment.status != PaymentStatus.PENDING or self._expiry(payment) > now:
                raise _NothingToDo
            payment.fail(EXPIRED, None, actor, now)
            if order.status != OrderStatus.PENDING:
                return [payment]
            order.cancel(CancelReason.PAYMENT_FAILED, EXPIRED, actor, now)
            return [payment, order]

        try:
            return self._run(decide)
        except _NothingToDo:
            return None

    def sync_payment(self, caller: Caller, payment_id: UUID) -> Payment:
        """Support asks the gateway again and records what it says, as a webhook would
        (once: the notification id is the transaction's id and state).

        Raises:
            NotFound, Forbidden (not support or admin),
            InvalidTransition (no transaction yet: the client has not paid at the gateway),
            GatewayError, Conflict (the gateway's amount differs).
        """
        payment = self._payment(payment_id)
        access.acting_on(caller, self._order(payment.order_id), ("support", "admin"))
        transaction_id = payment.transaction_id or payment.gateway_transaction
        if transaction_id is None or self.gateway is None:
            raise InvalidTransition("the gateway has named no transaction for this payment yet")
        found = self.gateway.lookup(transaction_id)
        if found.order_id != str(payment.order_id):
            raise Conflict(f"the gateway's transaction {found.id} is for another order")
        if found.status == "pending" or (
            found.status == "refunded" and (payment.refunded or payment.requested_refunds)
        ):  # a lookup gives no refund's amount: past the first, support confirms by hand
            return payment
        try:
            done = self.apply_gateway_event(
                f"sync:{found.id}:{found.status}",
                f"transaction.{found.status}",
                found,
                caller.request_id,
            )
        except (AlreadyApplied, InvalidTransition, ValidationFailed):
            return self._payment(payment_id)  # nothing new to record
        return done.aggregate

    def _settling(
        self, caller: Caller, payment_id: UUID, webhook_id: str | None
    ) -> tuple[Payment, Order, Actor]:
        payment = self._payment(payment_id)
        order = self._order(payment.order_id)
        actor = access.acting_on(caller, order, Payment.SETTLERS)
        if payment.has_seen(webhook_id):
            raise AlreadyApplied(f"webhook {webhook_id} was already recorded")
        return payment, order, actor

    def get_payment(self, caller: Caller, payment_id: UUID) -> Payment:
        """Raises: NotFound (unknown, or not the caller's)."""
        payment = self._payment(payment_id)
        access.require_visible(caller, self._order(payment.order_id))
        return payment

    def get_payment_for_checkout(self, payment_id: UUID) -> Payment:
        """The payment a hosted checkout is for, as stored: never from this process's cache,
        which may not know that another process settled it (a charge then would be taken and
        refunded as a late payment). No caller: the checkout's token is the credential, as on
        the gateway's own form. Raises: NotFound."""
        return self._payment(payment_id)
