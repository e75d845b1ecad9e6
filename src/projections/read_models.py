"""The read models as the API and the timers query them: one object per read model, each
answering in the shapes of docs/api.md (camelCase, MAD decimals); lists are paged as
``projections.paging`` says."""

from __future__ import annotations

from projections.db import Database
from projections.escrow.queries import EscrowQueries
from projections.gigs.queries import GigQueries
from projections.messages.queries import MessageQueries
from projections.notifications.queries import NotificationQueries
from projections.orders.queries import OrderQueries
from projections.payments.queries import PaymentQueries
from projections.webhooks.queries import WebhookQueries


class ReadModels:
    """Every query answered from the read models, by read model."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.orders = OrderQueries(db)
        """Orders and their status history."""
        self.payments = PaymentQueries(db)
        """Payments with their refunds."""
        self.gigs = GigQueries(db)
        """The gig catalogue."""
        self.escrow = EscrowQueries(db)
        """The escrow ledger: accounts, entries, balances."""
        self.notifications = NotificationQueries(db)
        """Each user's own notifications."""
        self.messages = MessageQueries(db)
        """Each order's conversation."""
        self.webhooks = WebhookQueries(db)
        """Webhook endpoints and their deliveries."""
