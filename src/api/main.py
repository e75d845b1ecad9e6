"""The ASGI application factory.

The store is opened in the lifespan, so a process that cannot reach its database fails at
start-up with a clear message instead of answering requests it cannot serve. By default the
projections run in the same process (``ledger serve`` alone is a complete service); with
``run_projections=False`` they are left to ``ledger worker``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledger.bootstrap import build_ledger
from ledger.settings import Settings, load_settings
from projections.queries import ReadModels
from projections.registry import build_runner


def create_app(settings: Settings | None = None, *, run_projections: bool = True) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ledger = build_ledger(settings)
        runner = build_runner(ledger)
        if run_projections:
            runner.start()
        app.state.ledger, app.state.runner = ledger, runner
        app.state.read_models = ReadModels(runner.db)
        try:
            yield
        finally:
            runner.stop()
            ledger.close()

    app = FastAPI(title="Gig Ledger", version="1", lifespan=lifespan)

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is up (says nothing of the database: that is ``/readyz``)."""
        return {"status": "ok"}

    return app
