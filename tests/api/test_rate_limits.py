"""Rate limits (docs/api.md "Rate limits"): commands per caller, failed authentication per
client address, answered 429 ``rate_limited`` with ``Retry-After``.

Deterministic without sleeping: the limits are tiny (3 a minute, a moving window), so the
fourth request inside the minute is the one refused. SQLite only: the counts live in the
process (``memory://``), not in the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from api.http.app import create_app
from api.http.auth import Authenticator
from api.http.rate_limits import RateLimits
from ledger.settings import SettingsError, load_settings
from tests.api.conftest import BASIC, Api
from tests.conftest import FakeClock

GIG = {"title": "Logo design", "packages": [BASIC]}
BAD_TOKEN = {"Authorization": "Bearer not-a-token"}


class ClientAddress:
    """Sets the ASGI client address from ``X-Test-Address`` (``TestClient`` has one)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"x-test-address":
                    scope = {**scope, "client": (value.decode(), 1234)}
        await self.app(scope, receive, send)


def limited_api(tmp_path: Path, clock: FakeClock, **limits: str) -> Iterator[Api]:
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.db'}",
        LEDGER_VAR_DIR=str(tmp_path / "var"),
        _env_file=None,
        **limits,
    )
    app = create_app(settings, clock=clock)
    with TestClient(ClientAddress(app)) as client:
        yield Api(client, app)


@pytest.fixture
def api(tmp_path: Path, clock: FakeClock) -> Iterator[Api]:
    yield from limited_api(
        tmp_path,
        clock,
        LEDGER_RATE_LIMIT_COMMANDS="3/minute",
        LEDGER_RATE_LIMIT_FAILED_AUTH="3/minute",
    )


def head(api: Api) -> int:
    return int(api.app.state.ledger.recorder.max_notification_id() or 0)


def rate_limited(answer: httpx.Response, detail: str) -> None:
    """429 problem+json ``rate_limited``, ``Retry-After`` the seconds left in the window."""
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert (body["status"], body["code"], body["title"]) == (
        429,
        "rate_limited",
        "Too Many Requests",
    )
    assert detail in body["detail"], body
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    assert answer.headers["X-Request-Id"]


def test_the_fourth_command_in_a_minute_is_429_and_runs_nothing(api: Api) -> None:
    for _ in range(3):
        assert api.client.post("/v1/gigs", json=GIG, headers=api.as_("ana")).status_code == 201
    before = head(api)
    answer = api.client.post("/v1/gigs", json=GIG, headers=api.as_("ana", "user"))
    rate_limited(answer, "too many commands: at most 3 per 1 minute per caller")
    assert "3 per 1 minute" in answer.json()["detail"]
    # judged before the body: an oversized one is 429 too, not 413, and is never read
    big = api.client.post("/v1/gigs", content=b"x" * 100_000, headers=api.as_("ana"))
    rate_limited(big, "too many commands")
    keyed = api.client.post(
        "/v1/gigs", json=GIG, headers=api.headers("ana", **{"Idempotency-Key": "k-1"})
    )
    rate_limited(keyed, "too many commands")
    assert head(api) == before  # nothing stored
    assert api.app.state.idempotency.claim("ana", "k-1", "digest").won  # the key was not kept
    # reads are not commands; another caller has a count of its own
    assert api.client.get("/v1/gigs", headers=api.as_("ana")).status_code == 200
    assert api.client.post("/v1/gigs", json=GIG, headers=api.as_("omar")).status_code == 201


def test_refused_commands_count_too(api: Api) -> None:
    """Every command attempt counts, whatever its answer (here 422)."""
    for _ in range(3):
        answer = api.client.post("/v1/gigs", json={}, headers=api.as_("ana"))
        assert answer.status_code == 422, answer.text
    rate_limited(api.client.post("/v1/gigs", json=GIG, headers=api.as_("ana")), "commands")


def test_past_the_failed_auth_limit_only_unauthenticated_requests_are_refused(api: Api) -> None:
    """Three 401s from an address; then every request from it without a valid token is 429
    before any check, while a valid token from the same address and other addresses go on."""
    here = {"X-Test-Address": "203.0.113.7"}
    for headers in (BAD_TOKEN, {}, {"Authorization": "Basic abc"}):
        answer = api.client.get("/v1/orders", headers={**headers, **here})
        assert answer.status_code == 401, answer.text
    for headers in (BAD_TOKEN, {}):
        rate_limited(
            api.client.get("/v1/orders", headers={**headers, **here}),
            "too many failed authentications from this address: at most 3 per 1 minute",
        )
    rate_limited(api.client.post("/v1/gigs", json=GIG, headers=here), "failed authentications")
    good = api.client.get("/v1/orders", headers={**api.as_("ana"), **here})
    assert good.status_code == 200, good.text
    elsewhere = api.client.get(
        "/v1/orders", headers={**BAD_TOKEN, "X-Test-Address": "198.51.100.1"}
    )
    assert elsewhere.status_code == 401, elsewhere.text


def test_answers_other_than_401_do_not_count_as_failed_auth(api: Api) -> None:
    for _ in range(5):  # an unknown route without a token is 404: not a refused token
        assert api.client.get("/v1/nothing-here").status_code == 404
    assert api.client.get("/v1/orders", headers=BAD_TOKEN).status_code == 401


def test_probes_and_the_webhook_are_never_limited(api: Api) -> None:
    for _ in range(5):
        assert api.client.get("/healthz", headers=BAD_TOKEN).status_code == 200
        assert api.client.get("/metrics", headers=BAD_TOKEN).status_code == 200
        webhook = api.client.post(
            "/v1/webhooks/youcanpay",
            json={"event_name": "transaction.paid"},
            headers={"X-Youcanpay-Signature": "00"},
        )
        assert webhook.status_code == 401, webhook.text
        assert webhook.json()["code"] == "invalid_signature"
    # the webhook's 401s were not counted against the address either
    assert api.client.get("/v1/orders", headers=BAD_TOKEN).status_code == 401


def test_off_turns_a_limit_off(tmp_path: Path, clock: FakeClock) -> None:
    for api in limited_api(
        tmp_path, clock, LEDGER_RATE_LIMIT_COMMANDS="off", LEDGER_RATE_LIMIT_FAILED_AUTH="0"
    ):
        for _ in range(5):
            assert api.client.post("/v1/gigs", json={}, headers=api.as_("ana")).status_code == 422
            assert api.client.get("/v1/orders", headers=BAD_TOKEN).status_code == 401


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEDGER_RATE_LIMIT_COMMANDS", "lots"),
        ("LEDGER_RATE_LIMIT_COMMANDS", "0/minute"),
        ("LEDGER_RATE_LIMIT_FAILED_AUTH", "20/fortnight"),
        ("LEDGER_RATE_LIMIT_STORAGE", "postgresql://db/ledger"),
        ("LEDGER_RATE_LIMIT_STORAGE", "memory"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**{variable: value}, _env_file=None)
    assert variable in str(caught.value)


def test_the_defaults_and_good_values(monkeypatch: Any) -> None:
    settings = load_settings(_env_file=None)
    assert (
        settings.rate_limit_commands,
        settings.rate_limit_failed_auth,
        settings.rate_limit_storage,
    ) == (None, None, "memory://")
    assert (settings.commands_rate, settings.failed_auth_rate) == ("off", "off")  # development
    production = load_settings(
        LEDGER_ENV="production",
        LEDGER_AUTH_SECRET="k" * 40,
        LEDGER_GATEWAY="youcanpay",
        YOUCANPAY_SANDBOX="false",
        YOUCANPAY_PRIVATE_KEY="pri_" + "a" * 20,
        YOUCANPAY_PUBLIC_KEY="pub_" + "a" * 20,
        _env_file=None,
    )
    assert (production.commands_rate, production.failed_auth_rate) == (
        "120/minute",
        "300/minute;1000/hour",
    )
    several = load_settings(LEDGER_RATE_LIMIT_COMMANDS="10/second;1000/hour", _env_file=None)
    assert several.rate_limit_commands == "10/second;1000/hour"
    assert load_settings(LEDGER_RATE_LIMIT_COMMANDS="OFF", _env_file=None).rate_limit_commands == (
        "off"
    )


def test_a_guessed_token_counts_before_it_is_answered(tmp_path: Path) -> None:
    """A bad token is a failure already when it arrives: it is counted before the request
    runs, so guesses sent together cannot all pass the limit before the first is counted."""
    settings = load_settings(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp_path / 'l.db'}",
        LEDGER_VAR_DIR=str(tmp_path),
        LEDGER_RATE_LIMIT_FAILED_AUTH="1/minute",
        _env_file=None,
    )
    seen: list[bool] = []

    async def downstream(scope: Scope, receive: Receive, send: Send) -> None:
        item = limits.failed_auth[0]  # while the first guess is still running:
        seen.append(limits.limiter.test(item, "failed-auth", "127.0.0.1"))
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limits = RateLimits(downstream, settings)
    app = FastAPI()
    app.state.auth = Authenticator(b"x" * 32)
    scope_app: ASGIApp = limits

    async def run() -> None:
        scope = {"type": "http", "method": "GET", "path": "/v1/orders", "app": app,
                 "headers": [(b"authorization", b"Bearer guess")], "client": ("127.0.0.1", 1),
                 "query_string": b"", "state": {}}  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            return None

        await scope_app(scope, receive, send)

    anyio.run(run)
    assert seen == [False], "the guess was counted before it ran: no room left for another"
