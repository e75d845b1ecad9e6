"""Timers: work that time, not a request, makes due — run by ``ledger worker`` and, by
default, inside ``ledger serve``.

Each timer finds its candidates in the read models and lets the write side decide each one
again on current state, so a stale read model, or two processes running the same timer,
can never act twice: the second attempt finds nothing due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from uuid import UUID

from api.idempotency import IdempotencyStore
from ledger.clock import Clock
from ledger.errors import LedgerError
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.base import iso
from projections.queries import ReadModels

log = logging.getLogger("api.timers")
Timer = Callable[[], int]


class PaymentExpiry:
    """Fails payments left pending past ``LEDGER_PAYMENT_EXPIRY_MINUTES`` and cancels
    their orders (``payment_failed``, note ``expired``)."""

    def __init__(
        self, ledger: LedgerApp, models: ReadModels, after: timedelta, clock: Clock
    ) -> None:
        self.ledger, self.models, self.after, self.clock = ledger, models, after, clock

    def __call__(self) -> int:
        """Expire what is due now; returns how many payments expired."""
        due = iso(self.clock() - self.after) or ""
        expired = 0
        for payment_id in self.models.pending_payment_ids(created_before=due):
            try:
                expired += self.ledger.expire_payment(UUID(payment_id), self.after) is not None
            except LedgerError as error:  # gone or refused meanwhile: the next round decides
                log.warning("could not expire payment %s: %s", payment_id, error.detail)
        return expired


def build_ticker(
    ledger: LedgerApp,
    models: ReadModels,
    settings: Settings,
    clock: Clock,
    idempotency: IdempotencyStore,
) -> Ticker:
    """Payment expiry, and forgetting idempotency keys older than 24 h."""
    expiry = PaymentExpiry(
        ledger, models, timedelta(minutes=settings.payment_expiry_minutes), clock
    )
    return Ticker([expiry, idempotency.purge])


class Ticker:
    """Runs timers every ``interval`` seconds in one daemon thread until ``stop``."""

    def __init__(self, timers: Sequence[Timer], interval: float = 30.0) -> None:
        self.timers = list(timers)
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ledger-timers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval):
            for timer in self.timers:
                try:
                    timer()
                except Exception:  # a lost database must not end the timers
                    log.exception("timer %s failed; retrying next round", timer)
