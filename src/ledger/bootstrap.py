"""Wiring: from ``Settings`` to a ready ``LedgerApp`` (the composition root of the write side)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from ledger.clock import Clock, utc_now
from ledger.domain.payment import PaymentTerms
from ledger.gateway.port import PaymentGateway
from ledger.gateway.sandbox import Sandbox
from ledger.gateway.youcanpay import YouCanPay
from ledger.service import LedgerApp
from ledger.service.commit import Batching
from ledger.settings import Settings, SettingsError, private_directory

PRIVATE_FILE = 0o600


def build_ledger(settings: Settings, clock: Clock = utc_now) -> LedgerApp:
    """Open the configured event store (creating its tables and append-only triggers),
    with the configured payment gateway. A SQLite store made here is this user's alone."""
    if not settings.is_postgres:
        private_sqlite_file(settings.sqlite_path)
    gateway = build_gateway(settings)
    return LedgerApp(
        settings.eventsourcing_env(),
        clock=clock,
        fee_rate_bp=settings.fee_rate_bp,
        gateway=gateway,
        payment_terms=payment_terms(settings, gateway),
        public_url=str(settings.public_url),
        batching=Batching(
            enabled=settings.group_commit,
            max_aggregates=settings.batch_max_aggregates,
            max_wait=float(settings.batch_wait_ms) / 1_000,
        ),
    )


def payment_terms(settings: Settings, gateway: PaymentGateway) -> PaymentTerms:
    """What payments may use: the gateway's methods, narrowed by ``LEDGER_PAYMENT_METHODS``
    (in the gateway's order), with each method's window to pay.

    Raises: SettingsError, for an offered method the gateway does not take."""
    offered = settings.offered_methods or gateway.methods
    if untaken := [method for method in offered if method not in gateway.methods]:
        raise SettingsError(
            f"LEDGER_PAYMENT_METHODS: the {gateway.name} gateway does not take "
            f"{', '.join(untaken)}; it takes {', '.join(gateway.methods)}"
        )
    return PaymentTerms(
        tuple(method for method in gateway.methods if method in offered),
        card_window=timedelta(minutes=settings.payment_expiry_minutes),
        cash_window=timedelta(hours=settings.cashplus_expiry_hours),
    )


def build_gateway(settings: Settings) -> PaymentGateway:
    if settings.gateway == "youcanpay":
        # Settings refuse LEDGER_GATEWAY=youcanpay without both keys.
        return YouCanPay(
            settings.gateway_key, settings.youcanpay_public_key or "", settings.youcanpay_sandbox
        )
    return Sandbox(settings.gateway_key, str(settings.public_url))


def private_sqlite_file(path: Path) -> None:
    """Create the SQLite file, if it is not there, readable by this user alone (0600), in a
    folder made 0700 if it is made here. SQLite gives its ``-wal`` and ``-shm`` files the
    permissions of the database file, so they are private too. An existing file, or a
    symlink where the file should be, is left as it is (the open then decides)."""
    if str(path) in ("", ":memory:") or str(path).startswith("file:"):
        return
    private_directory(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(path, flags, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(descriptor)
