"""The console's sign-in through the identity provider (OpenID Connect's code flow with PKCE,
``state`` and ``nonce``), against the real loopback provider, on both backends: the way
there, the provider's form, the way back to a session; and every return that is not this
browser's own, or not a staff member's, signs nobody in. The browser version is in
``tests/e2e/test_console_browser.py``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from api.console.oidc import LOGIN_COOKIE
from api.console.routing import COOKIE
from api.http.app import create_app
from tests.api.test_identity_provider import provider_settings
from tests.conftest import FakeClock
from tests.identity_provider import CLIENT_ID, CLIENT_SECRET, Provider, running

CALLBACK = "http://testserver/console/callback"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running() as served:
        served.users.update({"ana": ["ledger-support"], "iris": ["ledger-auditor", "ledger-admin"],
                             "bob": ["offline_access"]})  # fmt: skip
        served.redirect_uris.add(CALLBACK)
        yield served


@pytest.fixture(autouse=True)
def as_configured(provider: Provider) -> Iterator[None]:
    """Each test starts with the provider as the fixture made it."""
    yield
    provider.id_claims.clear()
    provider.public_client = False


@pytest.fixture
def console(
    provider: Provider, database_url: str, tmp_path: Path, clock: FakeClock
) -> Iterator[TestClient]:
    settings = provider_settings(
        database_url,
        tmp_path / "var",
        LEDGER_AUTH_ISSUER=provider.url,
        LEDGER_CONSOLE_CLIENT_ID=CLIENT_ID,
        LEDGER_CONSOLE_CLIENT_SECRET=CLIENT_SECRET,
        LEDGER_PUBLIC_URL="http://testserver",
    )
    with TestClient(create_app(settings, clock=clock), follow_redirects=False) as client:
        yield client


def to_provider(console: TestClient) -> str:
    """Begin the sign-in: the provider's authorization URL the console sends the browser to."""
    began = console.get("/console/sign-in/provider")
    assert began.status_code == 303, began.text
    assert LOGIN_COOKIE in began.cookies
    return began.headers["location"]


def authorize(provider: Provider, url: str, username: str) -> str:
    """At the provider: its form shown, then signed in as ``username``; the callback path
    (with its query) the provider sends the browser back to."""
    query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
    form = httpx.get(url)
    assert form.status_code == 200 and "Sign in to the test provider" in form.text, form.text
    back = httpx.post(f"{provider.url}/authorize", data={**query, "username": username})
    assert back.status_code == 303, back.text
    location = back.headers["location"]
    assert location.startswith(CALLBACK)
    return location.removeprefix("http://testserver")


def test_support_signs_in_through_the_provider(provider: Provider, console: TestClient) -> None:
    page = console.get("/console/sign-in")
    assert 'href="/console/sign-in/provider"' in page.text
    assert "ledger console-link" not in page.text  # no local key: no sign-in links
    url = to_provider(console)
    query = parse_qs(urlsplit(url).query)
    assert url.startswith(f"{provider.url}/authorize?")
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [CALLBACK] and query["audience"] == ["gig-ledger-api"]
    assert all(query[name][0] for name in ("state", "nonce", "code_challenge"))
    signed_in = console.get(authorize(provider, url, "ana"))
    assert signed_in.status_code == 200, signed_in.text
    assert "Signed in as ana (support)" in signed_in.text
    assert COOKIE in signed_in.cookies
    home = console.get("/console")
    assert home.status_code == 200 and "ana · support" in home.text


def test_the_strongest_staff_role_is_the_sessions(provider: Provider, console: TestClient) -> None:
    signed_in = console.get(authorize(provider, to_provider(console), "iris"))
    assert "Signed in as iris (admin)" in signed_in.text


def test_someone_without_a_staff_role_gets_no_session(
    provider: Provider, console: TestClient
) -> None:
    answer = console.get(authorize(provider, to_provider(console), "bob"))
    assert answer.status_code == 403
    assert "holds no staff role" in answer.text
    assert COOKIE not in answer.cookies
    assert console.get("/console").status_code == 303  # still sent to sign in


def test_a_return_with_another_state_signs_nobody_in(
    provider: Provider, console: TestClient
) -> None:
    back = authorize(provider, to_provider(console), "ana")
    cookie = console.cookies[LOGIN_COOKIE]
    forged = back.replace("state=", "state=x")
    answer = console.get(forged)
    assert answer.status_code == 403 and "not this sign-in" in answer.text
    console.cookies.set(LOGIN_COOKIE, cookie, path="/console/callback")  # the same browser
    again = console.get(back)  # the sign-in was used up by the forged attempt
    assert again.status_code == 403 and "over or was never started" in again.text


def test_a_return_in_another_browser_signs_nobody_in(
    provider: Provider, console: TestClient
) -> None:
    back = authorize(provider, to_provider(console), "ana")
    console.cookies.delete(LOGIN_COOKIE, path="/console/callback")
    answer = console.get(back)
    assert answer.status_code == 403 and "not started in this browser" in answer.text


def test_a_return_used_twice_signs_in_once(provider: Provider, console: TestClient) -> None:
    back = authorize(provider, to_provider(console), "ana")
    cookie = console.cookies[LOGIN_COOKIE]
    assert console.get(back).status_code == 200
    console.cookies.set(LOGIN_COOKIE, cookie, path="/console/callback")  # replayed whole
    again = console.get(back)
    assert again.status_code == 403 and "over or was never started" in again.text


def test_a_sign_in_older_than_ten_minutes_is_refused(
    provider: Provider, console: TestClient, clock: FakeClock
) -> None:
    back = authorize(provider, to_provider(console), "ana")
    clock.advance(minutes=10, seconds=1)
    answer = console.get(back)
    assert answer.status_code == 403 and "took too long" in answer.text


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"nonce": "another-sign-in"}, "its nonce differs"),
        ({"nonce": None}, "its nonce differs"),
        ({"aud": "another-client"}, "not valid for this console"),
        ({"aud": [CLIENT_ID, "another-client"], "azp": None}, "issued to another client"),
        ({"azp": "another-client"}, "issued to another client"),
        ({"iss": "https://elsewhere.example"}, "not valid for this console"),
        ({"exp": 1_000_000_000}, "not valid for this console"),
        ({"sub": "someone-else"}, "name different people"),
    ],
)
def test_an_id_token_that_is_not_this_sign_ins_signs_nobody_in(
    provider: Provider, console: TestClient, claims: dict[str, object], reason: str
) -> None:
    back = authorize(provider, to_provider(console), "ana")
    provider.id_claims.update(claims)
    answer = console.get(back)
    assert answer.status_code == 401, answer.text
    assert reason in answer.text
    assert COOKIE not in answer.cookies


def test_a_public_client_signs_in_with_pkce_alone(
    provider: Provider, database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    settings = provider_settings(
        database_url,
        tmp_path / "var",
        LEDGER_AUTH_ISSUER=provider.url,
        LEDGER_CONSOLE_CLIENT_ID=CLIENT_ID,
        LEDGER_PUBLIC_URL="http://testserver",
    )
    provider.public_client = True
    with TestClient(create_app(settings, clock=clock), follow_redirects=False) as client:
        signed_in = client.get(authorize(provider, to_provider(client), "ana"))
    assert signed_in.status_code == 200 and "Signed in as ana (support)" in signed_in.text


def test_a_code_exchanged_without_its_verifier_is_refused(
    provider: Provider, console: TestClient
) -> None:
    first = authorize(provider, to_provider(console), "ana")
    second = authorize(provider, to_provider(console), "ana")  # this browser's sign-in now
    first_code = parse_qs(urlsplit(first).query)["code"][0]
    second_state = parse_qs(urlsplit(second).query)["state"][0]
    # The first code, with the second sign-in's state and so its PKCE verifier:
    answer = console.get(f"/console/callback?code={first_code}&state={second_state}")
    assert answer.status_code == 401 and "refused the sign-in (invalid_grant)" in answer.text
    assert COOKIE not in answer.cookies


def test_the_providers_own_refusal_is_shown(provider: Provider, console: TestClient) -> None:
    url = to_provider(console)
    state = parse_qs(urlsplit(url).query)["state"][0]
    answer = console.get(f"/console/callback?error=access_denied&state={state}")
    assert answer.status_code == 401 and "access_denied" in answer.text


def test_one_time_links_are_not_taken_without_a_local_key(console: TestClient) -> None:
    answer = console.get("/console/login?ticket=anything")
    assert answer.status_code == 403 and "sign in with the provider" in answer.text


def test_without_a_console_client_there_is_no_provider_sign_in(
    provider: Provider, database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    settings = provider_settings(
        database_url, tmp_path / "var", LEDGER_AUTH_ISSUER=provider.url, LEDGER_AUTH_SECRET="s" * 48
    )
    with TestClient(create_app(settings, clock=clock), follow_redirects=False) as client:
        assert "sign-in/provider" not in client.get("/console/sign-in").text
        assert "ledger console-link" in client.get("/console/sign-in").text
        assert client.get("/console/sign-in/provider").status_code == 404
