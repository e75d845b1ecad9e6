"""A running process, assembled in one place for ``ledger serve``, ``ledger worker`` and the
tests: the ledger (write side), the projection runner, the read models, the timers and the
webhook dispatcher.

Building and starting are two steps because the HTTP edge adds what is its own between them
(the ``Idempotency-Key`` table, whose old keys it purges on the same ticker). Closing stops
the dispatcher and the timers first, then the runner, then the ledger (which records what is
queued), so nothing a timer decides is cut off half way.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from api.delivery.dispatcher import Dispatcher
from api.runtime.timers import Ticker, Timer, due_timers
from ledger.bootstrap import build_ledger
from ledger.clock import Clock, utc_now
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.db import Database
from projections.read_models import ReadModels
from projections.registry import build_runner
from projections.runner import ProjectionRunner


class Runtime:
    """The parts of a running process, built from ``settings``; use it as a context manager
    and ``start`` it once."""

    def __init__(self, settings: Settings, clock: Clock = utc_now) -> None:
        self.settings, self.clock = settings, clock
        self.ledger: LedgerApp = build_ledger(settings, clock)
        try:
            self.runner: ProjectionRunner = build_runner(self.ledger)
        except BaseException:
            self.ledger.close()
            raise
        self.read_models = ReadModels(self.runner.db)
        self.ticker: Ticker | None = None
        self.dispatcher: Dispatcher | None = None

    @property
    def db(self) -> Database:
        """Our own SQL on the ledger's database (read models, tracking, edge tables)."""
        return self.runner.db

    def timers(self) -> list[Timer]:
        """The clock's work on the ledger: expiry, clearance and the orders' deadlines."""
        return due_timers(self.ledger, self.read_models, self.settings, self.clock)

    def start(self, *, apply: bool = True, chores: Sequence[Timer] = ()) -> None:
        """Start the runner, the ticker and the webhook dispatcher. ``apply=False`` applies
        no projection (the runner follows the positions ``ledger worker`` reaches) and runs
        none of the ledger's timers and no dispatcher, which are the worker's then;
        ``chores`` run on the ticker either way."""
        if apply:
            dispatcher = Dispatcher(self.ledger, self.db, self.settings, self.clock)
            self.runner.on_moved(lambda name: dispatcher.wake() if name == "webhooks" else None)
            dispatcher.start()
            self.dispatcher = dispatcher
        self.runner.start(apply=apply)
        timers = [*(self.timers() if apply else []), *chores]
        if timers:
            self.ticker = Ticker(timers)
            self.ticker.start()

    def close(self) -> None:
        """Stop the timers, then the runner, then the ledger; each whatever the one before
        did, so that what is queued is always recorded and answered."""
        try:
            if self.dispatcher is not None:
                self.dispatcher.close()
        finally:
            self._close_the_rest()

    def _close_the_rest(self) -> None:
        try:
            if self.ticker is not None:
                self.ticker.stop()
        finally:
            try:
                self.runner.stop()
            finally:
                self.ledger.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
