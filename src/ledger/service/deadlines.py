"""Deadlines the clock enforces on orders: a delivery left unanswered completes, a
cancellation request left unanswered is accepted, an order past its due date is marked late.

The worker's timers (``api.runtime.timers``) find candidates in the read models; each command here
decides again on the order's own state, so a stale read model, a timer run twice, or two
workers racing on the same order store one event at most: the loser's retry, on fresh state,
finds nothing due and answers ``None``. Each event names its reason (``DeadlineReason``)
and is taken by the ``clock`` actor.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from ledger.actors import Caller
from ledger.domain.order import Order
from ledger.errors import InvalidTransition
from ledger.service.base import Done
from ledger.service.orders import OrderAction, OrderCommands


class DeadlineCommands(OrderCommands):
    """What time does to orders nobody answers."""

    def auto_complete(self, order_id: UUID, after: timedelta) -> Done[Order] | None:
        """Complete an order delivered at least ``after`` ago with no answer from the
        client (``OrderCompleted`` with reason ``delivery_unanswered``; fee and net as for
        the client's own completion). ``None`` when not delivered or not due yet.

        Raises: NotFound, Busy.
        """
        return self._by_clock(
            order_id, "auto_complete", lambda o, a, t: o.auto_complete(after, a, t)
        )

    def auto_accept_cancellation(self, order_id: UUID, after: timedelta) -> Done[Order] | None:
        """Accept a cancellation request left unanswered for ``after``, as the other party
        would: ``CancellationAccepted`` (reason ``cancellation_unanswered``), then
        ``OrderCancelled`` by mutual agreement with the refund, recorded on the payment in
        the same save. ``None`` when no request waits or it is not due yet.

        Raises: NotFound, Busy.
        """
        return self._by_clock(
            order_id,
            "auto_accept_cancellation",
            lambda o, a, t: o.auto_accept_cancellation(after, a, t),
        )

    def mark_late(self, order_id: UUID) -> Done[Order] | None:
        """Mark, once, an order past its due date and not delivered (``OrderMarkedLate``,
        reason ``past_due``). ``None`` when delivered, not working, already marked, or
        not past due.

        Raises: NotFound, Busy.
        """
        return self._by_clock(order_id, "mark_late", lambda o, a, t: o.mark_late(a, t))

    def _by_clock(self, order_id: UUID, command: str, act: OrderAction) -> Done[Order] | None:
        try:
            return self._on_order(Caller.system("clock"), order_id, command, None, act)
        except InvalidTransition:
            return None
