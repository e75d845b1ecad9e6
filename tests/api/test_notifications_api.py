"""docs/api.md "Notifications and preferences" over HTTP, on SQLite and PostgreSQL: the list
(shapes, unread filter, paging newest first), marking read, the preferences, and who may see
what.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.api.conftest import Api
from tests.api.test_ledger_api import act, head, problem
from tests.conftest import START

KEYS = {"id", "type", "orderId", "message", "createdAt", "readAt"}
CL, FL = "client-1", "freelancer-1"
LIST = "/v1/notifications"
PREFERENCES = "/v1/me/preferences"


def mine(api: Api, who: str, **params: Any) -> dict[str, Any]:
    """``who``'s notifications once the read models reached the store's head."""
    headers = {**api.as_(who), "X-Ledger-Min-Position": str(head(api))}
    answer = api.client.get(LIST, params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body.keys() == {"data", "hasMore"}
    assert all(item.keys() == KEYS for item in body["data"])
    return dict(body)


def kinds(page: dict[str, Any]) -> list[str]:
    return [item["type"] for item in page["data"]]


def read(api: Api, who: str, notification_id: str) -> httpx.Response:
    return api.client.post(f"{LIST}/{notification_id}/read", headers=api.as_(who))


def patch(api: Api, who: str, body: Any) -> httpx.Response:
    return api.client.patch(PREFERENCES, json=body, headers=api.as_(who))


def test_each_party_is_told_in_api_md_shapes(api: Api) -> None:
    order = api.paid_order(api.gig())
    act(api, order, "deliver", FL, body={"message": "done"})
    act(api, order, "complete", CL)
    client = mine(api, CL)
    assert kinds(client) == [
        "review.requested",
        "order.status_changed",
        "order.delivered",
        "order.status_changed",
        "payment.confirmed",
    ]
    assert client["hasMore"] is False
    for item in client["data"]:
        assert item["orderId"] == order["id"]
        assert item["readAt"] is None
        assert isinstance(item["message"], str) and order["id"][:8] in item["message"]
        created = datetime.fromisoformat(item["createdAt"])
        assert created == START and created.utcoffset() == timedelta(0)
    assert "100.00 MAD" in client["data"][-1]["message"]
    assert kinds(mine(api, FL)) == [
        "order.status_changed",
        "order.received",
        "order.status_changed",
    ]
    assert mine(api, "someone-else")["data"] == []


def test_marking_read_twice_and_the_unread_filter(api: Api) -> None:
    api.paid_order(api.gig())
    newest, older = mine(api, CL)["data"]
    first = read(api, CL, newest["id"])
    assert first.status_code == 200, first.text
    assert first.json().keys() == KEYS
    assert first.json()["readAt"] is not None
    assert {**first.json(), "readAt": None} == newest
    again = read(api, CL, newest["id"])
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert int(again.headers["X-Ledger-Position"]) >= int(first.headers["X-Ledger-Position"])
    unread = api.client.get(
        LIST, params={"unread": "true"}, headers={**api.as_(CL), **api.after(first)}
    )
    assert [item["id"] for item in unread.json()["data"]] == [older["id"]]
    assert [item["id"] for item in mine(api, CL, unread="false")["data"]] == [newest["id"]]
    assert mine(api, CL)["data"][0]["readAt"] == first.json()["readAt"]


def test_paging_newest_first(api: Api) -> None:
    gig = api.gig()
    api.paid_order(gig)
    api.paid_order(gig, transaction="tx-2")
    everything = mine(api, CL)["data"]
    assert len(everything) == 4
    assert everything[0]["orderId"] != everything[-1]["orderId"]
    first = mine(api, CL, limit=3)
    assert first["hasMore"] is True and first["data"] == everything[:3]
    rest = mine(api, CL, limit=3, startingAfter=first["data"][-1]["id"])
    assert rest == {"data": everything[3:], "hasMore": False}


def test_nobody_reaches_another_users_notifications(api: Api) -> None:
    api.paid_order(api.gig())
    theirs = mine(api, FL)["data"][0]["id"]
    problem(read(api, CL, theirs), 404, "not_found")
    problem(read(api, "stranger", theirs), 404, "not_found")
    problem(read(api, CL, "00000000-0000-0000-0000-000000000000"), 404, "not_found")
    problem(read(api, CL, "not-an-id"), 404, "not_found")
    cursor = api.client.get(LIST, params={"startingAfter": theirs}, headers=api.as_(CL))
    problem(cursor, 422, "invalid_cursor")
    assert mine(api, FL)["data"][0]["readAt"] is None


def test_no_token_is_401(api: Api) -> None:
    problem(api.client.get(LIST), 401)
    problem(api.client.post(f"{LIST}/00000000-0000-0000-0000-000000000000/read"), 401)
    problem(api.client.get(PREFERENCES), 401)
    problem(api.client.patch(PREFERENCES, json={"orderUpdatesNotifications": False}), 401)
    problem(api.client.get(LIST, headers={"Authorization": "Bearer nonsense"}), 401)


def test_bad_input_is_422(api: Api) -> None:
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"unread": "perhaps"}):
        problem(api.client.get(LIST, params=params, headers=api.as_(CL)), 422)
    for body in (
        {},
        {"orderUpdatesNotifications": "false"},
        {"orderUpdatesNotifications": 0},
        {"orderUpdatesNotifications": None},
        {"orderUpdatesNotifications": True, "other": 1},
        [True],
    ):
        problem(patch(api, CL, body), 422, "validation_failed")
    malformed = api.client.patch(
        PREFERENCES, content=b"{", headers={**api.as_(CL), "Content-Type": "application/json"}
    )
    problem(malformed, 400)
    assert api.read(PREFERENCES, CL) == {"orderUpdatesNotifications": True}


def test_preferences_off_then_on_again(api: Api) -> None:
    gig = api.gig()
    assert api.read(PREFERENCES, CL) == {"orderUpdatesNotifications": True}
    off = patch(api, CL, {"orderUpdatesNotifications": False})
    assert off.status_code == 200, off.text
    assert off.json() == {"orderUpdatesNotifications": False}
    assert int(off.headers["X-Ledger-Position"]) == head(api)
    assert api.read(PREFERENCES, CL) == {"orderUpdatesNotifications": False}
    assert api.read(PREFERENCES, FL) == {"orderUpdatesNotifications": True}
    quiet = api.paid_order(gig)
    assert mine(api, CL)["data"] == []
    assert len(mine(api, FL)["data"]) == 2
    on = patch(api, CL, {"orderUpdatesNotifications": True})
    assert on.status_code == 200 and on.json() == {"orderUpdatesNotifications": True}
    act(api, quiet, "deliver", FL, body={"message": "done"})
    assert kinds(mine(api, CL)) == ["order.delivered"]
    unchanged = patch(api, CL, {"orderUpdatesNotifications": True})
    assert unchanged.status_code == 200, unchanged.text
    assert int(unchanged.headers["X-Ledger-Position"]) == head(api)


def test_accounts_that_are_never_a_party_change_nothing(api: Api) -> None:
    auditor = api.client.patch(
        PREFERENCES, json={"orderUpdatesNotifications": False}, headers=api.as_("a-1", "auditor")
    )
    problem(auditor, 403, "forbidden")
    assert api.read(PREFERENCES, "a-1", "auditor") == {"orderUpdatesNotifications": True}
    assert api.read(LIST, "a-1", "auditor") == {"data": [], "hasMore": False}


def test_the_list_waits_for_min_position(api: Api) -> None:
    api.paid_order(api.gig())
    beyond = {**api.as_(CL), "X-Ledger-Min-Position": str(head(api) + 1_000)}
    answer = api.client.get(LIST, headers=beyond)
    problem(answer, 503, "not_ready")
    assert answer.headers["Retry-After"]
    bad = {**api.as_(CL), "X-Ledger-Min-Position": "soon"}
    problem(api.client.get(LIST, headers=bad), 422)


def test_paging_unread_goes_on_past_a_cursor_marked_read(api: Api) -> None:
    """Read a page of unread notifications, mark them read, ask for the next page: the
    cursor has left the unread list, yet still says where the next page starts."""
    gig = api.gig()
    api.paid_order(gig)
    api.paid_order(gig, transaction="tx-2")
    everything = mine(api, CL)["data"]
    first = mine(api, CL, unread="true", limit=2)
    assert first["data"] == everything[:2] and first["hasMore"] is True
    for item in first["data"]:
        assert read(api, CL, item["id"]).status_code == 200
    rest = mine(api, CL, unread="true", limit=2, startingAfter=first["data"][-1]["id"])
    assert rest == {"data": everything[2:], "hasMore": False}
    someone_elses = mine(api, "freelancer-1")["data"][0]["id"]
    stranger = api.client.get(
        LIST, params={"unread": "true", "startingAfter": someone_elses}, headers=api.as_(CL)
    )
    assert (stranger.status_code, stranger.json()["code"]) == (422, "invalid_cursor")
