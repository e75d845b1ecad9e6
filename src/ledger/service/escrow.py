"""Escrow commands the clock takes: a freelancer's released share clears after a while.

Released money first counts as *pending clearance* (a refund or chargeback may still take
it back) and becomes *available* ``LEDGER_CLEARANCE_DAYS`` later. That moment is decided by
the worker's clock and written as an event (``FundsCleared`` on the order), so a replay of
the log gives every balance as it was, whatever the clock says when it runs.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from ledger import access
from ledger.actors import Caller
from ledger.domain.order import Order
from ledger.errors import InvalidTransition
from ledger.service.base import Done, LedgerBase


class EscrowCommands(LedgerBase):
    """What time does to money held for freelancers."""

    def clear_funds(self, order_id: UUID, after: timedelta) -> Done[Order] | None:
        """Clear the freelancer's share of an order released at least ``after`` ago.
        ``None`` when there is nothing to clear (not released, already cleared, not due):
        a timer that read a stale read model, or ran twice, does nothing.

        Raises: NotFound.
        """
        clock = Caller.system("clock")

        def decide() -> list[Order]:
            order = self._order(order_id)
            actor = access.acting_on(clock, order, Order.WHO["clear_funds"])
            order.clear_funds(after, actor, self.clock())
            return [order]

        try:
            return self._run(decide)
        except InvalidTransition:
            return None
