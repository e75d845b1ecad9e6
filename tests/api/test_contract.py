"""docs/api.md, endpoint by endpoint: shapes, statuses, headers and the problem+json of errors.

Each test runs on SQLite and on PostgreSQL (the ``api`` fixture). Times come from the
``clock`` fixture (the same ``FakeClock`` the app uses), so ``asOf`` and timestamps are exact.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from api.http import deps
from ledger.domain.payment import payment_id_for
from tests.api.conftest import BASIC, Api
from tests.api_shapes import GIG_KEYS, ORDER_KEYS, PAYMENT_KEYS
from tests.conftest import START, FakeClock

STANDARD = {
    "packageId": "standard",
    "price": 250.5,
    "deliveryDays": 5,
    "revisions": 2,
    "description": "Three logos",
}
PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}
CLIENT, FREELANCER, SUPPORT = ("client-1",), ("freelancer-1",), ("support-1", "support")


# -- helpers ----------------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    """An RFC 9457 answer of docs/api.md: the media type, the five keys, and ``errors`` on 422."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS, body
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    if status == 422:
        assert body["errors"], body
        assert all(error.keys() == {"field", "message"} for error in body["errors"])


def has(item: dict[str, Any], **expected: Any) -> None:
    assert {key: item[key] for key in expected} == expected, item


def head(api: Api) -> int:
    """The event store's last position."""
    return int(api.app.state.ledger.recorder.max_notification_id() or 0)


def at(moment: str) -> datetime:
    """An API timestamp, which must be ISO 8601 in UTC."""
    parsed = datetime.fromisoformat(moment)
    assert parsed.utcoffset() == timedelta(0), moment
    return parsed


def post(
    api: Api, path: str, who: tuple[str, ...], body: Any = None, **headers: str
) -> httpx.Response:
    return api.client.post(path, json=body, headers={**api.as_(*who), **headers})


def get(api: Api, path: str, who: tuple[str, ...], **params: Any) -> httpx.Response:
    return api.client.get(path, params=params, headers=api.as_(*who))


def command(
    api: Api, order: dict[str, Any], name: str, who: tuple[str, ...], body: Any = None
) -> httpx.Response:
    return post(api, f"/v1/orders/{order['id']}/{name}", who, body)


def ok(response: httpx.Response) -> dict[str, Any]:
    """A command's 200: the order, ``ETag`` its version, ``X-Ledger-Position`` its last event."""
    assert response.status_code == 200, response.text
    order = dict(response.json())
    assert order.keys() == ORDER_KEYS
    assert response.headers["ETag"] == f'"{order["version"]}"'
    assert int(response.headers["X-Ledger-Position"]) >= 1
    return order


def pay(api: Api, order: dict[str, Any], transaction: str = "tx-1") -> int:
    """Open the order's payment and let the gateway confirm it; the last event's position."""
    api.open_payment(order, order["userId"])
    return api.confirm(order, transaction)


def ids(api: Api, path: str, who: str, *roles: str) -> list[str]:
    return [item["id"] for item in api.read(path, who, *roles, position=head(api))["data"]]


# -- gigs -------------------------------------------------------------------------------------


def test_gigs_are_created_listed_and_read(api: Api, clock: FakeClock) -> None:
    body = {"title": "Logo design", "packages": [BASIC, STANDARD]}
    response = post(api, "/v1/gigs", FREELANCER, body)
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["X-Ledger-Position"]) == head(api)
    gig = response.json()
    assert gig.keys() == GIG_KEYS
    has(gig, freelancerId="freelancer-1", title="Logo design", currency="MAD")
    has(gig, packages=[BASIC, STANDARD], rating={"average": None, "count": 0})
    assert at(gig["createdAt"]) == at(gig["updatedAt"]) == START
    clock.advance(minutes=5)
    newer = api.gig("freelancer-2")

    assert api.read(f"/v1/gigs/{gig['id']}", "anyone", position=head(api)) == gig
    page = api.read("/v1/gigs", "anyone", position=head(api))
    has(page, data=[newer, gig], hasMore=False)
    has(api.read("/v1/gigs?limit=1", "anyone"), data=[newer], hasMore=True)
    assert ids(api, "/v1/gigs?freelancerId=freelancer-1", "anyone") == [gig["id"]]
    assert_problem(get(api, f"/v1/gigs/{uuid4()}", ("anyone",)), 404, "not_found")


# -- placing and listing orders ---------------------------------------------------------------


def test_placing_an_order(api: Api) -> None:
    gig = api.gig(packages=[BASIC, STANDARD])
    body = {"gigId": gig["id"], "packageId": "standard", "requirements": "Blue"}
    response = post(api, "/v1/orders", CLIENT, body)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order.keys() == ORDER_KEYS
    has(order, status="pending", stage="awaiting_payment", version=1)
    has(order, totalAmount=STANDARD["price"], currency="MAD", package=STANDARD)
    has(order, userId="client-1", freelancerId="freelancer-1", gigId=gig["id"])
    has(order, packageId="standard", requirements="Blue", revisionsUsed=0, dueAt=None)
    assert at(order["createdAt"]) == START
    assert response.headers["Location"] == f"/v1/orders/{order['id']}"
    assert response.headers["ETag"] == '"1"'
    assert int(response.headers["X-Ledger-Position"]) == head(api)
    assert api.read(response.headers["Location"], "client-1", position=head(api)) == order


def test_placing_an_order_is_refused(api: Api) -> None:
    gig = api.gig()
    before = head(api)
    refusals = [  # body, who, status, code
        ({"gigId": str(uuid4()), "packageId": "basic"}, CLIENT, 404, "not_found"),
        ({"gigId": gig["id"], "packageId": "premium"}, CLIENT, 422, "validation_failed"),
        ({"gigId": gig["id"], "packageId": "basic"}, FREELANCER, 409, None),  # own gig
    ]
    for body, who, status, code in refusals:
        assert_problem(post(api, "/v1/orders", who, body), status, code)
    assert head(api) == before


def test_listing_orders_by_capacity_status_and_user(api: Api) -> None:
    mine, theirs = api.gig("freelancer-1"), api.gig("freelancer-2")
    a = api.paid_order(mine, "client-1")["id"]  # processing
    b = api.order(mine, "client-2")["id"]
    c = api.order(theirs, "freelancer-1")["id"]  # freelancer-1 is this one's client
    d = api.order(theirs, "client-1")["id"]
    expected = {  # (query, who, *roles) → ids, newest first
        ("", "freelancer-1"): [c, b, a],
        ("?as=client", "freelancer-1"): [c],
        ("?as=freelancer", "freelancer-1"): [b, a],
        ("?as=freelancer&status=pending", "freelancer-1"): [b],
        ("", "client-1"): [d, a],
        ("?status=processing", "client-1"): [a],
        ("?status=pending", "client-1"): [d],
        ("?status=completed", "client-1"): [],
        ("", "support-1", "support"): [d, c, b, a],
        ("", "auditor-1", "auditor"): [d, c, b, a],
        ("?userId=client-1", "auditor-1", "auditor"): [d, a],
        ("?userId=client-2&status=pending", "admin-1", "admin"): [b],
    }
    for (query, *who), wanted in expected.items():
        assert ids(api, f"/v1/orders{query}", *who) == wanted, (query, who)
    assert_problem(get(api, "/v1/orders", CLIENT, userId="client-2"), 403, "forbidden")


def test_lists_are_paged_newest_first(api: Api) -> None:
    gig = api.gig()
    newest_first = [api.order(gig, "client-1")["id"] for _ in range(5)][::-1]
    stranger = api.order(gig, "client-2")["id"]
    pages = [  # query, ids, hasMore
        ("?limit=2", newest_first[:2], True),
        (f"?limit=2&startingAfter={newest_first[1]}", newest_first[2:4], True),
        (f"?limit=2&startingAfter={newest_first[3]}", newest_first[4:], False),
        ("?limit=5", newest_first, False),
        ("?limit=4", newest_first[:4], True),
        ("", newest_first, False),
    ]
    for query, wanted, more in pages:
        page = api.read(f"/v1/orders{query}", "client-1", position=head(api))
        assert ([o["id"] for o in page["data"]], page["hasMore"]) == (wanted, more), query
    not_in_list = [  # query parameters whose startingAfter is not an item of that list
        {"startingAfter": str(uuid4())},
        {"startingAfter": stranger},
        {"startingAfter": gig["id"]},
        {"startingAfter": newest_first[0], "status": "processing"},
    ]
    for params in not_in_list:
        assert_problem(get(api, "/v1/orders", CLIENT, **params), 422, "invalid_cursor")


# -- reading one order ------------------------------------------------------------------------

MOMENTS = [  # query → version, status, stage (placed at 09:00, paid 09:05, accepted 09:10)
    ({"version": 1}, 1, "pending", "awaiting_payment"),
    ({"version": 2}, 2, "processing", "awaiting_acceptance"),
    ({"version": 3}, 3, "processing", "in_progress"),
    ({"asOf": "2026-01-05T09:02:00Z"}, 1, "pending", "awaiting_payment"),
    ({"asOf": "2026-01-05T09:05:00+00:00"}, 2, "processing", "awaiting_acceptance"),
    ({"asOf": "2026-01-05T10:07:00+01:00"}, 2, "processing", "awaiting_acceptance"),
    ({"asOf": "2030-01-01T00:00:00Z"}, 3, "processing", "in_progress"),
]


def test_an_order_now_at_a_version_as_of_a_moment_and_its_history(
    api: Api, clock: FakeClock
) -> None:
    order = api.order(api.gig())
    clock.advance(minutes=5)
    pay(api, order)
    clock.advance(minutes=5)
    ok(command(api, order, "accept", FREELANCER))
    path = f"/v1/orders/{order['id']}"

    wait = {"X-Ledger-Min-Position": str(head(api))}
    now = api.client.get(path, headers={**api.as_(*CLIENT), **wait})
    assert now.status_code == 200, now.text
    assert now.headers["ETag"] == '"3"'
    has(now.json(), stage="in_progress", version=3)
    assert at(now.json()["dueAt"]) == START + timedelta(minutes=5, days=BASIC["deliveryDays"])
    for query, version, status, stage in MOMENTS:
        then = get(api, path, CLIENT, **query)
        assert then.status_code == 200, (query, then.text)
        assert then.headers["ETag"] == f'"{version}"', query
        has(then.json(), version=version, status=status, stage=stage)
    assert get(api, path, CLIENT, version=3).json() == now.json()
    assert get(api, path, CLIENT, version=1).json() == order
    assert_problem(get(api, path, CLIENT, version=4), 404, "not_found")
    assert_problem(get(api, path, CLIENT, asOf="2026-01-05T08:59:59Z"), 404, "not_found")

    history = api.read(f"{path}/history", "freelancer-1", position=head(api))["data"]
    assert [(h["status"], h["stage"], h["actor"]) for h in history] == [
        ("pending", "awaiting_payment", {"id": "client-1", "role": "client"}),
        ("processing", "awaiting_acceptance", {"id": "system:gateway", "role": "gateway"}),
        ("processing", "in_progress", {"id": "freelancer-1", "role": "freelancer"}),
    ]
    assert [at(h["at"]) - START for h in history] == [timedelta(minutes=m) for m in (0, 5, 10)]
    assert all(h.keys() == {"status", "stage", "event", "at", "actor"} for h in history)
    assert all(h["event"] for h in history)


def test_the_history_pages_by_the_orders_version(api: Api) -> None:
    """``limit`` entries after the order's version ``after``; ``nextAfter`` is the last
    entry's version while more follow, else ``null``; the pages together are the whole."""
    order = api.order(api.gig())
    pay(api, order)
    ok(command(api, order, "accept", FREELANCER))
    for _ in range(2):
        ok(command(api, order, "cancellation-requests", CLIENT, {"reason": "changed plans"}))
        ok(command(api, order, "cancellation-requests/withdraw", CLIENT))
    path = f"/v1/orders/{order['id']}/history"
    whole = api.read(path, "freelancer-1", position=head(api))
    assert whole.keys() == {"data", "nextAfter"} and whole["nextAfter"] is None
    assert len(whole["data"]) == 7
    first = get(api, path, FREELANCER, limit=3).json()
    assert first == {"data": whole["data"][:3], "nextAfter": 3}
    second = get(api, path, FREELANCER, after=3, limit=3).json()
    assert second == {"data": whole["data"][3:6], "nextAfter": 6}
    last = get(api, path, FREELANCER, after=6, limit=3).json()
    assert last == {"data": whole["data"][6:], "nextAfter": None}
    assert get(api, path, FREELANCER, after=7).json() == {"data": [], "nextAfter": None}
    for bad in ({"limit": 0}, {"limit": 501}, {"after": -1}):
        assert_problem(get(api, path, FREELANCER, **bad), 422, "validation_failed")
    assert_problem(get(api, path, ("someone-else",), limit=1), 404, "not_found")


# -- order commands ---------------------------------------------------------------------------

WORK = [  # who, command, body, status, stage (200) or problem code
    (CLIENT, "complete", None, 409, "invalid_transition"),
    (FREELANCER, "accept", None, 200, "in_progress"),
    (FREELANCER, "accept", None, 409, "invalid_transition"),
    (CLIENT, "requirements", {"text": "Blue"}, 200, "in_progress"),
    (FREELANCER, "deliver", {"message": "Here"}, 200, "delivered"),
    (CLIENT, "request-revision", {"reason": "Bigger"}, 200, "revision_requested"),
    (FREELANCER, "deliver", {"message": "Bigger"}, 200, "delivered"),
    (CLIENT, "request-revision", {"reason": "Again"}, 409, "invalid_transition"),  # 1 allowed
    (CLIENT, "review", {"rating": 4}, 409, "invalid_transition"),  # not completed yet
    (CLIENT, "complete", None, 200, "closed"),
    (CLIENT, "review", {"rating": 4, "comment": "Good"}, 200, "closed"),
    (CLIENT, "review", {"rating": 5}, 409, "invalid_transition"),  # only once
]


def test_the_work_commands_and_their_limits(api: Api) -> None:
    order = api.paid_order(api.gig())
    version = order["version"]
    for who, name, body, status, expected in WORK:
        response = command(api, order, name, who, body)
        if status != 200:
            assert_problem(response, status, expected)
            continue
        saved = ok(response)
        has(saved, stage=expected, version=version + 1)
        assert int(response.headers["X-Ledger-Position"]) == head(api)
        version = saved["version"]
    has(saved, status="completed", revisionsUsed=1, requirements="Blue")


CANCELLATION = [  # who, command, body, status, stage (200) or problem code
    (FREELANCER, "cancellation-requests/decline", None, 409, "invalid_transition"),
    (CLIENT, "cancellation-requests", {"reason": "No"}, 200, "cancellation_requested"),
    (FREELANCER, "cancellation-requests/decline", None, 200, "in_progress"),
    (FREELANCER, "cancellation-requests", {"reason": "Busy"}, 200, "cancellation_requested"),
    (FREELANCER, "cancellation-requests/withdraw", None, 200, "in_progress"),
    (CLIENT, "cancellation-requests", {"reason": "Please"}, 200, "cancellation_requested"),
    (FREELANCER, "cancellation-requests/accept", None, 200, "closed"),
]


def test_cancellation_requests_are_answered(api: Api) -> None:
    order = api.paid_order(api.gig())
    ok(command(api, order, "accept", FREELANCER))
    for who, name, body, status, expected in CANCELLATION:
        response = command(api, order, name, who, body)
        if status == 200:
            has(ok(response), stage=expected)
        else:
            assert_problem(response, status, expected)
    assert response.json()["status"] == "cancelled"
    payment = api.read(f"/v1/orders/{order['id']}/payment", "client-1", position=head(api))
    has(payment, status="success", refundedAmount=BASIC["price"])
    assert [(r["amount"], r["reason"]) for r in payment["refunds"]] == [
        (BASIC["price"], "mutual_agreement")
    ]


def test_direct_cancellation(api: Api) -> None:
    gig = api.gig()
    pending, paid = api.order(gig), api.paid_order(gig)
    withdrew = {"reason": "client_withdrew"}
    has(ok(command(api, pending, "cancel", CLIENT, withdrew)), status="cancelled", stage="closed")
    assert_problem(command(api, paid, "cancel", CLIENT, withdrew), 409, "invalid_transition")
    violation = {"reason": "policy_violation", "note": "Spam"}
    has(ok(command(api, paid, "cancel", SUPPORT, violation)), status="cancelled", stage="closed")
    assert_problem(command(api, paid, "cancel", SUPPORT, violation), 409, "invalid_transition")
    payment = api.read(f"/v1/orders/{paid['id']}/payment", "client-1", position=head(api))
    has(payment, status="success", refundedAmount=BASIC["price"])
    [refund] = payment["refunds"]
    has(refund, amount=BASIC["price"], currency="MAD", reason="policy_violation")
    assert at(refund["at"]) == START


RESOLUTIONS = [  # opened by, resolution, order status, refunded
    (CLIENT, {"outcome": "release"}, "completed", 0.0),
    (FREELANCER, {"outcome": "refund"}, "cancelled", 100.0),
    (CLIENT, {"outcome": "split", "refundAmount": 25.5}, "completed", 25.5),
]


def test_disputes_are_opened_and_resolved(api: Api) -> None:
    gig = api.gig()
    for n, (opener, resolution, status, refunded) in enumerate(RESOLUTIONS):
        order = api.paid_order(gig, transaction=f"tx-{n}")
        has(ok(command(api, order, "disputes", opener, {"reason": "Late"})), stage="in_dispute")
        again = command(api, order, "disputes", CLIENT, {"reason": "Again"})
        assert_problem(again, 409, "invalid_transition")
        resolved = ok(command(api, order, "disputes/resolve", SUPPORT, resolution))
        has(resolved, status=status, stage="closed")
        late = command(api, order, "disputes/resolve", SUPPORT, resolution)
        assert_problem(late, 409, "invalid_transition")
        payment = api.read(f"/v1/orders/{order['id']}/payment", "client-1", position=head(api))
        assert payment["refundedAmount"] == refunded, resolution


def test_if_match_guards_commands(api: Api) -> None:
    order = api.paid_order(api.gig())  # version 2
    before = head(api)
    requirements = f"/v1/orders/{order['id']}/requirements"
    accept = f"/v1/orders/{order['id']}/accept"
    blue = {"text": "Blue"}
    assert_problem(
        post(api, requirements, CLIENT, blue, **{"If-Match": '"1"'}), 412, "version_mismatch"
    )
    assert_problem(post(api, accept, FREELANCER, **{"If-Match": '"7"'}), 412, "version_mismatch")
    assert_problem(post(api, accept, FREELANCER, **{"If-Match": "2"}), 400)
    assert head(api) == before
    has(ok(post(api, requirements, CLIENT, blue, **{"If-Match": '"2"'})), version=3)
    has(ok(post(api, accept, FREELANCER, **{"If-Match": "*"})), version=4)


# -- payments ---------------------------------------------------------------------------------


def test_payments_are_created_read_and_listed(api: Api) -> None:
    gig = api.gig()
    order, other = api.order(gig, "client-1"), api.order(gig, "client-2")
    assert_problem(get(api, f"/v1/orders/{order['id']}/payment", CLIENT), 404, "not_found")

    response = command(api, order, "payments", CLIENT, {"paymentMethod": "credit_card"})
    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment.keys() == PAYMENT_KEYS
    # PaymentCreated and CheckoutOpened: version 2, with the sandbox's hosted form.
    has(payment, orderId=order["id"], status="pending", paymentMethod="credit_card", version=2)
    has(payment, amount=order["totalAmount"], currency="MAD", refundedAmount=0.0, refunds=[])
    has(payment, transactionId=None, failureReason=None)
    token = payment["checkout"]["tokenId"]
    assert re.fullmatch(f"sbx_{UUID(payment['id']).hex}_[0-9a-f]{{32}}", token), token
    assert payment["checkout"] == {
        "tokenId": token,
        "paymentUrl": f"http://127.0.0.1:8000/sandbox/payment-form/{token}",
    }
    assert response.headers["Location"] == f"/v1/payments/{payment['id']}"
    assert response.headers["ETag"] == '"2"'
    assert int(response.headers["X-Ledger-Position"]) == head(api)
    assert_problem(command(api, order, "payments", CLIENT, {"paymentMethod": "credit_card"}), 409)

    position = pay(api, other)  # client-2's order, paid with tx-1
    paid = str(payment_id_for(UUID(other["id"])))
    wait = {"X-Ledger-Min-Position": str(position)}
    read = api.client.get(
        f"/v1/orders/{other['id']}/payment", headers={**api.as_("client-2"), **wait}
    )
    assert read.status_code == 200, read.text
    assert read.headers["ETag"] == '"3"'
    has(read.json(), id=paid, status="success", transactionId="tx-1")
    assert api.read(f"/v1/payments/{paid}", "client-2", position=position) == read.json()
    assert api.read(f"/v1/payments/{payment['id']}", "client-1", position=position) == payment
    again = command(api, other, "payments", ("client-2",), {"paymentMethod": "credit_card"})
    assert_problem(again, 409)

    listed = {  # (query, who, *roles) → ids, newest first
        ("", "support-1", "support"): [paid, payment["id"]],
        ("?status=success", "auditor-1", "auditor"): [paid],
        ("?status=pending", "admin-1", "admin"): [payment["id"]],
        (f"?orderId={order['id']}", "support-1", "support"): [payment["id"]],
        ("?transactionId=tx-1", "support-1", "support"): [paid],
        ("", "client-1"): [payment["id"]],
        ("", "freelancer-1"): [paid, payment["id"]],
        ("?limit=1", "freelancer-1"): [paid],
        (f"?startingAfter={paid}", "freelancer-1"): [payment["id"]],
    }
    for (query, *who), wanted in listed.items():
        assert ids(api, f"/v1/payments{query}", *who) == wanted, (query, who)


# -- read-your-writes, operations, errors -----------------------------------------------------


def test_a_position_the_read_models_have_not_reached_is_503(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = api.order(api.gig())
    api.read("/v1/orders", "client-1", position=head(api))  # the read models are at the head
    monkeypatch.setattr(deps, "MAX_WAIT_SECONDS", 0.05)  # the contract's 5 s, shortened
    for path in ("/v1/orders", f"/v1/orders/{order['id']}", "/v1/gigs", "/v1/payments"):
        ahead = {**api.as_(*CLIENT), "X-Ledger-Min-Position": str(head(api) + 1)}
        response = api.client.get(path, headers=ahead)
        assert_problem(response, 503, "not_ready")
        assert int(response.headers["Retry-After"]) >= 0
        reached = {**api.as_(*CLIENT), "X-Ledger-Min-Position": str(head(api))}
        assert api.client.get(path, headers=reached).status_code == 200, path


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200, ready.text
    has(ready.json(), status="ready", database="ok")
    assert {p["name"] for p in ready.json()["projections"]} >= {"orders", "payments", "gigs"}

    order = api.order(api.gig())
    api.read(f"/v1/orders/{order['id']}", "client-1", position=head(api))
    get(api, f"/v1/orders/{uuid4()}", CLIENT)
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    route = 'ledger_http_requests_total{method="GET",route="/v1/orders/{order_id}"'
    assert f'{route},status="200"}} 1.0' in metrics.text
    assert f'{route},status="404"}} 1.0' in metrics.text
    assert 'route="/v1/orders",status="201"} 1.0' in metrics.text
    assert order["id"] not in metrics.text
    assert "ledger_events_appended" in metrics.text
    writer = api.app.state.ledger.writer
    assert writer.transactions >= 2  # the gig, the order
    assert f"ledger_commit_transactions_total {float(writer.transactions)}" in metrics.text
    assert f"ledger_commit_commands_total {float(writer.commands)}" in metrics.text


def test_every_error_is_problem_json_and_request_ids_are_echoed(api: Api) -> None:
    order = api.order(api.gig())
    client, user = api.client, api.as_(*CLIENT)
    cancel = f"/v1/orders/{order['id']}/cancel"
    problems = [  # response, status
        (client.get("/v1/orders"), 401),
        (client.get("/v1/orders", headers={"Authorization": "Bearer not-a-token"}), 401),
        (get(api, "/v1/orders", CLIENT, userId="x"), 403),
        (get(api, f"/v1/orders/{uuid4()}", CLIENT), 404),
        (get(api, "/v1/nowhere", CLIENT), 404),
        (client.delete("/v1/orders", headers=user), 405),
        (command(api, order, "accept", FREELANCER), 409),
        (post(api, cancel, CLIENT, {"reason": "client_withdrew"}, **{"If-Match": '"9"'}), 412),
        (client.post("/v1/orders", content=b"{" * 70_000, headers=user), 413),
        (client.post("/v1/orders", json={}, headers=user), 422),
        (
            client.post(
                "/v1/orders", content=b"{", headers={**user, "Content-Type": "application/json"}
            ),
            400,
        ),
    ]
    for response, status in problems:
        assert_problem(response, status)
        assert response.headers["X-Request-Id"]

    for path in ("/healthz", "/v1/orders", f"/v1/orders/{uuid4()}", "/v1/nowhere"):
        echoed = client.get(path, headers={**user, "X-Request-Id": "req-42.a:b_c"})
        assert echoed.headers["X-Request-Id"] == "req-42.a:b_c", path
    for unsafe in ("has space", "x" * 65, 'quote"d'):
        replaced = client.get("/healthz", headers={"X-Request-Id": unsafe})
        assert replaced.headers["X-Request-Id"] not in ("", unsafe)
    assert len({client.get("/healthz").headers["X-Request-Id"] for _ in range(2)}) == 2
