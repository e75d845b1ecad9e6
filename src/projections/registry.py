"""Every read model the service keeps, built for one ``LedgerApp``."""

from __future__ import annotations

from ledger.service import LedgerApp
from projections.base import Projection
from projections.models.audit import AuditChain
from projections.models.escrow import EscrowLedger
from projections.models.gigs import GigCatalog
from projections.models.notifications import Notifications
from projections.models.orders import OrderHistory
from projections.models.payments import PaymentRecords
from projections.runner import ProjectionRunner


def all_projections(app: LedgerApp) -> list[Projection]:
    transcoder = app.mapper.transcoder
    return [
        OrderHistory(transcoder),
        PaymentRecords(transcoder),
        GigCatalog(transcoder),
        EscrowLedger(),
        Notifications(),
        AuditChain(),
    ]


def build_runner(app: LedgerApp, **options: float) -> ProjectionRunner:
    return ProjectionRunner(app, all_projections(app), **options)  # type: ignore[arg-type]
