"""The ASGI application factory.

The store is opened in the lifespan, so a process that cannot reach its database fails at
start-up with a clear message instead of answering requests it cannot serve. By default the
projections and timers run in the same process (``ledger serve`` alone is a complete
service); with ``run_projections=False`` they are left to ``ledger worker``.

Middleware, outermost first: request id → metrics → body limit → idempotency → FastAPI.
The body limit sits outside idempotency, which reads whole bodies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import problems
from api.auth import Authenticator, signing_key
from api.idempotency import IdempotencyStore
from api.metrics import MeasureRequests, Metrics
from api.middleware import InputLimits, RequestId
from api.replay import Idempotency
from api.routes import (
    audit,
    gigs,
    ledger,
    notifications,
    operations,
    order_commands,
    orders,
    payments,
    sandbox,
    timeline,
    webhooks,
)
from api.timers import build_ticker
from ledger.bootstrap import build_ledger
from ledger.clock import Clock, utc_now
from ledger.settings import Settings, load_settings
from projections.queries import ReadModels
from projections.registry import build_runner


def create_app(
    settings: Settings | None = None, *, run_projections: bool = True, clock: Clock = utc_now
) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = build_ledger(settings, clock)
        runner = build_runner(ledger)
        idempotency = IdempotencyStore(runner.db, clock)
        idempotency.setup()
        models = ReadModels(runner.db)
        ticker = build_ticker(ledger, models, settings, clock, idempotency)
        runner.start(apply=run_projections)  # else it follows ``ledger worker``'s positions
        if run_projections:
            ticker.start()
        app.state.ledger, app.state.runner = ledger, runner
        app.state.read_models = models
        app.state.idempotency = idempotency
        app.state.metrics = Metrics(runner.status, ledger.writer)
        try:
            yield
        finally:
            ticker.stop()
            runner.stop()
            ledger.close()

    app = FastAPI(
        title="Gig Ledger",
        version="1",
        summary="Event-sourced orders and payments for gig marketplaces",
        lifespan=lifespan,
    )
    app.state.auth = Authenticator(signing_key(settings))
    problems.install(app)
    routers = (
        gigs,
        orders,
        order_commands,
        timeline,
        payments,
        ledger,
        notifications,
        audit,
        webhooks,
        operations,
    )
    for router in routers:
        app.include_router(router.router)
    if settings.gateway == "sandbox":
        app.include_router(sandbox.router)
    app.add_middleware(Idempotency)
    app.add_middleware(InputLimits)
    app.add_middleware(MeasureRequests)
    app.add_middleware(RequestId)
    return app
