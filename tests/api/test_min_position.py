"""``X-Ledger-Min-Position`` authenticates first and never waits for a position that the
store has not reached: a stranger cannot hold a thread for seconds."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api

FAR = str(2**62)


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
    answer = api.client.get(
        "/v1/orders", headers={**api.as_("client-1"), "X-Ledger-Min-Position": FAR}
    )
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, "1")
    assert all(timeout == 0 for timeout in waits)
