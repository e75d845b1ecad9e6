"""Timers: work that time, not a request, makes due — run by ``ledger worker`` and, by
default, inside ``ledger serve`` (``api.runtime`` starts them).

Each timer finds its candidates in the read models and lets the write side decide each one
again on current state, so a stale read model, or two processes running the same timer,
can never act twice: the second attempt finds nothing due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from ledger.clock import Clock, iso
from ledger.errors import LedgerError
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.read_models import ReadModels

log = logging.getLogger("api.runtime.timers")
Timer = Callable[[], int]


@dataclass(frozen=True)
class DueTimer:
    """Acts on everything the read models show due: each candidate whose moment lies
    ``after`` or more before now (``candidates`` says at which bound), which ``act`` then
    decides again on the aggregate (``None`` when it
    finds nothing due after all)."""

    name: str
    candidates: Callable[[str], list[str]]
    """Ids of what may be due, given the ISO time before which it becomes due."""
    act: Callable[[UUID, timedelta], object | None]
    after: timedelta
    clock: Clock

    def __call__(self) -> int:
        """Act on what is due now; returns how many were acted on."""
        due = iso(self.clock() - self.after) or ""
        acted = 0
        for candidate in self.candidates(due):
            try:
                acted += self.act(UUID(candidate), self.after) is not None
            except LedgerError as error:  # gone or refused meanwhile: the next round decides
                log.warning("%s %s failed: %s", self.name, candidate, error.detail)
        return acted


def payment_expiry(ledger: LedgerApp, models: ReadModels, clock: Clock) -> Timer:
    """Fails payments left pending past the expiry recorded with each (a card's
    ``LEDGER_PAYMENT_EXPIRY_MINUTES``, CashPlus's ``LEDGER_CASHPLUS_EXPIRY_HOURS``) and
    cancels their orders (``payment_failed``, note ``expired``). Due means the expiry itself
    has passed (``after`` is zero)."""
    window = ledger.payment_terms.card_window

    def candidates(now: str) -> list[str]:
        unrecorded_before = iso(datetime.fromisoformat(now) - window) or ""
        return models.payments.expired_ids(now, unrecorded_before)

    return DueTimer(
        "expire payment",
        candidates,
        lambda payment_id, _after: ledger.expire_payment(payment_id),
        timedelta(0),
        clock,
    )


def funds_clearance(ledger: LedgerApp, models: ReadModels, after: timedelta, clock: Clock) -> Timer:
    """Clears freelancers' shares released ``LEDGER_CLEARANCE_DAYS`` ago (``FundsCleared``)."""
    return DueTimer(
        "clear funds of order", models.escrow.orders_to_clear, ledger.clear_funds, after, clock
    )


def auto_completion(ledger: LedgerApp, models: ReadModels, after: timedelta, clock: Clock) -> Timer:
    """Completes deliveries the client left unanswered ``LEDGER_AUTO_COMPLETE_DAYS``
    (``OrderCompleted``, reason ``delivery_unanswered``)."""
    return DueTimer(
        "auto-complete order", models.orders.to_auto_complete, ledger.auto_complete, after, clock
    )


def cancellation_acceptance(
    ledger: LedgerApp, models: ReadModels, after: timedelta, clock: Clock
) -> Timer:
    """Accepts cancellation requests left unanswered ``LEDGER_CANCELLATION_ANSWER_HOURS``
    (``CancellationAccepted``, reason ``cancellation_unanswered``, then the refund)."""
    return DueTimer(
        "accept cancellation of order",
        models.orders.cancellations_to_accept,
        ledger.auto_accept_cancellation,
        after,
        clock,
    )


def lateness(ledger: LedgerApp, models: ReadModels, clock: Clock) -> Timer:
    """Marks orders past their ``dueAt`` with no delivery, once (``OrderMarkedLate``).
    Due means the due date itself has passed: no waiting period (``after`` is zero)."""
    return DueTimer(
        "mark order late",
        models.orders.past_due,
        lambda order_id, _after: ledger.mark_late(order_id),
        timedelta(0),
        clock,
    )


def due_timers(
    ledger: LedgerApp,
    models: ReadModels,
    settings: Settings,
    clock: Clock,
) -> list[Timer]:
    """Payment expiry, funds clearance and the orders' deadlines (auto-completion, unanswered
    cancellation requests, lateness)."""
    expiry = payment_expiry(ledger, models, clock)
    clearance = funds_clearance(ledger, models, timedelta(days=settings.clearance_days), clock)
    deadlines = [
        auto_completion(ledger, models, timedelta(days=settings.auto_complete_days), clock),
        cancellation_acceptance(
            ledger, models, timedelta(hours=settings.cancellation_answer_hours), clock
        ),
        lateness(ledger, models, clock),
    ]
    return [expiry, clearance, *deadlines]


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
