"""Delivery extensions over HTTP, on both backends: the freelancer asks, the client is told
and answers, ``dueAt`` moves and the lateness timer follows it; the timeline tells it; and
every refusal is a problem that stores nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from api.runtime.timers import lateness
from ledger.settings import Settings
from tests.api.conftest import Api
from tests.api.test_console import sign_in
from tests.conftest import FakeClock


def at(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def ask(api: Api, order: dict[str, Any], days: Any = 2, who: str = "freelancer-1") -> Any:
    return api.client.post(
        f"/v1/orders/{order['id']}/extensions",
        json={"days": days, "reason": "The client added a second logo"},
        headers=api.as_(who),
    )


def notifications(api: Api, who: str, response: Any) -> list[str]:
    found = api.client.get("/v1/notifications", headers={**api.as_(who), **api.after(response)})
    return [item["type"] for item in found.json()["data"]]


def test_an_accepted_extension_moves_the_due_date_and_both_are_told(api: Api) -> None:
    order = api.paid_order(api.gig())
    due = at(order["dueAt"])
    asked = ask(api, order, 4)
    assert asked.status_code == 200, asked.text
    assert asked.json()["extension"]["days"] == 4
    assert asked.json()["extension"]["reason"] == "The client added a second logo"
    assert at(asked.json()["dueAt"]) == due
    assert "order.extension_requested" in notifications(api, "client-1", asked)
    shown = api.read(
        f"/v1/orders/{order['id']}", "client-1", position=int(asked.headers["X-Ledger-Position"])
    )
    assert shown["extension"] == asked.json()["extension"]

    accepted = api.client.post(
        f"/v1/orders/{order['id']}/extensions/accept", headers=api.as_("client-1")
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["extension"] is None
    assert at(accepted.json()["dueAt"]) == due + timedelta(days=4)
    assert "order.extension_answered" in notifications(api, "freelancer-1", accepted)
    timeline = api.client.get(
        f"/v1/orders/{order['id']}/timeline", headers={**api.as_("client-1"), **api.after(accepted)}
    ).json()
    kinds = [entry["type"] for entry in timeline["data"]]
    assert kinds[-2:] == ["ExtensionRequested", "ExtensionAccepted"]


def test_a_declined_extension_leaves_the_due_date(api: Api) -> None:
    order = api.paid_order(api.gig())
    ask(api, order)
    declined = api.client.post(
        f"/v1/orders/{order['id']}/extensions/decline", headers=api.as_("client-1")
    )
    assert declined.status_code == 200
    assert (declined.json()["dueAt"], declined.json()["extension"]) == (order["dueAt"], None)


def test_the_lateness_timer_follows_the_new_date(api: Api, clock: FakeClock) -> None:
    order = api.paid_order(api.gig())
    ask(api, order, 5)
    accepted = api.client.post(
        f"/v1/orders/{order['id']}/extensions/accept", headers=api.as_("client-1")
    )
    ledger, models = api.app.state.ledger, api.app.state.read_models
    api.app.state.runner.wait_for(int(accepted.headers["X-Ledger-Position"]), 10)
    timer = lateness(ledger, models, clock)
    clock.now = at(order["dueAt"]) + timedelta(hours=1)  # past the first date
    assert timer() == 0
    clock.now = at(accepted.json()["dueAt"]) + timedelta(minutes=1)  # past the new one
    assert timer() == 1


@pytest.mark.parametrize("days", [0, 31, "2", 1.5, True, None])
def test_days_out_of_range_or_of_another_type_are_422(api: Api, days: Any) -> None:
    order = api.paid_order(api.gig())
    refused = ask(api, order, days)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"


def test_refusals(api: Api) -> None:
    order = api.paid_order(api.gig())
    assert ask(api, order, who="client-1").status_code == 403  # the client does not ask
    assert ask(api, order, who="stranger-1").status_code == 404  # nor does a stranger see it
    accept = f"/v1/orders/{order['id']}/extensions/accept"
    assert api.client.post(accept, headers=api.as_("client-1")).status_code == 409  # none open
    assert ask(api, order).status_code == 200
    second = ask(api, order, 3)
    assert second.status_code == 409 and second.json()["code"] == "invalid_transition"
    assert api.client.post(accept, headers=api.as_("freelancer-1")).status_code == 403
    unpaid = api.order(api.gig())
    assert ask(api, unpaid).status_code == 409


def test_the_console_shows_the_request_and_its_answer(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = api.paid_order(api.gig())
    asked = ask(api, order, 3)
    sign_in(api, settings, clock)
    api.app.state.runner.wait_for(int(asked.headers["X-Ledger-Position"]), 10)
    page = api.client.get(f"/console/orders/{order['id']}").text
    assert "3 more days asked, waiting for the client" in page
    assert "3 more days asked: The client added a second logo" in page  # the timeline
    accepted = api.client.post(
        f"/v1/orders/{order['id']}/extensions/accept", headers=api.as_("client-1")
    )
    api.app.state.runner.wait_for(int(accepted.headers["X-Ledger-Position"]), 10)
    page = api.client.get(f"/console/orders/{order['id']}").text
    assert "waiting for the client" not in page and "extension accepted: due" in page
