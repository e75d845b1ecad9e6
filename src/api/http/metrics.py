"""``GET /metrics``: Prometheus text, made by ``prometheus_client``.

Requests are counted by route *template* (``/v1/orders/{order_id}``, never the id: one
series per route, not per order) and status, with a latency histogram. The number of events
in the store and each projection's lag are read from the database when scraped, so they are
true for the whole deployment, not just this process.

Every label is bounded to a known set, so no request, however made up, adds a series (each
series lives as long as the process): the method is one the app routes or ``OTHER``, the
route a template of the app or ``unmatched`` (``MAX_ROUTES`` of them at most), the status a
real HTTP status or ``other``.

Each app has its own registry: several apps in one process (the tests) do not collide.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger.clock import Clock, utc_now
from ledger.service.commit import GroupCommit
from projections.runner import Status
from projections.webhooks.queries import DeliveryStats

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
METHODS: Final = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"})
"""The methods the app routes (and the two every server answers): any other is ``OTHER``."""
OTHER_METHOD: Final = "OTHER"
UNMATCHED: Final = "unmatched"
OTHER_STATUS: Final = "other"
MAX_ROUTES: Final = 500
"""Route labels kept at most: far more than the app has, a bound should one ever vary."""


def method_label(method: str) -> str:
    """The method as it is routed (methods are case-sensitive), or ``OTHER``."""
    return method if method in METHODS else OTHER_METHOD


def status_label(status: int) -> str:
    return str(status) if isinstance(status, int) and 100 <= status <= 599 else OTHER_STATUS


def route_label(scope: Mapping[str, Any]) -> str:
    """The template of the route that took the request (a route object's ``path``, made
    when the app was built, so one of a fixed set); ``unmatched`` when none took it. Never
    the path as requested."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(route, BaseRoute) and isinstance(path, str) else UNMATCHED


class LedgerCollector(Collector):
    """Events appended and projection lag, read at scrape time; and this process's commits
    (transactions written and the commands they held: their ratio is the mean batch)."""

    def __init__(
        self,
        statuses: Callable[[], list[Status]],
        writer: GroupCommit,
        deliveries: Callable[[], DeliveryStats] | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self._statuses = statuses
        self._writer = writer
        self._deliveries = deliveries
        self._clock = clock

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
        if self._deliveries is not None:
            yield from self._webhook_metrics(self._deliveries())

    def _webhook_metrics(self, stats: DeliveryStats) -> Iterator[Metric]:
        """Read from the deliveries table: the same in every process, whichever sent."""
        deliveries = GaugeMetricFamily(
            "ledger_webhook_deliveries",
            "Webhook deliveries by status (pending, delivered, failed: given up)",
            labels=["status"],
        )
        shown = {**stats.by_status, "pending": stats.queued}  # one being sent is pending
        for status in ("pending", "delivered", "failed"):
            deliveries.add_metric([status], shown.get(status, 0))
        yield deliveries
        attempts = CounterMetricFamily(
            "ledger_webhook_attempts",
            "Webhook delivery attempts by outcome",
            labels=["outcome"],
        )
        for outcome in ("delivered", "failed", "gave_up"):
            attempts.add_metric([outcome], stats.attempts_by_outcome.get(outcome, 0))
        yield attempts
        yield GaugeMetricFamily(
            "ledger_webhook_queue_depth",
            "Webhook deliveries not yet made (the retry queue included)",
            value=stats.queued,
        )
        age = 0.0
        if stats.oldest_queued_at is not None:
            age = max(0.0, (self._clock() - stats.oldest_queued_at).total_seconds())
        yield GaugeMetricFamily(
            "ledger_webhook_oldest_undelivered_seconds",
            "Age of the oldest event not yet delivered to an endpoint (0: none waits)",
            value=age,
        )


class Metrics:
    def __init__(
        self,
        statuses: Callable[[], list[Status]],
        writer: GroupCommit,
        deliveries: Callable[[], DeliveryStats] | None = None,
        clock: Clock = utc_now,
    ) -> None:
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
        self.registry.register(LedgerCollector(statuses, writer, deliveries, clock))
        self._routes: set[str] = set()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request; ``route`` is a template (``route_label``)."""
        method = method_label(method)
        if route not in self._routes:
            if len(self._routes) >= MAX_ROUTES:
                route = UNMATCHED
            else:
                self._routes.add(route)
        self.requests.labels(method, route, status_label(status)).inc()
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
                route = route_label(scope)
                metrics.observe(scope["method"], route, status, time.perf_counter() - started)
