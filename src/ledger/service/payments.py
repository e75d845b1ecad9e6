"""Payment commands: open the one payment of an order, and record what the gateway says.

Settling a payment and moving its order happen in one save, so the order is never
``processing`` without a successful payment nor ``pending`` after one.
"""

from __future__ import annotations

from uuid import UUID

from ledger import access
from ledger.actors import Caller
from ledger.domain.order import Order
from ledger.domain.payment import Payment, payment_id_for
from ledger.domain.values import CancelReason, OrderStatus
from ledger.errors import Conflict, InvalidTransition, NotFound
from ledger.service.base import Done, LedgerBase

LATE_PAYMENT_REFUND = "order_cancelled_before_payment"


class PaymentCommands(LedgerBase):
    """The client starts paying; the gateway (or the clock) settles."""

    def create_payment(self, caller: Caller, order_id: UUID, payment_method: str) -> Done[Payment]:
        """Open the order's payment for its total.

        Raises:
            NotFound: unknown order, or not the caller's.
            Forbidden: the caller is not the order's client.
            InvalidTransition: the order is not pending.
            Conflict: the order already has a payment.
            ValidationFailed: unknown payment method.
        """
        payment_id = payment_id_for(order_id)

        def decide() -> list[Payment]:
            order = self._order(order_id)
            actor = access.acting_on(caller, order, ("client",))
            if order.status != OrderStatus.PENDING:
                raise InvalidTransition(f"cannot pay for an order that is {order.status}")
            return [
                Payment.create(
                    order.id,
                    order.client_id,
                    order.freelancer_id,
                    order.total,
                    payment_method,
                    actor,
                    self.clock(),
                )
            ]

        return self._run(decide, creates=payment_id, taken="this order already has a payment")

    def confirm_payment(
        self, caller: Caller, payment_id: UUID, transaction_id: str, amount: int, currency: str
    ) -> Done[Payment]:
        """The gateway took the money: payment ``success`` and the order ``processing``.

        If the order was cancelled while the client was paying, the money is taken and at
        once refunded in the same save, so escrow never keeps money for a dead order.

        Raises:
            NotFound: unknown payment. Forbidden: the caller is not the gateway.
            Conflict: amount or currency differ from the payment's.
            InvalidTransition: the payment is already settled.
        """

        def decide() -> list[Payment | Order]:
            payment = self._payment(payment_id)
            order = self._order(payment.order_id)
            actor = access.acting_on(caller, order, ("gateway",))
            if (amount, currency) != (payment.amount, payment.currency):
                raise Conflict(
                    f"the gateway reports {amount} {currency} centimes, but the payment is "
                    f"{payment.amount} {payment.currency}"
                )
            now = self.clock()
            payment.succeed(transaction_id, actor, now)
            if order.status == OrderStatus.PENDING:
                order.confirm_payment(payment.id, payment.amount, actor, now)
                return [payment, order]
            payment.refund(payment.amount, LATE_PAYMENT_REFUND, actor, now)
            return [payment]

        return self._run(decide)

    def fail_payment(
        self, caller: Caller, payment_id: UUID, reason: str, transaction_id: str | None = None
    ) -> Done[Payment]:
        """The gateway declined (or the clock expired it): payment ``failed``, and a still
        pending order cancelled with reason ``payment_failed``.

        Raises:
            NotFound, Forbidden (not the gateway or clock), InvalidTransition (settled).
        """

        def decide() -> list[Payment | Order]:
            payment = self._payment(payment_id)
            order = self._order(payment.order_id)
            actor = access.acting_on(caller, order, Payment.SETTLERS)
            now = self.clock()
            payment.fail(reason, transaction_id, actor, now)
            if order.status != OrderStatus.PENDING:
                return [payment]
            order.cancel(CancelReason.PAYMENT_FAILED, reason, actor, now)
            return [payment, order]

        return self._run(decide)

    def get_payment(self, caller: Caller, payment_id: UUID) -> Payment:
        """Raises: NotFound (unknown, or not the caller's)."""
        payment = self._payment(payment_id)
        access.require_visible(caller, self._order(payment.order_id))
        return payment

    def get_order_payment(self, caller: Caller, order_id: UUID) -> Payment:
        """Raises: NotFound (unknown order, not the caller's, or no payment yet)."""
        access.require_visible(caller, self._order(order_id))
        try:
            return self._payment(payment_id_for(order_id))
        except NotFound:
            raise NotFound(f"order {order_id} has no payment yet") from None
