"""``GET /metrics``: Prometheus text, made by ``prometheus_client``.

Requests are counted by route *template* (``/v1/orders/{order_id}``, never the id: one
series per route, not per order) and status, with a latency histogram. The number of events
in the store and each projection's lag are read from the database when scraped, so they are
true for the whole deployment, not just this process.

Each app has its own registry: several apps in one process (the tests) do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.service.commit import GroupCommit
from projections.runner import Status

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LedgerCollector(Collector):
    """Events appended and projection lag, read at scrape time; and this process's commits
    (transactions written and the commands they held: their ratio is the mean batch)."""

    def __init__(self, statuses: Callable[[], list[Status]], writer: GroupCommit) -> None:
        self._statuses = statuses
        self._writer = writer

    def collect(self) -> Iterator[Metric]:
        statuses = self._statuses()
        head = max((s.head for s in statuses), default=0)
        yield CounterMetricFamily(
            "ledger_events_appended", "Events in the store (its last position)", value=head
        )
        lag = GaugeMetricFamily(
            "ledger_projection_lag_events",
            "Events a projection has yet to process",
            labels=["projection"],
        )
        for status in statuses:
            lag.add_metric([status.name], status.lag)
        yield lag
        yield CounterMetricFamily(
            "ledger_commit_transactions",
            "Transactions this process wrote to the event store",
            value=self._writer.transactions,
        )
        yield CounterMetricFamily(
            "ledger_commit_commands",
            "Commands recorded by those transactions (group commit puts several in one)",
            value=self._writer.commands,
        )


class Metrics:
    def __init__(self, statuses: Callable[[], list[Status]], writer: GroupCommit) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ledger_http_requests",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ledger_http_request_duration_seconds",
            "Time to answer, by route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(LedgerCollector(statuses, writer))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)


class MeasureRequests:
    """ASGI middleware feeding ``app.state.metrics`` (absent until the lifespan ran)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            metrics: Metrics | None = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                route = getattr(scope.get("route"), "path", "unmatched")
                metrics.observe(scope["method"], route, status, time.perf_counter() - started)
