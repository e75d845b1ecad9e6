"""The application service: ``LedgerApp`` and what each command returns (``Done``)."""

from ledger.service.base import Done
from ledger.service.deadlines import DeadlineCommands
from ledger.service.endpoints import EndpointCommands
from ledger.service.escrow import EscrowCommands
from ledger.service.gigs import GigCommands
from ledger.service.messages import MessageCommands
from ledger.service.notifications import NotificationCommands
from ledger.service.orders import OrderCommands
from ledger.service.payments import PaymentCommands
from ledger.service.timeline import Timeline, TimelineCommands, TimelineEntry


class LedgerApp(
    GigCommands,
    DeadlineCommands,  # before OrderCommands: the deadlines are order commands the clock takes
    OrderCommands,
    PaymentCommands,
    EscrowCommands,
    TimelineCommands,
    NotificationCommands,
    MessageCommands,
    EndpointCommands,
):
    """Gig Ledger's one ``eventsourcing`` Application: gigs, orders, payments, escrow,
    the order timelines read from the events, the deadlines the clock enforces, and the
    webhook endpoints events are delivered to.

    Every command takes the ``Caller`` first, decides who may do it (``ledger.access``),
    retries on a lost race, and returns ``Done(aggregate, position)``.
    """

    name = "Ledger"
    """Names the tables on PostgreSQL (``ledger_events``, ``ledger_snapshots``); SQLite's
    recorder keeps the library's own names (``stored_events``, ``stored_snapshots``)."""


__all__ = ["Done", "LedgerApp", "Timeline", "TimelineEntry"]
