"""Every read model the service keeps, built for one ``LedgerApp``."""

from __future__ import annotations

from ledger.service import LedgerApp
from projections.audit.chain import AuditChain
from projections.base import Projection
from projections.escrow.projection import EscrowLedger
from projections.gigs.projection import GigCatalog
from projections.messages.projection import Messages
from projections.notifications.projection import Notifications
from projections.orders.projection import OrderHistory
from projections.payments.projection import PaymentRecords
from projections.runner import ProjectionRunner
from projections.webhooks.projection import WebhookDeliveries


def all_projections(app: LedgerApp) -> list[Projection]:
    transcoder = app.mapper.transcoder
    return [
        OrderHistory(transcoder),
        PaymentRecords(transcoder),
        GigCatalog(transcoder),
        EscrowLedger(),
        Notifications(),
        Messages(),
        AuditChain(),
        WebhookDeliveries(),
    ]


def build_runner(app: LedgerApp, **options: float) -> ProjectionRunner:
    return ProjectionRunner(app, all_projections(app), **options)  # type: ignore[arg-type]
