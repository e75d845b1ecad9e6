"""``GET /v1/orders/{id}/timeline`` (docs/api.md "Orders"): every event of an order and of its
payment, oldest first, with who did it and the order's status and stage after it — the
support view of a dispute. On SQLite and PostgreSQL.

The story is made through real requests (the sandbox checkout's card and webhook included)
with the fake clock moved a minute between steps, so every time is exact.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest

from ledger.domain.order import MAX_CANCELLATION_REQUESTS
from ledger.domain.payment import payment_id_for
from tests.api.conftest import BASIC, Api
from tests.conftest import START, FakeClock

FL, CL, STRANGER = "freelancer-1", "client-1", "someone-else"
SUPPORT = ("support-1", "support")
ENTRY_KEYS = {"position", "stream", "version", "type", "at", "actor", "data", "state"}
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
CARD = {"cardNumber": "4242424242424242", "expiry": "12/27", "cvv": "123", "cardHolderName": "A"}


def post(api: Api, path: str, who: tuple[str, ...], body: Any = None, **headers: str) -> Any:
    answer = api.client.post(path, json=body, headers={**api.as_(*who), **headers})
    assert answer.status_code in (200, 201), answer.text
    return answer


def timeline(api: Api, order_id: str, *who: str) -> list[dict[str, Any]]:
    answer = api.client.get(f"/v1/orders/{order_id}/timeline", headers=api.as_(*who))
    assert answer.status_code == 200, answer.text
    assert answer.json().keys() == {"data", "nextAfter"}
    assert answer.json()["nextAfter"] is None  # the whole story fits the default page
    return list(answer.json()["data"])


def not_found(answer: httpx.Response) -> None:
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body.keys() >= PROBLEM_KEYS and body["code"] == "not_found", body


@pytest.fixture
def disputed(api: Api, clock: FakeClock) -> tuple[dict[str, Any], httpx.Response]:
    """A 200 MAD order: placed, paid with the sandbox's card, accepted, disputed by the
    client (request id ``dispute-req``), split by support with 40 MAD back; one minute
    between steps. Returns the order and support's answer."""
    order = api.order(api.gig(FL, packages=[{**BASIC, "price": 200}]), CL)
    path = f"/v1/orders/{order['id']}"
    clock.advance(minutes=1)
    paying = post(api, f"{path}/payments", (CL,), {"paymentMethod": "credit_card"})
    clock.advance(minutes=1)
    form = f"/sandbox/payment-form/{paying.json()['checkout']['tokenId']}"
    assert api.client.post(form, json=CARD).json()["status"] == "paid"
    clock.advance(minutes=1)
    post(api, f"{path}/accept", (FL,))
    clock.advance(minutes=1)
    post(api, f"{path}/disputes", (CL,), {"reason": "Half done"}, **{"X-Request-Id": "dispute-req"})
    clock.advance(minutes=1)
    resolved = post(
        api, f"{path}/disputes/resolve", SUPPORT, {"outcome": "split", "refundAmount": 40}
    )
    return order, resolved


def test_a_disputes_timeline_has_every_event_of_the_order_and_its_payment_in_order(
    api: Api, disputed: tuple[dict[str, Any], httpx.Response]
) -> None:
    """Order and payment events interleaved by position, each with its stream and version,
    who acted, and the order's status and stage after it (for a payment event: the
    order's at that moment, so the payment succeeds while the order is still pending)."""
    order, resolved = disputed
    entries = timeline(api, order["id"], *SUPPORT)
    assert all(entry.keys() == ENTRY_KEYS for entry in entries)
    o, p = order["id"], str(payment_id_for(UUID(order["id"])))
    gateway = {"id": "system:gateway", "role": "gateway"}
    client, freelancer = {"id": CL, "role": "client"}, {"id": FL, "role": "freelancer"}
    support = {"id": "support-1", "role": "support"}
    rows = [(e["type"], e["stream"], e["version"], e["actor"], e["state"]) for e in entries]
    assert rows == [
        ("OrderPlaced", o, 1, client, {"status": "pending", "stage": "awaiting_payment"}),
        ("PaymentCreated", p, 1, client, {"status": "pending", "stage": "awaiting_payment"}),
        ("CheckoutOpened", p, 2, client, {"status": "pending", "stage": "awaiting_payment"}),
        ("PaymentSucceeded", p, 3, gateway, {"status": "pending", "stage": "awaiting_payment"}),
        ("OrderPaymentConfirmed", o, 2, gateway,
         {"status": "processing", "stage": "awaiting_acceptance"}),
        ("OrderAccepted", o, 3, freelancer, {"status": "processing", "stage": "in_progress"}),
        ("DisputeOpened", o, 4, client, {"status": "processing", "stage": "in_dispute"}),
        ("DisputeResolved", o, 5, support, {"status": "completed", "stage": "closed"}),
        ("RefundRecorded", p, 4, support, {"status": "completed", "stage": "closed"}),
    ]  # fmt: skip
    minutes = [0, 1, 1, 2, 2, 3, 4, 5, 5]
    assert [e["at"] for e in entries] == [iso(START + timedelta(minutes=m)) for m in minutes]
    positions = [e["position"] for e in entries]
    assert positions == sorted(set(positions))
    assert positions[-1] == int(resolved.headers["X-Ledger-Position"])


def test_the_positions_and_data_are_the_stores_own(
    api: Api, disputed: tuple[dict[str, Any], httpx.Response]
) -> None:
    """Each position is the notification id of that very event in the log; ``data`` is
    what the event stored (amounts in centimes, the full actor with the request id)."""
    order, _ = disputed
    entries = timeline(api, order["id"], *SUPPORT)
    recorder = api.app.state.ledger.recorder
    for entry in entries:
        [stored] = recorder.select_notifications(start=entry["position"], limit=1)
        assert stored.id == entry["position"]
        assert (str(stored.originator_id), stored.originator_version) == (
            entry["stream"],
            entry["version"],
        )
        assert stored.topic.endswith(entry["type"])
    data = {e["type"]: e["data"] for e in entries}
    assert data["OrderPlaced"]["package"]["price"] == 20_000
    assert data["OrderPlaced"]["client_id"] == CL
    assert data["DisputeOpened"]["reason"] == "Half done"
    assert data["DisputeOpened"]["actor"] == {
        "id": CL,
        "role": "client",
        "request_id": "dispute-req",
    }
    resolved = data["DisputeResolved"]  # a 20 % fee on the 160 MAD kept
    assert (resolved["outcome"], resolved["refund"], resolved["fee"], resolved["net"]) == (
        "split",
        4_000,
        3_200,
        12_800,
    )
    assert (data["RefundRecorded"]["amount"], data["RefundRecorded"]["reason"]) == (
        4_000,
        "dispute_split",
    )


def test_the_timeline_reads_the_store_so_it_needs_no_wait(api: Api, clock: FakeClock) -> None:
    """Straight after a command, with no ``X-Ledger-Min-Position``, its event is there: the
    timeline is read from the events, not from a read model that may lag."""
    order = api.order(api.gig(FL), CL)
    for _ in range(3):
        clock.advance(seconds=1)
        cancelled = api.client.post(
            f"/v1/orders/{order['id']}/cancel",
            json={"reason": "client_withdrew"},
            headers=api.as_(CL),
        )
    assert cancelled.status_code == 409  # the first one cancelled it; only two events
    entries = timeline(api, order["id"], CL)
    assert [(e["type"], e["state"]["status"]) for e in entries] == [
        ("OrderPlaced", "pending"),
        ("OrderCancelled", "cancelled"),
    ]
    assert entries[1]["data"]["reason"] == "client_withdrew"
    assert entries[1]["at"] == iso(START + timedelta(seconds=1))


def test_parties_and_staff_see_it_and_nobody_else_learns_the_order_exists(
    api: Api, disputed: tuple[dict[str, Any], httpx.Response]
) -> None:
    order, _ = disputed
    path = f"/v1/orders/{order['id']}/timeline"
    seen = timeline(api, order["id"], *SUPPORT)
    for who in [(CL,), (FL,), ("auditor-1", "auditor"), ("admin-1", "admin")]:
        assert timeline(api, order["id"], *who) == seen, who
    unknown = "00000000-0000-4000-8000-000000000000"
    for order_id in (order["id"], unknown):  # someone else's order reads like no order
        answer = api.client.get(f"/v1/orders/{order_id}/timeline", headers=api.as_(STRANGER))
        not_found(answer)
        assert answer.json()["detail"] == f"order {order_id} not found"
    answer = api.client.get(path)
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "unauthenticated"


@pytest.mark.parametrize("kind", ["unknown", "malformed", "gig", "payment"])
def test_what_is_not_an_order_is_404_even_for_staff(api: Api, kind: str) -> None:
    """An unknown id, one that is not a UUID, and the id of a gig or of a payment."""
    gig = api.gig(FL)
    order = api.paid_order(gig, CL)
    ids = {
        "unknown": "5b1e4c6a-0000-4000-8000-000000000001",
        "malformed": "not-a-uuid",
        "gig": gig["id"],
        "payment": str(payment_id_for(UUID(order["id"]))),
    }
    answer = api.client.get(f"/v1/orders/{ids[kind]}/timeline", headers=api.as_(*SUPPORT))
    not_found(answer)


def cancellation_loops(api: Api, order_id: str) -> None:
    """``MAX_CANCELLATION_REQUESTS`` cancellation requests by the client, each withdrawn."""
    path = f"/v1/orders/{order_id}/cancellation-requests"
    for _ in range(MAX_CANCELLATION_REQUESTS):
        post(api, path, (CL,), {"reason": "changed my mind"})
        post(api, f"{path}/withdraw", (CL,))


def test_cancellation_requests_are_capped_then_a_dispute_is_the_way(api: Api) -> None:
    """The request after the cap is 409 ``invalid_transition`` and stores nothing."""
    order = api.paid_order(api.gig(FL), CL)
    cancellation_loops(api, order["id"])
    path = f"/v1/orders/{order['id']}"
    for who in (CL, FL):
        answer = api.client.post(
            f"{path}/cancellation-requests", json={"reason": "again"}, headers=api.as_(who)
        )
        assert answer.status_code == 409, answer.text
        assert answer.json()["code"] == "invalid_transition"
        assert answer.json()["detail"] == (
            f"this order has had {MAX_CANCELLATION_REQUESTS} cancellation requests;"
            " open a dispute instead"
        )
    assert len(timeline(api, order["id"], CL)) == 5 + 2 * MAX_CANCELLATION_REQUESTS
    post(api, f"{path}/disputes", (FL,), {"reason": "we cannot agree"})


def test_the_timeline_pages_by_position(api: Api) -> None:
    """``limit`` entries after ``after``; ``nextAfter`` is the last one's position while
    more follow and ``null`` on the last page; the pages put together are the whole."""
    order = api.paid_order(api.gig(FL), CL)
    cancellation_loops(api, order["id"])
    path = f"/v1/orders/{order['id']}/timeline"
    whole = timeline(api, order["id"], *SUPPORT)
    assert len(whole) == 15  # placed, paid (4 events), then 5 requests withdrawn
    pages, after = [], 0
    while after is not None:
        answer = api.client.get(path, params={"after": after, "limit": 5}, headers=api.as_(CL))
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert page.keys() == {"data", "nextAfter"} and 1 <= len(page["data"]) <= 5
        after = page["nextAfter"]
        assert after in (None, page["data"][-1]["position"])
        pages.append(page["data"])
    assert [len(page) for page in pages] == [5, 5, 5]  # the last full page already says null
    assert [entry for page in pages for entry in page] == whole
    middle = whole[7]["position"]  # a position of either stream continues after itself
    answer = api.client.get(path, params={"after": middle}, headers=api.as_(CL))
    assert answer.json() == {"data": whole[8:], "nextAfter": None}
    answer = api.client.get(path, params={"after": whole[-1]["position"]}, headers=api.as_(CL))
    assert answer.json() == {"data": [], "nextAfter": None}
    for bad in ({"limit": 0}, {"limit": 501}, {"after": -1}, {"limit": "x"}):
        answer = api.client.get(path, params=bad, headers=api.as_(CL))
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["errors"][0]["field"] in ("limit", "after")
    answer = api.client.get(path, params={"limit": 500}, headers=api.as_(STRANGER))
    not_found(answer)  # paging tells a stranger nothing either


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
