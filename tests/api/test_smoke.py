"""A whole order life through the HTTP API: the contract's happy path, end to end in-process."""

from __future__ import annotations

from tests.api.conftest import Api


def test_order_life_from_gig_to_review(api: Api) -> None:
    gig = api.gig()
    order = api.paid_order(gig)
    assert (order["status"], order["stage"]) == ("processing", "awaiting_acceptance")
    steps = [
        ("freelancer-1", "accept", None, "in_progress"),
        ("client-1", "requirements", {"text": "Blue"}, "in_progress"),
        ("freelancer-1", "deliver", {"message": "Here"}, "delivered"),
        ("client-1", "request-revision", {"reason": "Bigger"}, "revision_requested"),
        ("freelancer-1", "deliver", {"message": "Bigger"}, "delivered"),
        ("client-1", "complete", None, "closed"),
        ("client-1", "review", {"rating": 5, "comment": "Great"}, "closed"),
    ]
    for who, command, body, stage in steps:
        response = api.client.post(
            f"/v1/orders/{order['id']}/{command}", json=body, headers=api.as_(who)
        )
        assert response.status_code == 200, response.text
        assert response.json()["stage"] == stage
        assert response.headers["ETag"] == f'"{response.json()["version"]}"'
    last = api.read(f"/v1/orders/{order['id']}", "client-1", position=int(
        response.headers["X-Ledger-Position"]))  # fmt: skip
    assert (last["status"], last["version"]) == ("completed", 9)
    rated = api.read(f"/v1/gigs/{gig['id']}", "someone", position=int(
        response.headers["X-Ledger-Position"]))  # fmt: skip
    assert rated["rating"] == {"average": 5.0, "count": 1}
