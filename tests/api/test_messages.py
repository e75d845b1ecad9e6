"""Messages during an order, over HTTP on both backends: the parties and staff write, the
other party is notified once per burst, strangers see nothing, auditors only read, a closed
order takes none, and bad input is a 422 that stores nothing. Messages are events, so the
timeline and the console tell them."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from ledger.actors import Caller
from ledger.settings import Settings
from tests.api.conftest import Api
from tests.api.test_console import sign_in
from tests.conftest import FakeClock

FILE = {"name": "logo-v1.png", "url": "https://files.example.com/logo-v1.png",
        "size": 48213, "contentType": "image/png"}  # fmt: skip


def post(api: Api, order: dict[str, Any], who: str, *roles: str, **body: Any) -> Any:
    return api.client.post(
        f"/v1/orders/{order['id']}/messages",
        json={"text": "Hello", **body},
        headers=api.as_(who, *roles),
    )


def listed(api: Api, order: dict[str, Any], who: str, after: Any, *roles: str, **query: Any) -> Any:
    return api.client.get(
        f"/v1/orders/{order['id']}/messages",
        params=query,
        headers={**api.as_(who, *roles), **api.after(after)},
    )


def test_the_parties_and_staff_write_and_everyone_with_the_order_reads(api: Api) -> None:
    order = api.paid_order(api.gig())
    first = post(api, order, "client-1", text="Can it be blue?\nA dark blue.", attachments=[FILE])
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["author"] == {"id": "client-1", "role": "client"}
    assert body["text"] == "Can it be blue?\nA dark blue." and body["attachments"] == [FILE]
    post(api, order, "freelancer-1", text="Sure")
    last = post(api, order, "support-1", "support", text="Support here: all fine?")
    assert last.json()["author"]["role"] == "support"
    for reader, roles in (("client-1", ()), ("freelancer-1", ()), ("aud-1", ("auditor",))):
        page = listed(api, order, reader, last, *roles)
        assert page.status_code == 200, page.text
        assert [m["author"]["role"] for m in page.json()["data"]] == ["client", "freelancer",
                                                                        "support"]  # fmt: skip
    assert page.json()["data"][0] == body  # the answer is what the read model shows


def test_pages_run_oldest_first(api: Api) -> None:
    order = api.paid_order(api.gig())
    for n in range(5):
        last = post(api, order, "client-1", text=f"message {n}")
    one = listed(api, order, "client-1", last, limit=2).json()
    assert [m["text"] for m in one["data"]] == ["message 0", "message 1"] and one["hasMore"]
    two = listed(api, order, "client-1", last, limit=3, startingAfter=one["data"][-1]["id"]).json()
    assert [m["text"] for m in two["data"]] == ["message 2", "message 3", "message 4"]
    assert not two["hasMore"]
    bad = listed(api, order, "client-1", last, startingAfter="no-such-message")
    assert bad.status_code == 422


def test_strangers_see_nothing_and_auditors_do_not_write(api: Api) -> None:
    order = api.paid_order(api.gig())
    first = post(api, order, "client-1")
    assert post(api, order, "stranger-1").status_code == 404
    assert listed(api, order, "stranger-1", first).status_code == 404
    refused = post(api, order, "aud-1", "auditor")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_a_closed_order_takes_no_messages(api: Api) -> None:
    ledger = api.app.state.ledger
    order = api.paid_order(api.gig())
    oid = UUID(order["id"])
    ledger.accept_order(Caller("freelancer-1"), oid)
    ledger.deliver_order(Caller("freelancer-1"), oid, "Done")
    ledger.complete_order(Caller("client-1"), oid)
    refused = post(api, order, "client-1")
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_transition"


def test_a_burst_of_messages_makes_one_unread_notification_per_order(api: Api) -> None:
    order = api.paid_order(api.gig())
    for n in range(4):
        last = post(api, order, "client-1", text=f"ping {n}")
    seen = api.client.get(
        "/v1/notifications", headers={**api.as_("freelancer-1"), **api.after(last)}
    ).json()["data"]
    messages = [n for n in seen if n["type"] == "order.message"]
    assert len(messages) == 1 and "from the client" in messages[0]["message"]
    mine = api.client.get("/v1/notifications", headers={**api.as_("client-1"), **api.after(last)})
    assert all(n["type"] != "order.message" for n in mine.json()["data"])  # not to the author
    read = api.client.post(
        f"/v1/notifications/{messages[0]['id']}/read", headers=api.as_("freelancer-1")
    )
    assert read.status_code == 200
    again = post(api, order, "client-1", text="Still there?")
    seen = api.client.get(
        "/v1/notifications", headers={**api.as_("freelancer-1"), **api.after(again)}
    ).json()["data"]
    assert len([n for n in seen if n["type"] == "order.message"]) == 2  # a new one, once read
    staff = post(api, order, "support-1", "support", text="Staff note")
    got = api.client.get("/v1/notifications", headers={**api.as_("client-1"), **api.after(staff)})
    assert any("from support" in n["message"] for n in got.json()["data"])  # staff: both told
    got = api.client.get(
        "/v1/notifications", headers={**api.as_("freelancer-1"), **api.after(staff)}
    ).json()["data"]
    assert len([n for n in got if n["type"] == "order.message"]) == 2  # one unread already


def test_the_notification_preference_is_honoured(api: Api) -> None:
    order = api.paid_order(api.gig())
    api.client.patch(
        "/v1/me/preferences", json={"orderUpdatesNotifications": False},
        headers=api.as_("freelancer-1"),
    )  # fmt: skip
    last = post(api, order, "client-1")
    seen = api.client.get(
        "/v1/notifications", headers={**api.as_("freelancer-1"), **api.after(last)}
    ).json()["data"]
    assert all(n["type"] != "order.message" for n in seen)


@pytest.mark.parametrize(
    "body",
    [
        {"text": ""},
        {"text": "   "},
        {"text": "x" * 5001},
        {"text": "bell\u0007"},
        {"text": "nul\u0000"},
        {"text": 5},
        {"attachments": [FILE] * 11},
        {"attachments": [{**FILE, "url": "ftp://files.example.com/x"}]},
        {"attachments": [{**FILE, "size": -1}]},
        {"attachments": [{**FILE, "size": 1.5}]},
        {"attachments": [{**FILE, "contentType": "png"}]},
        {"attachments": [{**FILE, "name": "two\nlines"}]},
        {"attachments": [{"name": "x"}]},
        {"author": "someone-else"},
    ],
)
def test_bad_messages_are_422_and_store_nothing(api: Api, body: dict[str, Any]) -> None:
    order = api.paid_order(api.gig())
    before = api.app.state.ledger.recorder.max_notification_id()
    refused = post(api, order, "client-1", **body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert api.app.state.ledger.recorder.max_notification_id() == before


def test_messages_are_in_the_timeline_and_the_console(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = api.paid_order(api.gig())
    posted = post(api, order, "freelancer-1", text="Draft attached", attachments=[FILE])
    timeline = api.client.get(
        f"/v1/orders/{order['id']}/timeline", headers={**api.as_("client-1"), **api.after(posted)}
    ).json()["data"]
    entry = timeline[-1]
    assert (entry["type"], entry["actor"]["role"]) == ("MessagePosted", "freelancer")
    assert entry["data"]["text"] == "Draft attached"
    sign_in(api, settings, clock)
    api.app.state.runner.wait_for(int(posted.headers["X-Ledger-Position"]), 10)
    page = api.client.get(f"/console/orders/{order['id']}").text
    assert "message: Draft attached (1 attached)" in page
