"""``/metrics`` labels are bounded: no request, however made up, adds a series of its own
(issue 18: made-up methods grew ``/metrics`` and the process's memory for ever)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from starlette.routing import Route

from api.http.metrics import (
    MAX_ROUTES,
    UNMATCHED,
    Metrics,
    method_label,
    route_label,
    status_label,
)
from tests.api.conftest import Api

SERIES = re.compile(r"^(ledger_http_[a-z_]+\{[^}]*\})", re.MULTILINE)


def series(api: Api) -> set[str]:
    """Every labelled HTTP series ``/metrics`` shows (name and labels, not the value)."""
    answer = api.client.get("/metrics")
    assert answer.status_code == 200
    return set(SERIES.findall(answer.text))


def junk(api: Api, i: int) -> None:
    """A made-up method on a real route, a real method on a made-up path, and both."""
    api.client.request(f"BREW{i}", "/v1/orders")
    api.client.get(f"/no/such/{i}/path")
    api.client.request(f"X-{i}", f"/v1/orders/{i}/../../{i}")
    api.client.request("get", f"/v1/gigs/{i}")  # lower case is another method to HTTP


def test_made_up_methods_and_paths_add_no_series(api: Api) -> None:
    junk(api, 0)  # the first round may open the bounded OTHER and unmatched series
    series(api)  # and the first scrape its own
    before = series(api)
    for i in range(1, 201):
        junk(api, i)
    after = series(api)
    assert after == before, sorted(after - before)[:10]
    text = api.client.get("/metrics").text
    assert "BREW" not in text and "X-1" not in text and "/no/such" not in text
    assert 'method="OTHER"' in text
    assert 'route="unmatched"' in text


@pytest.mark.parametrize(
    ("method", "label"),
    [
        ("GET", "GET"),
        ("POST", "POST"),
        ("PATCH", "PATCH"),
        ("PUT", "PUT"),
        ("DELETE", "DELETE"),
        ("HEAD", "HEAD"),
        ("OPTIONS", "OPTIONS"),
        ("get", "OTHER"),
        ("TRACE", "OTHER"),
        ("BREW", "OTHER"),
        ("G" * 10_000, "OTHER"),
    ],
)
def test_the_method_label_is_one_of_the_routed_methods(method: str, label: str) -> None:
    assert method_label(method) == label


@pytest.mark.parametrize(
    ("status", "label"), [(200, "200"), (404, "404"), (599, "599"), (99, "other"), (1000, "other")]
)
def test_the_status_label_is_a_real_status(status: int, label: str) -> None:
    assert status_label(status) == label


def test_the_route_label_is_a_route_template_or_unmatched() -> None:
    routed = Route("/v1/orders/{order_id}", endpoint=lambda: None)
    assert route_label({"route": routed}) == "/v1/orders/{order_id}"
    assert route_label({"route": SimpleNamespace(path="/v1/orders/123")}) == UNMATCHED
    assert route_label({"route": None, "path": "/v1/orders/123"}) == UNMATCHED
    assert route_label({}) == UNMATCHED


def test_route_labels_are_capped(api: Api) -> None:
    metrics: Metrics = api.app.state.metrics
    for i in range(MAX_ROUTES + 50):
        metrics.observe("GET", f"/made/{i}", 200, 0.001)
    text = api.client.get("/metrics").text
    assert f"/made/{MAX_ROUTES + 49}" not in text
    assert len(metrics.requests.collect()[0].samples) <= 2 * (MAX_ROUTES + 20)


def test_observe_bounds_the_method_and_status(api: Api) -> None:
    metrics: Metrics = api.app.state.metrics
    metrics.observe("BREW", UNMATCHED, 7, 0.001)
    text = api.client.get("/metrics").text
    assert "BREW" not in text
    assert 'method="OTHER",route="unmatched",status="other"' in text
