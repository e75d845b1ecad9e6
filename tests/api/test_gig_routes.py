"""``PATCH /v1/gigs/{id}`` and ``POST /v1/gigs/{id}/archive`` (docs/api.md "Gigs"), on SQLite
and PostgreSQL: the owner edits the title and packages, orders already placed keep the copy
they took, an archived gig takes no new orders while its orders go on, and who may do what."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.api.conftest import BASIC, Api
from tests.api_shapes import GIG_KEYS
from tests.conftest import FakeClock

FREELANCER, CLIENT = "freelancer-1", "client-1"
STANDARD = {**BASIC, "packageId": "standard", "price": 250.0, "description": "Two logos"}


def patch(api: Api, gig: dict[str, Any], body: Any, *who: str) -> httpx.Response:
    sub, *roles = who or (FREELANCER,)
    return api.client.patch(f"/v1/gigs/{gig['id']}", json=body, headers=api.as_(sub, *roles))


def archive(api: Api, gig: dict[str, Any], *who: str) -> httpx.Response:
    sub, *roles = who or (FREELANCER,)
    return api.client.post(f"/v1/gigs/{gig['id']}/archive", headers=api.as_(sub, *roles))


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code


def test_the_owner_edits_the_title_and_the_packages(api: Api, clock: FakeClock) -> None:
    gig = api.gig()
    clock.advance(minutes=5)
    renamed = patch(api, gig, {"title": "Logo and card"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json().keys() == GIG_KEYS
    assert renamed.json()["title"] == "Logo and card"
    assert renamed.json()["packages"] == [BASIC]
    assert renamed.json()["updatedAt"] > gig["updatedAt"] == renamed.json()["createdAt"]
    repriced = patch(api, gig, {"packages": [{**BASIC, "price": 120.0}, STANDARD]})
    assert repriced.status_code == 200, repriced.text
    both = patch(api, gig, {"title": "Brand kit", "packages": [STANDARD]})
    assert both.status_code == 200, both.text
    read = api.read(
        f"/v1/gigs/{gig['id']}", CLIENT, position=int(both.headers["X-Ledger-Position"])
    )
    assert read == both.json()
    assert (read["title"], read["packages"], read["archived"]) == ("Brand kit", [STANDARD], False)


def test_placed_orders_keep_the_package_they_copied(api: Api) -> None:
    gig = api.gig()
    order = api.order(gig)
    done = patch(api, gig, {"packages": [{**BASIC, "price": 999.0, "description": "Dearer"}]})
    assert done.status_code == 200, done.text
    position = int(done.headers["X-Ledger-Position"])
    kept = api.read(f"/v1/orders/{order['id']}", CLIENT, position=position)
    assert (kept["totalAmount"], kept["package"]) == (BASIC["price"], BASIC)
    newer = api.order(gig)
    assert newer["totalAmount"] == 999.0


def test_an_edit_that_changes_nothing_records_nothing(api: Api) -> None:
    gig = api.gig()
    head = api.app.state.ledger.recorder.max_notification_id()
    same = patch(api, gig, {"title": gig["title"], "packages": [BASIC]})
    assert same.status_code == 200, same.text
    assert api.app.state.ledger.recorder.max_notification_id() == head
    assert int(same.headers["X-Ledger-Position"]) == head


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, None),
        ({"title": ""}, "title"),
        ({"title": None, "packages": None}, None),
        ({"packages": []}, "packages"),
        ({"packages": [BASIC, BASIC]}, "packages"),
        ({"packages": [{**BASIC, "price": 0}]}, "price"),
        ({"title": "x", "rating": 5}, "rating"),
        ([], None),
    ],
)
def test_a_bad_edit_is_422_and_changes_nothing(api: Api, body: Any, field: str | None) -> None:
    gig = api.gig()
    head = api.app.state.ledger.recorder.max_notification_id()
    answer = patch(api, gig, body)
    problem(answer, 422, "validation_failed")
    if field is not None:
        assert any(field in error["field"] for error in answer.json()["errors"]), answer.text
    assert api.app.state.ledger.recorder.max_notification_id() == head


@pytest.mark.parametrize("who", [(CLIENT,), ("support-1", "support"), ("admin-1", "admin"),
                                 ("auditor-1", "auditor")])  # fmt: skip
def test_only_the_owner_edits(api: Api, who: tuple[str, ...]) -> None:
    gig = api.gig()
    problem(patch(api, gig, {"title": "Mine now"}, *who), 403, "forbidden")
    head = api.app.state.ledger.recorder.max_notification_id()
    assert api.read(f"/v1/gigs/{gig['id']}", CLIENT, position=head)["title"] == gig["title"]


def test_unknown_gigs_are_404_and_no_token_is_401(api: Api) -> None:
    unknown = {"id": str(uuid4())}
    problem(patch(api, unknown, {"title": "x"}), 404, "not_found")
    problem(archive(api, unknown), 404, "not_found")
    problem(patch(api, {"id": "not-a-uuid"}, {"title": "x"}), 404, "not_found")
    gig = api.gig()
    problem(api.client.patch(f"/v1/gigs/{gig['id']}", json={"title": "x"}), 401, "unauthenticated")
    problem(api.client.post(f"/v1/gigs/{gig['id']}/archive"), 401, "unauthenticated")


def test_an_archived_gig_takes_no_orders_and_no_edits_but_its_orders_go_on(api: Api) -> None:
    gig = api.gig()
    running = api.paid_order(gig)
    archived = archive(api, gig)
    assert archived.status_code == 200, archived.text
    assert archived.json()["archived"] is True
    problem(
        api.client.post(
            "/v1/orders",
            json={"gigId": gig["id"], "packageId": "basic"},
            headers=api.as_(CLIENT),
        ),
        409,
        "gig_archived",
    )
    problem(patch(api, gig, {"title": "Back again"}), 409, "gig_archived")
    for command, body in (("accept", None), ("deliver", {"message": "Here"})):
        answer = api.client.post(
            f"/v1/orders/{running['id']}/{command}", json=body, headers=api.as_(FREELANCER)
        )
        assert answer.status_code == 200, answer.text
    position = int(archived.headers["X-Ledger-Position"])
    assert api.read(f"/v1/gigs/{gig['id']}", CLIENT, position=position)["archived"] is True


def test_archiving_again_records_nothing(api: Api) -> None:
    gig = api.gig()
    first = archive(api, gig)
    head = api.app.state.ledger.recorder.max_notification_id()
    again = archive(api, gig)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert api.app.state.ledger.recorder.max_notification_id() == head


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ((FREELANCER,), 200),
        (("support-1", "support"), 200),
        (("admin-1", "admin"), 200),
        ((CLIENT,), 403),
        (("auditor-1", "auditor"), 403),
    ],
)
def test_the_owner_support_and_admins_archive(api: Api, who: tuple[str, ...], status: int) -> None:
    gig = api.gig()
    answer = archive(api, gig, *who)
    assert answer.status_code == status, answer.text


def test_the_catalogue_can_leave_archived_gigs_out(api: Api) -> None:
    kept, gone = api.gig(), api.gig("freelancer-2")
    done = archive(api, gone, "freelancer-2")
    position = int(done.headers["X-Ledger-Position"])
    open_ = api.read("/v1/gigs?archived=false", CLIENT, position=position)["data"]
    closed = api.read("/v1/gigs?archived=true", CLIENT, position=position)["data"]
    every = api.read("/v1/gigs", CLIENT, position=position)["data"]
    assert [g["id"] for g in open_] == [kept["id"]]
    assert [g["id"] for g in closed] == [gone["id"]]
    assert {g["id"] for g in every} == {kept["id"], gone["id"]}


def test_the_answer_carries_the_rating_of_the_reviews(api: Api) -> None:
    gig = api.gig()
    order = api.paid_order(gig)
    for who, command, body in (
        (FREELANCER, "accept", None),
        (FREELANCER, "deliver", {"message": "Here"}),
        (CLIENT, "complete", None),
        (CLIENT, "review", {"rating": 4, "comment": "Good"}),
    ):
        answer = api.client.post(
            f"/v1/orders/{order['id']}/{command}", json=body, headers=api.as_(who)
        )
        assert answer.status_code == 200, answer.text
    api.read(f"/v1/gigs/{gig['id']}", CLIENT, position=int(answer.headers["X-Ledger-Position"]))
    renamed = patch(api, gig, {"title": "Rated"})
    assert renamed.json()["rating"] == {"average": 4.0, "count": 1}
