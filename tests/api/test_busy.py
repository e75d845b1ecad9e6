"""A command that keeps losing the race for its aggregate answers 503 with Retry-After,
stores nothing, and is not kept as the key's answer: the client's retry runs."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import OperationalError

from tests.api.conftest import Api


def test_a_hot_aggregate_is_503_and_the_retry_runs(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    gig = api.gig()
    ledger = api.app.state.ledger
    headers = {**api.as_("client-1"), "Idempotency-Key": "order-1"}
    body = {"gigId": gig["id"], "packageId": "basic"}
    head = ledger.recorder.max_notification_id()
    monkeypatch.setattr(ledger, "max_attempts", 0)  # every attempt lost
    busy = api.client.post("/v1/orders", json=body, headers=headers)
    assert (busy.status_code, busy.json()["code"], busy.headers["Retry-After"]) == (
        503,
        "busy",
        "1",
    )
    assert ledger.recorder.max_notification_id() == head
    monkeypatch.undo()
    retried = api.client.post("/v1/orders", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers


def test_a_failing_database_is_503_stores_nothing_and_the_retry_runs(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store fails while recording (here: every insert refused as if the connection
    dropped): 503 ``not_ready`` with Retry-After, nothing stored, the key left free."""
    gig = api.gig()
    ledger = api.app.state.ledger
    headers = {**api.as_("client-1"), "Idempotency-Key": "order-1"}
    body = {"gigId": gig["id"], "packageId": "basic"}
    head = ledger.recorder.max_notification_id()

    def down(*_: object, **__: object) -> None:
        raise OperationalError("connection to the database lost")

    monkeypatch.setattr(ledger.recorder, "insert_events", down)
    failed = api.client.post("/v1/orders", json=body, headers=headers)
    assert (failed.status_code, failed.json()["code"], failed.headers["Retry-After"]) == (
        503,
        "not_ready",
        "1",
    )
    assert "connection" not in failed.text  # the cause is logged, not shown
    monkeypatch.undo()
    assert ledger.recorder.max_notification_id() == head
    retried = api.client.post("/v1/orders", json=body, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
