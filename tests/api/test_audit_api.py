"""``/v1/audit/events`` and ``/v1/audit/verify`` over HTTP (docs/api.md, "Audit"), and
``ledger audit`` on the command line: who may read them, their shapes, paging, bad input,
and a tampered store seen as such by both."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.settings import Settings
from tests.api.conftest import Api
from tests.integration.test_append_only import raw_store
from tests.integration.test_audit_chain import tamper

STAFF = [("support-1", "support"), ("auditor-1", "auditor"), ("admin-1", "admin")]
AUDITOR = ("auditor-1", "auditor")


def history(api: Api) -> int:
    """An order taken to delivery through HTTP; the head of the log after it."""
    order = api.paid_order(api.gig())
    for command in ("accept", "deliver"):
        body = {"message": "here"} if command == "deliver" else None
        done = api.client.post(
            f"/v1/orders/{order['id']}/{command}", json=body, headers=api.as_("freelancer-1")
        )
        assert done.status_code == 200, done.text
    return int(done.headers["X-Ledger-Position"])


def verified(api: Api) -> dict[str, Any]:
    api.app.state.runner.run_once()  # the chain has every event so far
    answer = api.client.get("/v1/audit/verify", headers=api.as_(*AUDITOR))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_the_feed_is_the_log_in_order(api: Api) -> None:
    head = history(api)
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        page = api.client.get(f"/v1/audit/events?after={after}&limit=4", headers=api.as_(*AUDITOR))
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) == {"data", "nextAfter"}
        if not body["data"]:
            assert body["nextAfter"] == after
            break
        seen += body["data"]
        after = body["nextAfter"]
    assert [event["position"] for event in seen] == list(range(1, head + 1))
    assert all(set(e) == {"position", "stream", "version", "type", "at", "data"} for e in seen)
    placed = next(event for event in seen if event["type"] == "OrderPlaced")
    assert placed["version"] == 1 and placed["data"]["actor"]["role"] == "client"


def test_verify_answers_the_chain_head(api: Api) -> None:
    head = history(api)
    body = verified(api)
    assert set(body) == {"ok", "events", "head", "firstMismatch"}
    assert (body["ok"], body["events"], body["firstMismatch"]) == (True, head, None)
    assert body["head"]["position"] == head and len(body["head"]["hash"]) == 64


def test_verify_sees_a_tampered_event(api: Api, settings: Settings) -> None:
    history(api)
    verified(api)
    with raw_store(settings, api.app.state.ledger) as raw:
        tamper(raw, "UPDATE {table} SET topic = topic || '!' WHERE {id} = 5")
    body = verified(api)
    assert (body["ok"], body["firstMismatch"], body["events"]) == (False, 5, 4)


@pytest.mark.parametrize("path", ["/v1/audit/events", "/v1/audit/verify"])
def test_only_staff_read_the_audit_routes(api: Api, path: str) -> None:
    history(api)
    assert api.client.get(path).status_code == 401
    for user in ("client-1", "freelancer-1"):
        answer = api.client.get(path, headers=api.as_(user))
        assert (answer.status_code, answer.json()["code"]) == (403, "forbidden")
    for who in STAFF:
        assert api.client.get(path, headers=api.as_(*who)).status_code == 200


@pytest.mark.parametrize(
    "query", ["after=-1", "after=x", "limit=0", "limit=1001", "limit=1.5", f"after={2**63}"]
)
def test_bad_feed_parameters_are_422(api: Api, query: str) -> None:
    answer = api.client.get(f"/v1/audit/events?{query}", headers=api.as_(*AUDITOR))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
