"""Bearer tokens from a real OpenID provider on loopback (``tests.identity_provider``), with
no shared secret: accepted when they verify, a key rotation followed, and each way a token
can be wrong refused 401 problem+json; the provider down is 503, never a 500 and never an
accepted token. The keys' fetch schedule is driven by an injected monotonic clock."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from api.http.app import create_app
from api.http.auth import Authenticator, signing_key
from api.http.identity import KEYS_MAX_AGE, REFETCH_EVERY, IdentityProvider
from api.http.problems import ApiError
from ledger.settings import Settings, load_settings
from tests.api.conftest import BASIC
from tests.conftest import FakeClock
from tests.e2e.test_checkout_browser import free_port
from tests.identity_provider import AUDIENCE, ROLE_MAP, ROLES_CLAIM, Provider, running

PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running() as served:
        yield served


@pytest.fixture
def fresh_provider() -> Iterator[Provider]:
    """A provider of this test alone (for rotations, withdrawals and failures)."""
    with running() as served:
        yield served


def provider_settings(database_url: str, var: Path, **variables: str) -> Settings:
    return load_settings(
        LEDGER_DATABASE_URL=database_url,
        LEDGER_VAR_DIR=str(var),
        LEDGER_AUTH_AUDIENCE=AUDIENCE,
        LEDGER_AUTH_ROLES_CLAIM=ROLES_CLAIM,
        LEDGER_AUTH_ROLE_MAP=ROLE_MAP,
        _env_file=None,
        **variables,
    )


@pytest.fixture
def client_of(database_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[Any]:
    """``client_of(provider, **variables)``: a TestClient of the app taking that
    provider's tokens (by discovery from its issuer unless variables say otherwise)."""
    clients: list[TestClient] = []

    def make(provider: Provider, **variables: str) -> TestClient:
        variables.setdefault("LEDGER_AUTH_ISSUER", provider.url)
        settings = provider_settings(database_url, tmp_path / "var", **variables)
        client = TestClient(create_app(settings, clock=clock))
        clients.append(client.__enter__())
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(response: Any, status: int = 401) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    if status == 401:
        assert response.headers["www-authenticate"] == 'Bearer realm="gig-ledger"'
    return body


def test_the_providers_tokens_are_the_callers_with_no_shared_secret(
    provider: Provider, client_of: Any, tmp_path: Path
) -> None:
    http = client_of(provider)
    only_provider = provider_settings(
        "sqlite:///unused.db", tmp_path, LEDGER_AUTH_ISSUER=provider.url
    )
    assert signing_key(only_provider) is None
    assert not (tmp_path / "auth-secret").exists()  # no development key was made either
    gig = http.post(
        "/v1/gigs",
        json={"title": "Logo", "packages": [BASIC]},
        headers=bearer(provider.token("freelancer-1")),
    )
    assert gig.status_code == 201, gig.text
    assert gig.json()["freelancerId"] == "freelancer-1"
    order = http.post(
        "/v1/orders",
        json={"gigId": gig.json()["id"], "packageId": "basic"},
        headers=bearer(provider.token("client-1", ["offline_access"])),  # not mapped: a user
    )
    assert order.status_code == 201, order.text
    path = f"/v1/orders/{order.json()['id']}"
    after = {"X-Ledger-Min-Position": order.headers["X-Ledger-Position"]}
    support = http.get(path, headers={**bearer(provider.token("ana", ["ledger-support"])), **after})
    assert support.status_code == 200, support.text  # support reads every order
    stranger = http.get(path, headers={**bearer(provider.token("client-2")), **after})
    assert refused(stranger, 404)["code"] == "not_found"
    with pytest.raises(ValueError, match="LEDGER_AUTH_SECRET"):
        http.app.state.auth.issue("client-1")  # no local key to mint with


def test_a_local_hs256_token_is_refused_when_only_the_provider_is_trusted(
    provider: Provider, client_of: Any
) -> None:
    http = client_of(provider)
    local = Authenticator("k" * 48).issue("client-1")
    assert refused(http.get("/v1/orders", headers=bearer(local)))["code"] == "unauthenticated"


def test_with_a_secret_too_both_kinds_of_token_are_taken(
    provider: Provider, client_of: Any
) -> None:
    secret = "s" * 48
    http = client_of(provider, LEDGER_AUTH_SECRET=secret)
    local = Authenticator(secret).issue("client-1")
    assert http.get("/v1/orders", headers=bearer(local)).status_code == 200
    assert http.get("/v1/orders", headers=bearer(provider.token("client-1"))).status_code == 200


def test_a_jwks_url_alone_is_enough(provider: Provider, client_of: Any) -> None:
    http = client_of(provider, LEDGER_AUTH_ISSUER=None, LEDGER_AUTH_JWKS_URL=provider.jwks_url)
    assert http.get("/v1/orders", headers=bearer(provider.token("c-1"))).status_code == 200


def test_an_ec_key_signs_as_well_as_an_rsa_one(provider: Provider, client_of: Any) -> None:
    http = client_of(provider)
    assert (
        http.get("/v1/orders", headers=bearer(provider.token("c-1", kid="ec-1"))).status_code == 200
    )


def test_a_key_rotation_is_followed_at_its_first_token(
    fresh_provider: Provider, client_of: Any, clock: FakeClock
) -> None:
    http = client_of(fresh_provider)
    old = fresh_provider.token("c-1")
    assert http.get("/v1/orders", headers=bearer(old)).status_code == 200
    fetched = fresh_provider.jwks_fetches
    fresh_provider.rotate()
    new = fresh_provider.token("c-1")
    assert jwt.get_unverified_header(new)["kid"] == "rsa-3"
    # The rotation comes after the last fetch by more than REFETCH_EVERY (real seconds are
    # not waited for: the provider's clock is set back instead).
    http.app.state.auth.provider._keys.tried_at -= REFETCH_EVERY
    assert http.get("/v1/orders", headers=bearer(new)).status_code == 200
    assert http.get("/v1/orders", headers=bearer(old)).status_code == 200  # still published
    assert fresh_provider.jwks_fetches == fetched + 1


def wrong_tokens(provider: Provider) -> dict[str, str]:
    now = int(time.time())
    public = provider.key("rsa-1").private.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    as_jwk = json.dumps(provider.key("rsa-1").jwk())
    unsigned = jwt.encode(
        {"sub": "c-1", "exp": now + 60, "iss": provider.url, "aud": AUDIENCE},
        None,
        algorithm="none",
    )
    confused = {"sub": "admin-1", "exp": now + 60, "iss": provider.url, "aud": AUDIENCE,
                "realm_access": {"roles": ["ledger-admin"]}}  # fmt: skip
    return {
        "wrong issuer": provider.token("c-1", iss="https://elsewhere.example"),
        "no issuer": provider.token("c-1", iss=None),
        "wrong audience": provider.token("c-1", aud="another-api"),
        "no audience": provider.token("c-1", aud=None),
        "expired": provider.token("c-1", exp=now - 120, iat=now - 420),
        "not yet valid": provider.token("c-1", nbf=now + 600),
        "no exp": provider.token("c-1", exp=None),
        "too long-lived": provider.token("c-1", lifetime=3 * 24 * 3600),
        "unknown kid": _with_kid(provider, "rsa-1", "no-such-key"),
        "no kid": _without_kid(provider),
        "alg none": unsigned,
        "HS256 with the public key PEM": _hmac(confused, pem),
        "HS256 with the public JWK": _hmac(confused, as_jwk.encode()),
        "RS256 under the EC key's kid": _with_kid(provider, "rsa-1", "ec-1"),
        "forged signature": provider.token("c-1")[:-8] + "AAAAAAAA",
        "roles not a list of names": provider.token("c-1", realm_access={"roles": {"a": 1}}),
        "subject with a hidden character": provider.token("c-1\u200b"),
    }


def _with_kid(provider: Provider, signer: str, kid: str) -> str:
    key = provider.key(signer)
    body = jwt.decode(provider.token("c-1"), options={"verify_signature": False})
    return jwt.encode(body, key.private, algorithm=key.algorithm, headers={"kid": kid})


def _without_kid(provider: Provider) -> str:
    key = provider.key("rsa-1")
    body = jwt.decode(provider.token("c-1"), options={"verify_signature": False})
    return jwt.encode(body, key.private, algorithm=key.algorithm)


def _hmac(claims: dict[str, Any], secret: bytes) -> str:
    """HS256 by hand (PyJWT rightly refuses a PEM as an HMAC key): the token an attacker
    would make hoping the service checks it with the provider's public key."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).rstrip(b"=").decode()

    head = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    body = part(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{part(signature)}"


def test_every_wrong_token_is_refused_401(provider: Provider, client_of: Any) -> None:
    http = client_of(provider)
    assert http.get("/v1/orders", headers=bearer(provider.token("c-1"))).status_code == 200
    for name, token in wrong_tokens(provider).items():
        body = refused(http.get("/v1/orders", headers=bearer(token)))
        assert body["code"] == "unauthenticated", name
    # And with a shared secret configured as well, HMAC tokens are checked with it alone.
    secret_http = client_of(provider, LEDGER_AUTH_SECRET="s" * 48)
    for name in ("HS256 with the public key PEM", "HS256 with the public JWK", "alg none"):
        body = refused(secret_http.get("/v1/orders", headers=bearer(wrong_tokens(provider)[name])))
        assert body["code"] == "unauthenticated", name


def test_the_refusals_say_what_is_wrong(provider: Provider, client_of: Any) -> None:
    http = client_of(provider)
    tokens = wrong_tokens(provider)
    detail = {name: refused(http.get("/v1/orders", headers=bearer(tokens[name])))["detail"]
              for name in ("wrong issuer", "no issuer", "wrong audience", "no audience",
                           "expired", "unknown kid")}  # fmt: skip
    assert detail == {
        "wrong issuer": "the token is not from the configured issuer",
        "no issuer": "the token is not from the configured issuer",
        "wrong audience": "the token is not for this service's audience",
        "no audience": "the token is not for this service's audience",
        "expired": "the token has expired",
        "unknown kid": "the token is signed with a key its issuer does not publish",
    }


def test_the_provider_unreachable_at_start_up_is_503_and_nothing_is_accepted(
    provider: Provider, client_of: Any
) -> None:
    port = free_port()  # nothing listens there
    http = client_of(provider, LEDGER_AUTH_ISSUER=f"http://127.0.0.1:{port}")
    response = http.get("/v1/orders", headers=bearer(provider.token("c-1")))
    body = refused(response, 503)
    assert body["code"] == "identity_provider_unavailable"
    assert response.headers["retry-after"] == "10"
    keyed = http.post(
        "/v1/gigs",
        json={"title": "Logo", "packages": [BASIC]},
        headers={**bearer(provider.token("f-1")), "Idempotency-Key": "k-1"},
    )
    assert refused(keyed, 503)["code"] == "identity_provider_unavailable"
    assert http.get("/healthz").status_code == 200  # the service itself is up


def test_a_provider_failing_later_keeps_known_keys_and_503s_new_ones(
    fresh_provider: Provider, client_of: Any
) -> None:
    http = client_of(fresh_provider)
    assert http.get("/v1/orders", headers=bearer(fresh_provider.token("c-1"))).status_code == 200
    fresh_provider.failing = True
    fresh_provider.rotate()
    held = http.app.state.auth.provider
    held._keys.tried_at -= KEYS_MAX_AGE  # the keys are old: a refetch is due, and fails
    held._keys.fetched_at -= KEYS_MAX_AGE
    known = fresh_provider.token("c-1", kid="rsa-1")
    assert http.get("/v1/orders", headers=bearer(known)).status_code == 200
    new = fresh_provider.token("c-1")
    held._keys.tried_at -= REFETCH_EVERY
    body = refused(http.get("/v1/orders", headers=bearer(new)), 503)
    assert body["code"] == "identity_provider_unavailable"
    fresh_provider.failing = False
    held._keys.tried_at -= REFETCH_EVERY
    assert http.get("/v1/orders", headers=bearer(new)).status_code == 200


class Ticks:
    """A monotonic clock that moves when told."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_unknown_keys_fetches_the_jwks_once_per_interval(
    fresh_provider: Provider,
) -> None:
    ticks = Ticks()
    identity = IdentityProvider(
        issuer=fresh_provider.url, jwks_url=None, audience=AUDIENCE, monotonic=ticks
    )
    auth = Authenticator(None, provider=identity)
    bogus = [_with_kid(fresh_provider, "rsa-1", f"made-up-{n}") for n in range(50)]

    async def scenario() -> list[int]:
        fetches = []
        await auth.caller(f"Bearer {fresh_provider.token('c-1')}")
        fetches.append(fresh_provider.jwks_fetches)
        for token in bogus:
            with pytest.raises(ApiError) as refusal:
                await auth.caller(f"Bearer {token}")
            assert refusal.value.status == 401
        fetches.append(fresh_provider.jwks_fetches)
        ticks.now += REFETCH_EVERY
        for token in bogus:
            with pytest.raises(ApiError):
                await auth.caller(f"Bearer {token}")
        fetches.append(fresh_provider.jwks_fetches)
        await identity.aclose()
        return fetches

    assert asyncio.run(scenario()) == [1, 1, 2]  # the first fetch, none more, one more


def test_a_withdrawn_key_is_refused_once_the_keys_are_fetched_again(
    fresh_provider: Provider,
) -> None:
    ticks = Ticks()
    identity = IdentityProvider(
        issuer=None, jwks_url=fresh_provider.jwks_url, audience=AUDIENCE, monotonic=ticks
    )
    auth = Authenticator(None, provider=identity)
    token = f"Bearer {fresh_provider.token('c-1', kid='ec-1')}"

    async def scenario() -> tuple[str, int]:
        first = (await auth.caller(token)).id
        fresh_provider.withdraw("ec-1")
        ticks.now += KEYS_MAX_AGE - 1
        assert (await auth.caller(token)).id == "c-1"  # held until the keys are old
        ticks.now += 1
        with pytest.raises(ApiError) as refusal:
            await auth.caller(token)
        await identity.aclose()
        return first, refusal.value.status

    assert asyncio.run(scenario()) == ("c-1", 401)


def test_roles_are_read_at_a_dotted_path_or_a_namespaced_claim(fresh_provider: Provider) -> None:
    namespaced = "https://marketplace.example/roles"
    identity = IdentityProvider(
        issuer=fresh_provider.url,
        jwks_url=None,
        audience=AUDIENCE,
        roles_claim=namespaced,
        role_map={"ledger-auditor": "auditor", "ops": "admin"},
    )
    auth = Authenticator(None, provider=identity)

    async def roles(**claims: Any) -> frozenset[str]:
        return (await auth.caller(f"Bearer {fresh_provider.token('c-1', **claims)}")).roles

    async def scenario() -> list[frozenset[str]]:
        found = [
            await roles(**{namespaced: ["ledger-auditor", "ops", "other"]}),
            await roles(**{namespaced: "ops"}),
            await roles(**{namespaced: ["other"]}),
            await roles(),
        ]
        await identity.aclose()
        return found

    assert asyncio.run(scenario()) == [
        frozenset({"auditor", "admin"}),
        frozenset({"admin"}),
        frozenset({"user"}),
        frozenset({"user"}),
    ]


def test_the_subject_claim_can_be_another_claim(fresh_provider: Provider) -> None:
    identity = IdentityProvider(
        issuer=fresh_provider.url, jwks_url=None, audience=AUDIENCE, subject_claim="uid"
    )
    auth = Authenticator(None, provider=identity)

    async def scenario() -> str:
        caller = await auth.caller(f"Bearer {fresh_provider.token('opaque-sub', uid='user-42')}")
        await identity.aclose()
        return caller.id

    assert asyncio.run(scenario()) == "user-42"


def test_a_jwks_that_names_no_algorithms_still_refuses_a_mismatched_key(
    fresh_provider: Provider, client_of: Any
) -> None:
    """Without ``alg`` in the JWKS, the key's type decides: RS256 under an EC key and ES256
    under an RSA key are 401, never a 500 from deep in the crypto."""
    fresh_provider.with_alg = False
    http = client_of(fresh_provider)
    for kid in ("rsa-1", "ec-1"):
        assert (
            http.get("/v1/orders", headers=bearer(fresh_provider.token("c", kid=kid))).status_code
            == 200
        )
    for signer, kid, algorithm in (("rsa-1", "ec-1", "RS256"), ("ec-1", "rsa-1", "ES256")):
        key = fresh_provider.key(signer)
        body = jwt.decode(fresh_provider.token("c"), options={"verify_signature": False})
        token = jwt.encode(body, key.private, algorithm=algorithm, headers={"kid": kid})
        assert refused(http.get("/v1/orders", headers=bearer(token)))["code"] == "unauthenticated"


def test_entries_of_the_jwks_no_library_can_use_are_skipped(
    fresh_provider: Provider, client_of: Any
) -> None:
    fresh_provider.odd_entries = [
        "not an object",
        {"kty": "RSA", "kid": "none-alg", "alg": "none", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "kid": "list-alg", "alg": ["ES256"], "crv": "P-256"},
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "for-encryption", "use": "enc", "n": "AQAB", "e": "AQAB"},
    ]
    http = client_of(fresh_provider)
    assert http.get("/v1/orders", headers=bearer(fresh_provider.token("c-1"))).status_code == 200


def test_a_jwks_url_is_fetched_as_given_even_with_an_issuer(
    provider: Provider, client_of: Any
) -> None:
    """The issuer is checked in each token; the keys come from the URL given, so a
    discovery document that cannot be had does not matter."""
    issuer = f"http://127.0.0.1:{free_port()}"  # nothing answers there
    http = client_of(provider, LEDGER_AUTH_ISSUER=issuer, LEDGER_AUTH_JWKS_URL=provider.jwks_url)
    token = provider.token("c-1", iss=issuer)
    assert http.get("/v1/orders", headers=bearer(token)).status_code == 200
