"""The marketplace's identity provider: its signing keys, and what its tokens mean here.

A provider (Keycloak, Auth0, Cognito, Zitadel …) signs access tokens with key pairs it
rotates and publishes as a JWKS. ``IdentityProvider`` finds the JWKS (``LEDGER_AUTH_JWKS_URL``,
or OpenID discovery from ``LEDGER_AUTH_ISSUER``), keeps the keys in memory by ``kid``, and
verifies a token with PyJWT against the key its header names.

Keys are fetched with httpx, not with PyJWT's ``PyJWKClient``: that client blocks on
``urllib`` inside the event loop and refetches on every unknown ``kid``, so a flood of made-up
``kid`` values would become a flood of requests to the provider. Here:

- a known ``kid`` is answered from memory; keys older than ``KEYS_MAX_AGE`` are fetched
  again by the one request that finds them so (others meanwhile use the keys held), and if
  that fetch fails the keys held stay in use: a provider down does not sign everyone out;
- an unknown ``kid`` fetches the JWKS once, at most once every ``REFETCH_EVERY`` however many
  arrive (a rotation is followed at its first token); after that fetch it is 401;
- when no key can be had (the provider down at start-up, or down when a new key is needed),
  the request is 503 ``identity_provider_unavailable``, never a 500 and never a token
  accepted unverified.

A provider's token is checked for its signature by ``kid`` with one of
``LEDGER_AUTH_ALGORITHMS`` (key pairs only: ``none`` and HMAC can never be chosen by a
token's header), ``exp`` (required), ``nbf`` and ``iat`` with ``LEEWAY``, and ``iss`` and
``aud`` when configured. The subject is read from ``LEDGER_AUTH_SUBJECT_CLAIM`` and the roles
from ``LEDGER_AUTH_ROLES_CLAIM`` (dotted paths, as in Keycloak's ``realm_access.roles``),
mapped by ``LEDGER_AUTH_ROLE_MAP``: a role not mapped gives nothing, and a caller with no
mapped role is a ``user``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import httpx
import jwt

from ledger.settings import Settings

log = logging.getLogger("api")

LEEWAY: Final = timedelta(seconds=30)
"""How far a provider's clock and ours may disagree on ``exp``, ``nbf`` and ``iat``."""
REFETCH_EVERY: Final = 10.0
"""Seconds between two fetches of the provider's keys or discovery document, at least."""
KEYS_MAX_AGE: Final = 300.0
"""Seconds after which the keys held are fetched again (a key the provider withdrew is
refused from then on)."""
FETCH_TIMEOUT: Final = httpx.Timeout(5.0)
FETCH_DEADLINE: Final = 10.0
"""Seconds one fetch may take in all, however slowly the provider sends."""
MAX_DOCUMENT: Final = 1 << 20
"""The largest JWKS or discovery document read, in bytes."""
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"


class ProviderUnavailable(Exception):
    """The provider's keys or endpoints are needed and cannot be had now (→ 503)."""


class UnknownKey(Exception):
    """The token names a key the provider does not publish (→ 401)."""


@dataclass(frozen=True)
class Endpoints:
    """What discovery (or the settings) say of the provider."""

    jwks_uri: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None


@dataclass
class _Fetched:
    """One kind of document the provider serves, and when it was last fetched."""

    value: Any = None
    fetched_at: float = float("-inf")
    tried_at: float = float("-inf")
    failure: str | None = None
    attempts: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


KEY_TYPES: Final = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), ("RSA", None)),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}
"""The key type (and curve) each algorithm signs with: a token naming an RSA key with
``ES256`` is refused before any key is used (a JWKS need not say a key's ``alg``)."""


@dataclass(frozen=True)
class _Key:
    jwk: jwt.PyJWK
    algorithm: str | None
    """The ``alg`` the JWKS gives the key, when it gives one: then only that one is used."""
    kty: str
    curve: str | None

    def signs_with(self, algorithm: str) -> bool:
        if self.algorithm is not None and self.algorithm != algorithm:
            return False
        kty, curve = KEY_TYPES.get(algorithm, (None, None))
        return kty == self.kty and (curve is None or curve == self.curve)


class IdentityProvider:
    """One provider's keys and claims, fetched over HTTP and timed by ``monotonic``.

    The HTTP client and the locks belong to the event loop that first uses them: the app's
    lifespan ends with ``aclose``, which lets them go (the keys are kept), so another loop
    can serve the same app later (as tests do).
    """

    def __init__(
        self,
        *,
        issuer: str | None,
        jwks_url: str | None,
        audience: str | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        subject_claim: str = "sub",
        roles_claim: str = "roles",
        role_map: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if issuer is None and jwks_url is None:
            raise ValueError("an identity provider needs an issuer or a JWKS URL")
        self.issuer, self.audience = issuer, audience
        self.algorithms = tuple(algorithms)
        self._jwks_url = jwks_url
        self._subject_claim, self._roles_claim = subject_claim, roles_claim
        self._role_map = dict(role_map or {})
        self._client: httpx.AsyncClient | None = None
        self._monotonic = monotonic
        self._keys, self._discovery = _Fetched(), _Fetched()

    @classmethod
    def for_settings(cls, settings: Settings) -> IdentityProvider | None:
        """The configured provider, or ``None`` when tokens come from no provider."""
        if not settings.has_provider:
            return None
        return cls(
            issuer=settings.auth_issuer,
            jwks_url=settings.auth_jwks_url,
            audience=settings.auth_audience,
            algorithms=settings.provider_algorithms,
            subject_claim=settings.auth_subject_claim,
            roles_claim=settings.auth_roles_claim,
            role_map=settings.role_map,
        )

    async def aclose(self) -> None:
        """Close the HTTP client; the keys held stay."""
        client, self._client = self._client, None
        self._keys.lock, self._discovery.lock = asyncio.Lock(), asyncio.Lock()
        if client is not None:
            await client.aclose()

    # -- what a token means ------------------------------------------------------------------

    async def claims(self, token: str, header: Mapping[str, Any], audience: str | None) -> Any:
        """The verified claims of ``token`` for ``audience`` (none: any or no ``aud``).

        Raises:
            jwt.PyJWTError: the token is not valid (expired, forged, wrong ``iss``/``aud``).
            UnknownKey, ProviderUnavailable.
        """
        algorithm = header.get("alg")
        if algorithm not in self.algorithms:
            raise jwt.InvalidAlgorithmError("the token's algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("the token names no key (kid)")
        key = await self._key(kid)
        if not key.signs_with(algorithm):
            raise jwt.InvalidAlgorithmError("the token's algorithm is not its key's")
        required = ["exp", *(["iss"] if self.issuer else []), *(["aud"] if audience else [])]
        try:
            return jwt.decode(
                token,
                key.jwk.key,
                algorithms=[algorithm],
                audience=audience,
                issuer=self.issuer,
                leeway=LEEWAY,
                options={"require": required, "verify_aud": audience is not None},
            )
        except (TypeError, ValueError) as error:  # a key PyJWT cannot use for this token
            raise jwt.InvalidTokenError(str(error)) from None

    def subject(self, claims: Mapping[str, Any]) -> Any:
        """The value at ``LEDGER_AUTH_SUBJECT_CLAIM`` (checked by the caller)."""
        return _at_path(claims, self._subject_claim)

    def roles(self, claims: Mapping[str, Any]) -> frozenset[str] | None:
        """The ledger roles the provider's roles map to (``{"user"}`` when none do);
        ``None`` when the roles claim is there but is not a name or a list of names."""
        found = _at_path(claims, self._roles_claim)
        names = [found] if isinstance(found, str) else [] if found is None else found
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return None
        return frozenset(self._role_map[n] for n in names if n in self._role_map) or frozenset(
            {"user"}
        )

    # -- what the provider serves ------------------------------------------------------------

    async def endpoints(self) -> Endpoints:
        """The provider's endpoints: discovered from the issuer (fetched again as the keys
        are, when ``KEYS_MAX_AGE`` old), or the configured JWKS URL alone.

        Raises: ProviderUnavailable.
        """
        if self.issuer is None:
            assert self._jwks_url is not None
            return Endpoints(self._jwks_url)
        found: Endpoints = await self._fetched(self._discovery, self._discover, refresh=False)
        if self._jwks_url is not None:
            return Endpoints(self._jwks_url, found.authorization_endpoint, found.token_endpoint)
        return found

    async def _key(self, kid: str) -> _Key:
        keys: dict[str, _Key] = await self._fetched(self._keys, self._fetch_keys, refresh=False)
        if kid in keys:
            return keys[kid]
        keys = await self._fetched(self._keys, self._fetch_keys, refresh=True)
        if kid in keys:
            return keys[kid]
        raise UnknownKey(kid)

    async def _fetched(self, held: _Fetched, fetch: Callable[[], Any], *, refresh: bool) -> Any:
        """``held``'s value, fetched first when there is none, when it is older than
        ``KEYS_MAX_AGE``, or when ``refresh`` — unless it was tried less than
        ``REFETCH_EVERY`` ago. A failed fetch keeps the value held.

        Raises: ProviderUnavailable, when there is no value to answer with, or when
        ``refresh`` was asked and the provider cannot be reached.
        """
        now = self._monotonic()
        stale = now - held.fetched_at >= KEYS_MAX_AGE
        wanted = held.value is None or refresh or stale
        if wanted and now - held.tried_at >= REFETCH_EVERY:
            if held.value is not None and not refresh and held.lock.locked():
                return held.value  # another request is fetching: use what is held
            attempts = held.attempts
            async with held.lock:
                if held.attempts == attempts:  # nobody fetched while this request waited
                    held.attempts += 1
                    held.tried_at = now
                    try:
                        held.value, held.fetched_at = await fetch(), self._monotonic()
                        held.failure = None
                    except ProviderUnavailable as error:
                        held.failure = str(error)
                        log.warning("identity provider: %s", error)
                    except Exception as error:
                        held.failure = f"the provider's answer could not be read: {error!r}"
                        log.exception("identity provider: %s", held.failure)
        if held.value is None or (refresh and held.failure is not None):
            raise ProviderUnavailable(held.failure or "the identity provider is not reached yet")
        return held.value

    async def _discover(self) -> Endpoints:
        assert self.issuer is not None
        document = await self._document(self.issuer.rstrip("/") + DISCOVERY_PATH)
        if document.get("issuer") != self.issuer:
            raise ProviderUnavailable(
                f"the discovery document names issuer {document.get('issuer')!r},"
                f" not {self.issuer!r}"
            )
        jwks_uri, authorize, token = (
            document.get(name) for name in ("jwks_uri", "authorization_endpoint", "token_endpoint")
        )
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise ProviderUnavailable("the discovery document gives no jwks_uri")
        return Endpoints(
            jwks_uri,
            authorize if isinstance(authorize, str) else None,
            token if isinstance(token, str) else None,
        )

    async def _fetch_keys(self) -> dict[str, _Key]:
        url = self._jwks_url or (await self.endpoints()).jwks_uri  # the setting, undiscovered
        document = await self._document(url)
        usable: dict[str, _Key] = {}
        entries = document.get("keys")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict) or entry.get("kty") == "oct":
                continue  # a shared secret in a JWKS is never a provider's signing key
            if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
                continue
            try:
                jwk = jwt.PyJWK(entry)
            except Exception:
                continue
            algorithm, curve = entry.get("alg"), entry.get("crv")
            usable[entry["kid"]] = _Key(
                jwk,
                algorithm if isinstance(algorithm, str) else None,
                str(entry.get("kty")),
                curve if isinstance(curve, str) else None,
            )
        if not usable:
            raise ProviderUnavailable("the provider's JWKS holds no usable signing key")
        return usable

    async def _document(self, url: str) -> dict[str, Any]:
        """The JSON object at ``url``.

        Raises: ProviderUnavailable, for a network failure, a timeout, an answer other than
        200, or a body that is not a JSON object of at most ``MAX_DOCUMENT`` bytes.
        """
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=FETCH_TIMEOUT)
        try:
            async with asyncio.timeout(FETCH_DEADLINE):
                status, body = await _read(self._client, url)
        except (httpx.HTTPError, TimeoutError) as error:
            raise ProviderUnavailable(f"{url} cannot be reached: {error!r}") from None
        if status != 200:
            raise ProviderUnavailable(f"{url} answered {status}")
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ProviderUnavailable(f"{url} did not answer a JSON object")
        return document


async def _read(client: httpx.AsyncClient, url: str) -> tuple[int, bytes]:
    """The status and body at ``url``, the body read up to ``MAX_DOCUMENT`` bytes.

    Raises: ProviderUnavailable, for a longer body; httpx.HTTPError.
    """
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT:
                raise ProviderUnavailable(f"{url} answered more than {MAX_DOCUMENT} bytes")
        return response.status_code, bytes(body)


def _at_path(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted ``path`` (``realm_access.roles``), or ``None``. A claim whose
    own name holds dots (Auth0's ``https://example.com/roles``) is found whole first."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value
