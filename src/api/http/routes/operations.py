"""``/healthz``, ``/readyz``, ``/metrics``: for orchestrators and Prometheus, not for users.

They carry no personal data (counts and positions only) and answer without a token, as
probes and scrapers expect; deployments keep them off the public route.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.http.metrics import Metrics
from api.http.routes.common import api_router
from projections.runner import ProjectionRunner

router = api_router(tags=["operations"])
READY_MAX_LAG = 1_000
"""A projection further behind than this many events makes the service not ready."""


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (says nothing of the database: that is ``/readyz``). Async: no
    worker thread is taken for an answer that does no I/O."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """The database answers and every projection is healthy and close to the head."""
    runner: ProjectionRunner = request.app.state.runner
    try:
        statuses = runner.status()
    except Exception as error:  # any driver error means: not ready
        body: dict[str, Any] = {"status": "not_ready", "database": type(error).__name__}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    projections = [
        {"name": s.name, "position": s.position, "lag": s.lag, "error": s.error} for s in statuses
    ]
    ready = all(s.error is None and s.lag <= READY_MAX_LAG for s in statuses)
    body = {
        "status": "ready" if ready else "not_ready",
        "database": "ok",
        "projections": projections,
    }
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "The Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
        }
    },
)
def metrics(request: Request) -> Response:
    registry: Metrics = request.app.state.metrics
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
