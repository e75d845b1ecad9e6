"""The ASGI application factory.

The store is opened in the lifespan, so a process that cannot reach its database fails at
start-up with a clear message instead of answering requests it cannot serve. By default the
projections and timers run in the same process (``ledger serve`` alone is a complete
service); with ``run_projections=False`` they are left to ``ledger worker``.

Middleware, outermost first: request id → metrics → rate limits → body limit → idempotency
→ FastAPI. The body limit sits outside idempotency, which reads whole bodies; the rate limits
sit outside both, so a refused request reads no body and claims no key (``rate_limits``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from api import console
from api.console.oidc import ProviderSignIn
from api.console.sessions import ConsoleSessions
from api.http import openapi, problems
from api.http.auth import Authenticator, signing_key
from api.http.idempotency.keys import IdempotencyStore
from api.http.idempotency.middleware import Idempotency
from api.http.identity import IdentityProvider
from api.http.metrics import MeasureRequests, Metrics
from api.http.middleware import InputLimits, RequestId
from api.http.rate_limits import RateLimits
from api.http.routes import (
    audit,
    checkout,
    escrow,
    gigs,
    messages,
    notifications,
    operations,
    order_commands,
    orders,
    payments,
    sandbox,
    timeline,
    webhook_endpoints,
    webhooks,
)
from api.runtime import Runtime
from ledger.clock import Clock, utc_now
from ledger.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None, *, run_projections: bool = True, clock: Clock = utc_now
) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when not given)."""
    settings = settings or load_settings()
    provider = IdentityProvider.for_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings, clock)
        idempotency = IdempotencyStore(runtime.db, clock)  # no I/O until ``setup``
        secure = settings.public_url.scheme == "https"
        sessions = ConsoleSessions(runtime.db, signing_key(settings), clock, secure_cookie=secure)
        async with AsyncExitStack() as closing:
            if provider is not None:
                closing.push_async_callback(provider.aclose)
            closing.callback(idempotency.close)  # last: its claims then are others' to take
            closing.enter_context(runtime)  # first: records what is queued, answers it
            idempotency.setup()
            sessions.setup()
            # Keys and sessions are this edge's own, so it forgets them itself.
            runtime.start(apply=run_projections, chores=[idempotency.purge, sessions.purge])
            app.state.console = sessions
            app.state.ledger, app.state.runner = runtime.ledger, runtime.runner
            app.state.read_models = runtime.read_models
            app.state.idempotency = idempotency
            app.state.metrics = Metrics(
                runtime.runner.status,
                runtime.ledger.writer,
                runtime.read_models.webhooks.stats,
                clock,
            )
            app.state.dispatcher = runtime.dispatcher
            yield

    app = FastAPI(
        title="Gig Ledger",
        version="1",
        summary="Event-sourced orders and payments for gig marketplaces",
        lifespan=lifespan,
    )
    app.state.auth = Authenticator.for_settings(settings, provider)
    app.state.console_sign_in = ProviderSignIn.for_settings(settings, provider)
    app.state.clock = clock
    app.state.settings = settings
    problems.install(app)
    openapi.install(app)
    routers = (
        gigs,
        orders,
        order_commands,
        timeline,
        messages,
        payments,
        escrow,
        notifications,
        audit,
        webhooks,
        webhook_endpoints,
        checkout,
        operations,
    )
    # The routes are listed in the app's own table rather than included router by router:
    # FastAPI matches an included router by walking its routes twice, through bookkeeping of
    # its own, on every request (50 µs of a /healthz here, more for the routes listed last).
    for router in routers:
        app.router.routes.extend(router.router.routes)
    app.router.routes.extend(console.router.routes)
    if settings.gateway == "sandbox":
        app.router.routes.extend(sandbox.router.routes)
    app.add_middleware(Idempotency)
    app.add_middleware(InputLimits)
    app.add_middleware(RateLimits, settings=settings)
    app.add_middleware(MeasureRequests)
    app.add_middleware(RequestId)
    return app
