"""Wiring: from ``Settings`` to a ready ``LedgerApp`` (the composition root of the write side)."""

from __future__ import annotations

from ledger.clock import Clock, utc_now
from ledger.service import LedgerApp
from ledger.settings import Settings


def build_ledger(settings: Settings, clock: Clock = utc_now) -> LedgerApp:
    """Open the configured event store (creating its tables and append-only triggers)."""
    if not settings.is_postgres:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return LedgerApp(settings.eventsourcing_env(), clock=clock, fee_rate_bp=settings.fee_rate_bp)
