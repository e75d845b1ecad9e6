"""Wiring: from ``Settings`` to a ready ``LedgerApp`` (the composition root of the write side)."""

from __future__ import annotations

from ledger.clock import Clock, utc_now
from ledger.gateway.port import PaymentGateway
from ledger.gateway.sandbox import Sandbox
from ledger.gateway.youcanpay import YouCanPay
from ledger.service import LedgerApp
from ledger.service.commit import Batching
from ledger.settings import Settings


def build_ledger(settings: Settings, clock: Clock = utc_now) -> LedgerApp:
    """Open the configured event store (creating its tables and append-only triggers),
    with the configured payment gateway."""
    if not settings.is_postgres:
        settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    return LedgerApp(
        settings.eventsourcing_env(),
        clock=clock,
        fee_rate_bp=settings.fee_rate_bp,
        gateway=build_gateway(settings),
        public_url=str(settings.public_url),
        batching=Batching(
            enabled=settings.group_commit,
            max_aggregates=settings.batch_max_aggregates,
            max_wait=float(settings.batch_wait_ms) / 1_000,
        ),
    )


def build_gateway(settings: Settings) -> PaymentGateway:
    if settings.gateway == "youcanpay":
        # Settings refuse LEDGER_GATEWAY=youcanpay without both keys.
        return YouCanPay(
            settings.gateway_key, settings.youcanpay_public_key or "", settings.youcanpay_sandbox
        )
    return Sandbox(settings.gateway_key, str(settings.public_url))
