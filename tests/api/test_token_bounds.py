"""Bounded tokens and visible text (issue 18): a token's lifetime is capped and its times are
numbers, its ``typ`` is a JWT's, its subject and a gig's title hold no control or invisible
character — each refusal a problem+json that changes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from api.http.auth import DEFAULT_MAX_TTL, Authenticator, signing_key
from api.http.problems import ApiError
from ledger.settings import Settings
from tests.api.conftest import BASIC, Api

ORDERS = "/v1/orders"


def token(key: str, headers: dict[str, Any] | None = None, **claims: Any) -> str:
    """A token of ``client-1`` valid one hour from now, with ``claims`` changed (``None``
    leaves a claim out)."""
    now = datetime.now(UTC)
    defaults = {"sub": "client-1", "roles": ["user"], "iat": now, "exp": now + timedelta(hours=1)}
    merged = {name: value for name, value in {**defaults, **claims}.items() if value is not None}
    return jwt.encode(merged, key, algorithm="HS256", headers=headers)


def get_as(api: Api, bearer: str) -> Any:
    return api.client.get(ORDERS, headers={"Authorization": f"Bearer {bearer}"})


def is_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")


NOW = datetime.now(UTC).timestamp()


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": 10**30, "roles": ["admin"]}, id="exp_10e30_admin"),
        pytest.param({"exp": 10**400}, id="exp_of_400_digits"),
        pytest.param({"exp": 1e300}, id="exp_float_1e300"),
        pytest.param({"exp": str(int(NOW) + 3600)}, id="exp_as_a_string"),
        pytest.param({"exp": True}, id="exp_true"),
        pytest.param({"exp": [int(NOW) + 3600]}, id="exp_a_list"),
        pytest.param({"iat": str(int(NOW))}, id="iat_as_a_string"),
        pytest.param({"nbf": str(int(NOW) - 10)}, id="nbf_as_a_string"),
        pytest.param({"nbf": -(10**30)}, id="nbf_far_past"),
        pytest.param({"exp": NOW + 25 * 3600, "iat": NOW}, id="25_hours_after_iat"),
        pytest.param({"exp": NOW + 3600, "iat": NOW - 24 * 3600}, id="iat_a_day_ago_exp_in_1h"),
        pytest.param({"exp": NOW + 25 * 3600, "iat": None}, id="no_iat_25_hours_from_now"),
        pytest.param({"iat": -(10**30)}, id="iat_far_past"),
    ],
)
def test_unbounded_or_non_numeric_times_are_401(
    api: Api, settings: Settings, claims: dict[str, Any]
) -> None:
    is_401(get_as(api, token(signing_key(settings), **claims)))


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({}, id="control"),
        pytest.param({"exp": NOW + 24 * 3600, "iat": NOW}, id="exactly_24_hours"),
        pytest.param({"exp": NOW + 23 * 3600, "iat": None}, id="no_iat_23_hours"),
        pytest.param({"exp": NOW + 3600.5, "nbf": NOW - 1.5}, id="fractional_times"),
    ],
)
def test_bounded_numeric_times_are_accepted(
    api: Api, settings: Settings, claims: dict[str, Any]
) -> None:
    answer = get_as(api, token(signing_key(settings), **claims))
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("typ", "status"),
    [
        ("JWT", 200),
        ("jwt", 200),
        ("at+jwt", 200),
        (None, 200),  # no typ at all
        ("JWE", 401),
        ("refresh", 401),
        (7, 401),
    ],
)
def test_the_header_typ_must_be_a_jwts(api: Api, settings: Settings, typ: Any, status: int) -> None:
    key = signing_key(settings)
    if typ is None:
        bearer = token(key, headers={"typ": None})
        assert "typ" not in jwt.get_unverified_header(bearer)
    else:
        bearer = token(key, headers={"typ": typ})
        assert jwt.get_unverified_header(bearer)["typ"] == typ
    answer = get_as(api, bearer)
    assert answer.status_code == status, answer.text
    if status == 401:
        is_401(answer)


@pytest.mark.parametrize(
    "subject",
    [
        "demo-client\u200b",  # a second identity that looks like demo-client
        "\u202edemo-client",
        "demo\ufeff-client",
        "demo-client\x1b[31m",
        "demo-client\r\n",
        "demo\tclient",
        "demo\u2028client",
        "demo\x00client",
    ],
)
def test_a_subject_with_a_control_or_invisible_character_is_401(
    api: Api, settings: Settings, subject: str
) -> None:
    is_401(get_as(api, token(signing_key(settings), sub=subject)))
    with pytest.raises(ValueError, match="control or invisible"):
        api.app.state.auth.issue(subject)


def test_the_authenticator_will_not_mint_beyond_its_cap() -> None:
    auth = Authenticator("k" * 48, max_ttl=timedelta(hours=2))
    auth.issue("ana", ttl=timedelta(hours=2))
    with pytest.raises(ValueError, match="2 hours at most"):
        auth.issue("ana", ttl=timedelta(hours=2, seconds=1))
    assert Authenticator("k" * 48).max_ttl == DEFAULT_MAX_TTL == timedelta(hours=24)


def test_the_cap_is_the_setting(settings: Settings) -> None:
    short = settings.model_copy(update={"auth_max_token_hours": 1})
    auth = Authenticator.for_settings(short)
    assert auth.max_ttl == timedelta(hours=1)
    key = signing_key(settings)
    with pytest.raises(ApiError, match="longer than 1 hours") as refused:
        asyncio.run(auth.caller(f"Bearer {token(key, exp=NOW + 2 * 3600, iat=NOW)}"))
    assert refused.value.status == 401
    assert asyncio.run(auth.caller(f"Bearer {token(key)}")).id == "client-1"


def test_without_iat_the_lifetime_counts_from_the_clock(settings: Settings) -> None:
    key = signing_key(settings)
    now = datetime.now(UTC)
    bearer = f"Bearer {token(key, iat=None, exp=now + timedelta(hours=20))}"
    later = Authenticator(key, clock=lambda: now - timedelta(hours=5))  # 25 h before exp
    with pytest.raises(ApiError) as refused:
        asyncio.run(later.caller(bearer))
    assert refused.value.status == 401
    assert asyncio.run(Authenticator(key, clock=lambda: now).caller(bearer)).id == "client-1"


# -- tokens kept once verified -------------------------------------------------------------------


def test_a_kept_token_is_refused_once_it_expires(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token checked whole is kept (``Authenticator._verified``); its ``exp`` is still
    judged against the time at every request."""
    key = signing_key(settings)
    auth = Authenticator(key)
    exp = int(NOW + 600)
    bearer = f"Bearer {token(key, exp=exp)}"
    assert asyncio.run(auth.caller(bearer, "r-1")).id == "client-1"
    kept = asyncio.run(auth.caller(bearer, "r-2"))
    assert (kept.id, kept.roles, kept.request_id) == ("client-1", frozenset({"user"}), "r-2")
    monkeypatch.setattr("api.http.auth.time.time", lambda: exp)
    with pytest.raises(ApiError, match="expired") as refused:
        asyncio.run(auth.caller(bearer))
    assert refused.value.status == 401


def test_a_kept_token_is_refused_before_its_nbf(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = signing_key(settings)
    auth = Authenticator(key)
    bearer = f"Bearer {token(key, nbf=int(NOW) - 5)}"
    assert asyncio.run(auth.caller(bearer)).id == "client-1"
    monkeypatch.setattr("api.http.auth.time.time", lambda: NOW - 10)
    with pytest.raises(ApiError) as refused:
        asyncio.run(auth.caller(bearer))
    assert refused.value.status == 401


def test_a_token_refused_is_not_kept(settings: Settings) -> None:
    """Tampered with, it is refused every time, and a good token's subject never leaks to it."""
    key = signing_key(settings)
    auth = Authenticator(key)
    good = token(key)
    head, payload, signature = good.split(".")
    forged = f"{head}.{payload}.{signature[:-2]}AA"
    for _ in range(2):
        with pytest.raises(ApiError):
            asyncio.run(auth.caller(f"Bearer {forged}"))
    assert asyncio.run(auth.caller(f"Bearer {good}")).id == "client-1"


# -- single-line text ---------------------------------------------------------------------------


TITLES = {
    "zero width space": "Logo\u200bdesign",
    "ANSI escape": "Logo \x1b[31mdesign",
    "CRLF": "Logo design\r\nX-Injected: yes",
    "LF": "Logo\ndesign",
    "CR": "Logo\rdesign",
    "tab": "Logo\tdesign",
    "bidi override": "\u202engised ogoL",
    "line separator": "Logo\u2028design",
}


def head(api: Api) -> int:
    return int(api.app.state.ledger.recorder.max_notification_id() or 0)


def assert_422(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "validation_failed"
    assert [e["field"] for e in body["errors"]] == [field], body


@pytest.mark.parametrize("title", list(TITLES.values()), ids=list(TITLES))
def test_a_title_with_a_control_or_invisible_character_is_422(api: Api, title: str) -> None:
    gig = api.gig()
    before = head(api)
    created = api.client.post(
        "/v1/gigs", json={"title": title, "packages": [BASIC]}, headers=api.as_("freelancer-1")
    )
    assert_422(created, "title")
    edited = api.client.patch(
        f"/v1/gigs/{gig['id']}", json={"title": title}, headers=api.as_("freelancer-1")
    )
    assert_422(edited, "title")
    assert head(api) == before


def test_multi_line_text_keeps_newlines_and_tabs_but_not_invisible_characters(api: Api) -> None:
    gig = api.gig()
    ok = {"gigId": gig["id"], "packageId": "basic", "requirements": "Colours:\r\n\t- blue\n"}
    created = api.client.post(ORDERS, json=ok, headers=api.as_("client-1"))
    assert created.status_code == 201, created.text
    before = head(api)
    for hidden in ("\u200b", "\x1b[31m", "\u202e"):
        bad = {**ok, "requirements": f"Colours{hidden}: blue"}
        assert_422(api.client.post(ORDERS, json=bad, headers=api.as_("client-1")), "requirements")
    assert head(api) == before
