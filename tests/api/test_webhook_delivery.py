"""Events delivered to a real HTTP receiver on loopback (``tests.webhook_receiver``), on both
backends, through the app's own dispatcher with the injected clock: every public type, signed,
in order per order; the receiver down and up again; the retry schedule; a rotation's two
signatures; giving up after three days, which disables the endpoint. The dispatcher is woken
and run by the test where time matters (``run_once``), so nothing waits on real time but the
receiver's condition."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from api.delivery.dispatcher import BASE, CAP, GIVE_UP, Dispatcher, backoff, retry_after
from api.delivery.signing import SignatureError, secret_for, signature, verify
from ledger.actors import Caller
from ledger.domain.endpoint import PUBLIC_TYPES
from ledger.domain.payment import payment_id_for
from ledger.domain.values import DisputeOutcome
from ledger.settings import Settings
from tests.api.conftest import Api
from tests.conftest import FakeClock
from tests.webhook_receiver import Receiver, receiving

ADMIN = ("admin-1", "admin")
GATEWAY = Caller.system("gateway")
CLOCK = Caller.system("clock")
SUPPORT = Caller("support-1", frozenset({"support"}))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as served:
        yield served


def register(api: Api, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = api.client.post(
        "/v1/webhook-endpoints",
        json={"url": url, "events": events or ["*"], "description": "the marketplace"},
        headers=api.as_(*ADMIN),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def dispatcher(api: Api) -> Dispatcher:
    found: Dispatcher = api.app.state.dispatcher
    return found


@pytest.fixture(autouse=True)
def by_hand(api: Api) -> None:
    """The app's dispatcher thread stopped: each test sends when it says (``settle``)."""
    dispatcher(api).stop()


def settle(api: Api) -> None:
    """Let the projections catch up with everything recorded, then send what is due."""
    ledger = api.app.state.ledger
    assert api.app.state.runner.wait_for(ledger.recorder.max_notification_id() or 0, 10)
    dispatcher(api).run_once()


def key_of(settings: Settings) -> str:
    key = settings.endpoint_key
    assert key is not None
    return key


def signed_at(item: Any) -> int:
    """The ``t`` of a delivery's signature."""
    return int(item.headers["Ledger-Signature"].split(",")[0].removeprefix("t="))


def every_kind_of_event(api: Api) -> None:
    """Orders through every public event type, by the ledger's own commands."""
    ledger = api.app.state.ledger
    gig = api.gig()
    client, freelancer = Caller("client-1"), Caller("freelancer-1")

    def paid(transaction: str) -> UUID:
        order = api.order(gig)
        api.open_payment(order)
        api.confirm(order, transaction)
        return UUID(order["id"])

    full = paid("tx-1")
    ledger.accept_order(freelancer, full)
    ledger.submit_requirements(client, full, "A blue logo")
    ledger.request_extension(freelancer, full, 2, "A second logo")
    ledger.accept_extension(client, full)
    ledger.deliver_order(freelancer, full, "Here it is")
    ledger.request_revision(client, full, "Bluer")
    ledger.deliver_order(freelancer, full, "Bluer now")
    ledger.complete_order(client, full)
    ledger.review_order(client, full, 5, "Lovely")
    ledger.clear_funds(full, timedelta(0))

    late = paid("tx-2")
    ledger.accept_order(freelancer, late)
    api.app.state.clock.advance(days=30)
    ledger.mark_late(late)
    ledger.request_extension(freelancer, late, 1, "Nearly there")
    ledger.decline_extension(client, late)
    ledger.request_cancellation(client, late, "Too late for me")
    ledger.cancel_order(SUPPORT, late, "policy_violation", "late and unanswered")

    disputed = paid("tx-3")
    ledger.accept_order(freelancer, disputed)
    ledger.deliver_order(freelancer, disputed, "Done")
    ledger.open_dispute(client, disputed, "Not what I asked for")
    ledger.resolve_dispute(SUPPORT, disputed, DisputeOutcome.REFUND)

    declined = api.order(gig)
    api.open_payment(declined)
    ledger.fail_payment(GATEWAY, payment_id_for(UUID(declined["id"])), "card declined")


def test_every_event_type_arrives_signed_and_in_order_per_order(
    api: Api, receiver: Receiver, settings: Settings
) -> None:
    endpoint = register(api, receiver.url)
    every_kind_of_event(api)
    settle(api)
    events = [item.event for item in receiver.received]
    assert {event["type"] for event in events} == PUBLIC_TYPES
    secret = secret_for(key_of(settings), UUID(endpoint["id"]), 1)
    assert endpoint["secret"] == secret
    for item in receiver.received:  # signed at the app's (fake) time
        verify(item.body, item.headers["Ledger-Signature"], secret, now=signed_at(item))
        assert item.headers["Ledger-Event-Id"] == item.event["id"]
        assert item.headers["Ledger-Event-Type"] == item.event["type"]
    per_order: dict[str, list[int]] = {}
    for event in events:
        per_order.setdefault(order_of(event), []).append(event["position"])
        assert event["id"] == f"evt_{event['position']}" and event["apiVersion"] == "1"
    assert all(positions == sorted(positions) for positions in per_order.values())
    assert len({event["id"] for event in events}) == len(events)  # none sent twice


def test_the_object_is_the_order_or_payment_as_the_api_shows_it_after_the_event(
    api: Api, receiver: Receiver
) -> None:
    register(api, receiver.url, ["order.placed", "order.paid", "payment.succeeded"])
    order = api.paid_order(api.gig())
    settle(api)
    by_type = {item.event["type"]: item.event["data"]["object"] for item in receiver.received}
    assert set(by_type) == {"order.placed", "order.paid", "payment.succeeded"}
    placed = {**api.read(f"/v1/orders/{order['id']}?version=1", "client-1")}
    assert by_type["order.placed"] == placed
    assert by_type["order.paid"] == api.read(f"/v1/orders/{order['id']}", "client-1")
    payment = api.read(f"/v1/orders/{order['id']}/payment", "client-1")
    assert by_type["payment.succeeded"]["id"] == payment["id"]
    assert by_type["payment.succeeded"]["status"] == "success"


def test_an_endpoint_gets_only_what_it_subscribed_to_and_only_after_it_was_registered(
    api: Api, receiver: Receiver
) -> None:
    gig = api.gig()
    api.order(gig)  # before the endpoint: never sent to it
    register(api, receiver.url, ["order.paid"])
    api.paid_order(gig)
    settle(api)
    assert [item.event["type"] for item in receiver.received] == ["order.paid"]


def test_a_receiver_down_for_a_while_gets_everything_when_it_is_up(
    api: Api, receiver: Receiver, clock: FakeClock
) -> None:
    register(api, receiver.url)
    receiver.stop()
    gig = api.gig()
    orders = [api.paid_order(gig, f"client-{n}", f"tx-{n}") for n in range(3)]
    settle(api)  # every first attempt refused: nothing arrives
    deliveries = api.app.state.read_models.webhooks.stats()
    assert deliveries.queued == 9 and deliveries.attempts_by_outcome == {"failed": 3}
    # Only each order's first event was tried: the next ones wait for it.
    receiver.start()
    clock.advance(seconds=BASE.total_seconds())  # past every first backoff (at most BASE)
    settle(api)
    ids = receiver.event_ids()
    assert len(ids) == 9 and len(set(ids)) == 9
    for order in orders:
        mine = [item.event for item in receiver.received if order_of(item.event) == order["id"]]
        assert {event["type"] for event in mine} == {"order.placed", "order.paid",
                                                     "payment.succeeded"}  # fmt: skip
        assert [e["position"] for e in mine] == sorted(e["position"] for e in mine)


def order_of(event: dict[str, Any]) -> str:
    shown = event["data"]["object"]
    return str(shown.get("orderId", shown["id"]))


def test_a_failing_answer_is_retried_on_the_schedule(
    api: Api, receiver: Receiver, clock: FakeClock
) -> None:
    endpoint = register(api, receiver.url, ["order.placed"])
    dispatcher(api).draw = lambda: 0.0  # the shortest wait of each jitter range
    receiver.answers.extend([(500, None), (404, None), (429, "300"), (200, None)])
    api.order(api.gig())
    settle(api)
    waits = []
    for _ in range(3):
        delivery = only_delivery(api, endpoint)
        assert delivery["status"] == "pending"
        due = delivery["nextAttemptAt"]
        waits.append(due)
        clock.now = parse(due) - timedelta(seconds=1)
        settle(api)  # a second early: nothing is sent
        assert len(receiver.received) == len(waits)
        clock.advance(seconds=1)
        settle(api)
    delivery = only_delivery(api, endpoint)
    assert delivery["status"] == "delivered"
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 404, 429, 200]
    assert [a["outcome"] for a in delivery["attempts"]] == ["failed"] * 3 + ["delivered"]
    gaps = [
        (parse(b["at"]) - parse(a["at"])).total_seconds()
        for a, b in zip(delivery["attempts"], delivery["attempts"][1:], strict=False)
    ]
    assert gaps == [15.0, 30.0, 300.0]  # half of 30 s, of 60 s; then Retry-After's 300 s


def parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def only_delivery(api: Api, endpoint: dict[str, Any]) -> dict[str, Any]:
    found = api.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=api.as_(*ADMIN)
    )
    assert found.status_code == 200, found.text
    (delivery,) = found.json()["data"]
    return dict(delivery)


def test_after_three_days_of_failures_the_delivery_is_given_up_and_the_endpoint_disabled(
    api: Api, receiver: Receiver, clock: FakeClock
) -> None:
    endpoint = register(api, receiver.url, ["order.placed"])
    receiver.stop()
    api.order(api.gig())
    settle(api)
    for _ in range(40):
        delivery = only_delivery(api, endpoint)
        if delivery["status"] != "pending":
            break
        clock.now = parse(delivery["nextAttemptAt"])
        settle(api)
    assert delivery["status"] == "failed"
    assert delivery["attempts"][-1]["outcome"] == "gave_up"
    first, last = (parse(delivery["attempts"][i]["at"]) for i in (0, -1))
    assert last - first <= GIVE_UP
    ledger = api.app.state.ledger
    api.app.state.runner.wait_for(ledger.recorder.max_notification_id(), 10)
    shown = api.client.get(f"/v1/webhook-endpoints/{endpoint['id']}", headers=api.as_(*ADMIN))
    assert shown.json()["enabled"] is False
    assert "failed for 3 days" in shown.json()["disabledReason"]
    # An admin's retry sends it again, once the endpoint is enabled.
    receiver.start()
    api.client.patch(
        f"/v1/webhook-endpoints/{endpoint['id']}", json={"enabled": True}, headers=api.as_(*ADMIN)
    )
    retried = api.client.post(
        f"/v1/webhook-deliveries/{delivery['id']}/retry", headers=api.as_(*ADMIN)
    )
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    settle(api)
    assert only_delivery(api, endpoint)["status"] == "delivered"
    assert len(receiver.received) == 1


def test_during_a_rotation_both_secrets_sign(
    api: Api, receiver: Receiver, clock: FakeClock, settings: Settings
) -> None:
    endpoint = register(api, receiver.url, ["order.placed"])
    rotated = api.client.post(
        f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret", headers=api.as_(*ADMIN)
    )
    assert rotated.status_code == 200, rotated.text
    new, old = rotated.json()["secret"], endpoint["secret"]
    assert new != old and rotated.json()["secretGeneration"] == 2
    gig = api.gig()
    api.order(gig)
    settle(api)
    (during,) = receiver.received
    assert during.headers["Ledger-Signature"].count("v1=") == 2
    stamp = signed_at(during)
    for secret in (new, old):
        verify(during.body, during.headers["Ledger-Signature"], secret, now=stamp)
    clock.advance(hours=24, seconds=1)
    api.order(gig, "client-2")
    settle(api)
    after = receiver.received[1]
    assert after.headers["Ledger-Signature"].count("v1=") == 1
    stamp = signed_at(after)
    verify(after.body, after.headers["Ledger-Signature"], new, now=stamp)
    with pytest.raises(SignatureError):
        verify(after.body, after.headers["Ledger-Signature"], old, now=stamp)


def test_a_disabled_endpoint_is_sent_its_events_once_enabled_and_a_deleted_one_nothing(
    api: Api, receiver: Receiver
) -> None:
    disabled = register(api, receiver.url)
    deleted = register(api, receiver.url)
    admin = api.as_(*ADMIN)
    path = f"/v1/webhook-endpoints/{disabled['id']}"
    api.client.patch(path, json={"enabled": False}, headers=admin)
    gone = api.client.delete(f"/v1/webhook-endpoints/{deleted['id']}", headers=admin)
    assert gone.status_code == 204
    api.order(api.gig())
    settle(api)
    assert receiver.received == []  # held while disabled
    api.client.patch(path, json={"enabled": True}, headers=admin)
    settle(api)
    assert [item.event["type"] for item in receiver.received] == ["order.placed"]
    assert {item.headers["Ledger-Delivery-Id"] for item in receiver.received} == {
        d["id"] for d in api.client.get(f"{path}/deliveries", headers=admin).json()["data"]
    }
    stats = api.app.state.read_models.webhooks.stats()
    assert stats.queued == 0  # the deleted endpoint's delivery was given up, not left waiting


def test_a_delivery_that_cannot_be_attempted_is_recorded_and_holds_up_nothing(
    api: Api, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = register(api, receiver.url, ["order.placed"])
    gig = api.gig()
    broken = api.order(gig)
    api.order(gig, "client-2")
    real = Dispatcher.body

    def body(self: Dispatcher, row: Any) -> bytes:
        if row["stream_id"] == broken["id"]:
            raise RuntimeError("cannot render")
        return real(self, row)

    monkeypatch.setattr(Dispatcher, "body", body)
    settle(api)
    assert len(receiver.received) == 1  # the other order's delivery went out
    shown = api.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=api.as_(*ADMIN)
    ).json()["data"]
    failed = next(d for d in shown if d["orderId"] == broken["id"])
    assert failed["status"] == "pending" and failed["nextAttemptAt"] is not None
    assert failed["attempts"][0]["error"] == "RuntimeError: cannot render"


def test_a_retry_after_beyond_reason_waits_a_day_at_most(api: Api, receiver: Receiver) -> None:
    endpoint = register(api, receiver.url, ["order.placed"])
    receiver.answers.append((503, "100000000000000"))
    api.order(api.gig())
    settle(api)
    (delivery,) = api.client.get(
        f"/v1/webhook-endpoints/{endpoint['id']}/deliveries", headers=api.as_(*ADMIN)
    ).json()["data"]
    wait = parse(delivery["nextAttemptAt"]) - parse(delivery["attempts"][0]["at"])
    assert wait == timedelta(days=1)


def test_a_second_rotation_waits_for_the_first_ones_overlap(api: Api, clock: FakeClock) -> None:
    endpoint = register(api, "http://127.0.0.1:9/x", ["order.placed"])
    path = f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret"
    assert api.client.post(path, headers=api.as_(*ADMIN)).status_code == 200
    again = api.client.post(path, headers=api.as_(*ADMIN))
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    clock.advance(hours=24, seconds=1)
    assert api.client.post(path, headers=api.as_(*ADMIN)).json()["secretGeneration"] == 3


def test_the_verify_function_refuses_forged_altered_and_stale_deliveries() -> None:
    secret = "whsec_test"
    body = b'{"id":"evt_1"}'
    header = signature([secret], body, 1_000_000)
    assert verify(body, header, secret, now=1_000_000 + 299) == 1_000_000
    for bad_body, bad_header, now in (
        (body, signature(["whsec_forged"], body, 1_000_000), 1_000_000),  # another secret
        (b'{"id":"evt_2"}', header, 1_000_000),  # the body altered
        (body, header, 1_000_000 + 301),  # stale: beyond the 300 s tolerance
        (body, header, 1_000_000 - 301),  # from the future
        (body, header.replace("t=1000000", "t=1000001"), 1_000_000),  # the time altered
        (body, "v1=abc", 1_000_000),  # no timestamp
        (body, None, 1_000_000),
        (body, "t=x,v1=abc", 1_000_000),
        (body, header.replace("t=1000000", "t=\u00b2"), 1_000_000),  # a digit, not ASCII
        (body, "t=1000000,v1=\u00e9" + "0" * 63, 1_000_000),  # not hex
    ):
        with pytest.raises(SignatureError):
            verify(bad_body, bad_header, secret, now=now)


def test_the_backoff_doubles_within_its_jitter_up_to_its_cap() -> None:
    assert backoff(1, 0.0) == BASE / 2 and backoff(1, 0.999999) < BASE
    assert backoff(2, 0.0) == BASE
    assert backoff(30, 0.0) == CAP / 2 and backoff(1000, 0.999999) <= CAP
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after("120", now) == timedelta(seconds=120)
    assert retry_after("Thu, 01 Jan 2026 00:10:00 GMT", now) == timedelta(minutes=10)
    assert retry_after("soon", now) is None and retry_after(None, now) is None
    assert retry_after("99999999", now) == timedelta(days=1)


def test_a_rebuild_decides_nothing_again(api: Api, receiver: Receiver) -> None:
    """Not even a delivery that is gone (or, alike, one for a type added since)."""
    register(api, receiver.url)
    api.paid_order(api.gig())
    settle(api)
    sent = len(receiver.received)
    db = api.app.state.read_models.db
    db.statement("DELETE FROM webhook_deliveries WHERE type = 'order.placed'")
    runner = api.app.state.runner
    runner.stop()  # the rebuild is the only writer of the read models meanwhile
    runner.rebuild(["webhooks"])
    kept = db.read("SELECT type FROM webhook_deliveries ORDER BY position")
    assert [row["type"] for row in kept] == ["payment.succeeded", "order.paid"]
    dispatcher(api).run_once()
    assert len(receiver.received) == sent
    shown = api.client.get("/v1/webhook-endpoints", headers=api.as_(*ADMIN)).json()["data"]
    assert len(shown) == 1  # the endpoints themselves are rebuilt from the log
