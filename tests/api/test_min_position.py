"""``X-Ledger-Min-Position`` authenticates first and never waits for a position that the
store has not reached: a stranger cannot hold a thread for seconds, and a position beyond the
log's head (which no command answered) is 503 at once, saying so."""

from __future__ import annotations

from typing import Any

import pytest

from api.http import deps
from tests.api.conftest import BASIC, Api

FAR = str(2**62)
GIG = {"title": "Logo", "packages": [BASIC]}


@pytest.fixture
def waits(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The timeouts the runner is asked to wait with."""
    runner = api.app.state.runner
    asked: list[float] = []
    real = runner.wait_for

    def spy(position: int, timeout: float, *names: Any) -> bool:
        asked.append(timeout)
        return bool(real(position, timeout, *names))

    monkeypatch.setattr(runner, "wait_for", spy)
    return asked


def test_a_stranger_is_refused_before_any_wait(api: Api, waits: list[float]) -> None:
    answer = api.client.get("/v1/orders", headers={"X-Ledger-Min-Position": FAR})
    assert answer.status_code == 401
    assert waits == []


def test_a_position_beyond_the_head_is_503_without_waiting(api: Api, waits: list[float]) -> None:
    """No command answered that position, so the read models cannot reach it by waiting:
    answered at once, and the detail says why and what to send instead."""
    gig = api.client.post("/v1/gigs", json=GIG, headers=api.as_("freelancer-1"))
    head = int(gig.headers["X-Ledger-Position"])
    for beyond in (str(head + 1), FAR):
        answer = api.client.get(
            "/v1/orders", headers={**api.as_("client-1"), "X-Ledger-Min-Position": beyond}
        )
        assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1")
        assert answer.json()["code"] == "not_ready"
        assert answer.json()["detail"] == (
            f"position {beyond} is beyond the last event in the store (position {head}),"
            " so it is answered at once: send back the X-Ledger-Position a command answered"
        )
    assert all(timeout == 0 for timeout in waits)


def test_the_head_itself_is_answered(api: Api, waits: list[float]) -> None:
    gig = api.client.post("/v1/gigs", json=GIG, headers=api.as_("freelancer-1"))
    after = {"X-Ledger-Min-Position": gig.headers["X-Ledger-Position"]}
    answer = api.client.get("/v1/gigs", headers={**api.as_("client-1"), **after})
    assert answer.status_code == 200, answer.text
    assert [g["id"] for g in answer.json()["data"]] == [gig.json()["id"]]


def test_read_models_behind_a_stored_position_are_waited_for_then_503(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A position the store holds but the read models have not applied: the request waits
    (5 s, shortened here) and then says so."""
    gig = api.client.post("/v1/gigs", json=GIG, headers=api.as_("freelancer-1"))
    position = gig.headers["X-Ledger-Position"]
    asked: list[float] = []

    def behind(position: int, timeout: float, *names: Any) -> bool:
        asked.append(timeout)
        return False

    monkeypatch.setattr(api.app.state.runner, "wait_for", behind)
    monkeypatch.setattr(deps, "MAX_WAIT_SECONDS", 0.25)
    answer = api.client.get(
        "/v1/gigs", headers={**api.as_("client-1"), "X-Ledger-Min-Position": position}
    )
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1")
    assert answer.json()["detail"] == (
        f"the read models have not reached position {position} within 0.25 s"
    )
    assert asked == [0, 0.25]
