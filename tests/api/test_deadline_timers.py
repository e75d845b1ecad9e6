"""The deadline timers as ``ledger serve`` and ``ledger worker`` build them (``due_timers``),
on the API app's own ledger and read models, driven by the fake clock: what they did is
seen over HTTP, in the order, its payment and its timeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from api.runtime.timers import DueTimer, due_timers
from ledger.settings import Settings
from tests.api.conftest import Api
from tests.conftest import FakeClock

CL, FL = "client-1", "freelancer-1"
SUPPORT = ("support-1", "support")
CLOCK = {"id": "system:clock", "role": "clock"}


def deadline_timers(api: Api, settings: Settings, clock: FakeClock) -> dict[str, DueTimer]:
    state = api.app.state
    timers = due_timers(state.ledger, state.read_models, settings, clock)
    return {t.name: t for t in timers if isinstance(t, DueTimer)}


def run(api: Api, timer: DueTimer) -> int:
    """Run one timer once the read models have seen every event so far."""
    head = api.app.state.ledger.recorder.max_notification_id()
    assert api.app.state.runner.wait_for(head, 5)
    return timer()


def post(api: Api, order: dict[str, Any], command: str, who: str, body: Any = None) -> None:
    answer = api.client.post(f"/v1/orders/{order['id']}/{command}", json=body, headers=api.as_(who))
    assert answer.status_code == 200, answer.text


def now_read(api: Api, path: str, who: str = CL) -> dict[str, Any]:
    return api.read(path, who, position=api.app.state.ledger.recorder.max_notification_id())


def last_entry(api: Api, order: dict[str, Any], kind: str) -> dict[str, Any]:
    answer = api.client.get(f"/v1/orders/{order['id']}/timeline", headers=api.as_(*SUPPORT))
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["data"] if e["type"] == kind][-1]


def test_due_timers_run_every_deadline(api: Api, settings: Settings, clock: FakeClock) -> None:
    timers = deadline_timers(api, settings, clock)
    assert {"auto-complete order", "accept cancellation of order", "mark order late"} <= set(timers)
    assert timers["auto-complete order"].after == timedelta(days=settings.auto_complete_days)
    assert timers["accept cancellation of order"].after == timedelta(hours=48)
    assert timers["mark order late"].after == timedelta(0)


def test_a_delivery_left_unanswered_is_completed_by_the_clock(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = api.paid_order(api.gig())
    post(api, order, "deliver", FL, {"message": "Here it is"})
    timer = deadline_timers(api, settings, clock)["auto-complete order"]
    clock.advance(days=3, seconds=-1)
    assert run(api, timer) == 0
    clock.advance(seconds=1)
    assert run(api, timer) == 1
    seen = now_read(api, f"/v1/orders/{order['id']}")
    assert (seen["status"], seen["stage"]) == ("completed", "closed")
    completed = last_entry(api, order, "OrderCompleted")
    assert (completed["actor"], completed["data"]["reason"]) == (CLOCK, "delivery_unanswered")
    assert (completed["data"]["fee"], completed["data"]["net"]) == (2_000, 8_000)
    assert run(api, timer) == 0


@pytest.mark.parametrize("asker", [CL, FL])
def test_a_cancellation_request_left_unanswered_is_accepted_and_refunded(
    api: Api, settings: Settings, clock: FakeClock, asker: str
) -> None:
    order = api.paid_order(api.gig())
    post(api, order, "cancellation-requests", asker, {"reason": "Plans changed"})
    timer = deadline_timers(api, settings, clock)["accept cancellation of order"]
    clock.advance(hours=47, minutes=59)
    assert run(api, timer) == 0
    clock.advance(minutes=1)
    assert run(api, timer) == 1
    seen = now_read(api, f"/v1/orders/{order['id']}")
    assert (seen["status"], seen["stage"]) == ("cancelled", "closed")
    payment = now_read(api, f"/v1/orders/{order['id']}/payment")
    assert payment["refundedAmount"] == 100
    assert payment["refunds"][0]["reason"] == "mutual_agreement"
    accepted = last_entry(api, order, "CancellationAccepted")
    assert (accepted["actor"], accepted["data"]["reason"]) == (CLOCK, "cancellation_unanswered")
    assert run(api, timer) == 0


def test_an_order_past_due_is_marked_late_once(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = api.paid_order(api.gig())
    timer = deadline_timers(api, settings, clock)["mark order late"]
    clock.advance(days=3)  # the basic package's delivery days: due at this very moment
    assert run(api, timer) == 0
    clock.advance(seconds=1)
    assert run(api, timer) == 1
    seen = now_read(api, f"/v1/orders/{order['id']}")
    assert (seen["status"], seen["stage"]) == ("processing", "awaiting_acceptance")
    marked = last_entry(api, order, "OrderMarkedLate")
    assert marked["actor"] == CLOCK
    assert (marked["data"]["reason"], marked["data"]["due_at"]) == ("past_due", seen["dueAt"])
    assert run(api, timer) == 0
    post(api, order, "deliver", FL, {"message": "Sorry, here it is"})
    clock.advance(days=1)
    assert run(api, timer) == 0
