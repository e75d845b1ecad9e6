"""Bearer tokens: from the marketplace's identity provider, or HS256 with a shared key.

A token whose header says ``HS256`` is checked with the local key (PyJWT does the crypto);
its claims are ``sub``, ``roles`` (the ledger's role names) and ``exp``. The local key is
``LEDGER_AUTH_SECRET``; in development, when it is unset and no provider is configured, a
random key is generated once into ``var/auth-secret`` (mode 0600) and reused by every
process on the machine, so ``ledger token`` mints tokens that ``ledger serve`` accepts
without any set-up. With a provider and no ``LEDGER_AUTH_SECRET`` there is no local key:
every HS256 token is refused.

Any other token is the provider's (``api.http.identity``): checked against its published
keys, its subject and roles read from the configured claims. Production refuses to start
with neither a provider nor a secret (``Settings``).

A token can only claim the user roles (``user``, ``support``, ``auditor``, ``admin``): the
``gateway`` and ``clock`` capacities exist inside the process alone.

A token is bounded: ``exp`` is required, and ``exp``, ``iat`` and ``nbf`` must be numbers
(PyJWT alone would read ``"1700000000"`` as a time); ``exp`` may lie at most
``LEDGER_AUTH_MAX_TOKEN_HOURS`` after ``iat`` (after now, when there is no ``iat``); the
header's ``typ``, when there is one, is ``JWT`` or ``at+jwt``; and the subject holds no
control or invisible character (``"demo-client\u200b"`` would be a second identity that
looks like the first).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt

from api.http.identity import IdentityProvider, ProviderUnavailable, UnknownKey
from api.http.problems import ApiError
from ledger.actors import USER_ROLES, Caller
from ledger.domain.values import hidden_characters
from ledger.recent import Recent
from ledger.settings import Settings

log = logging.getLogger("api")

ALGORITHM = "HS256"
MAX_SUBJECT = 255
DEFAULT_TTL = timedelta(hours=12)
DEFAULT_MAX_TTL = timedelta(hours=24)
"""``LEDGER_AUTH_MAX_TOKEN_HOURS``'s default: the longest a token may be valid."""
TYPES: Final = frozenset({"jwt", "at+jwt", "application/at+jwt"})
"""The header ``typ`` values accepted (compared without case, as media types are)."""
TIME_CLAIMS: Final = ("exp", "iat", "nbf")
_TIME_LIMIT: Final = 2**53
"""Seconds beyond which a time claim is not a time (compared exactly, so an integer of
hundreds of digits never becomes a float)."""
VERIFIED = 10_000
"""Tokens signed with the local key kept once verified (``Authenticator._verified``)."""
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gig-ledger"'}
PROVIDER_RETRY = 10
"""``Retry-After`` of a 503 ``identity_provider_unavailable``: the provider's keys are
fetched at most this often (``identity.REFETCH_EVERY``)."""
_MISSING: Final = {
    "iss": "the token is not from the configured issuer",
    "aud": "the token is not for this service's audience",
}
"""The detail of a provider's token whose ``iss`` or ``aud`` is wrong or missing."""
NO_LOCAL_KEY = (
    "this installation takes tokens from its identity provider and has no shared key;"
    " set LEDGER_AUTH_SECRET to mint tokens here"
)


def unauthenticated(detail: str) -> ApiError:
    return ApiError(401, detail, headers=_CHALLENGE)


def provider_unavailable(error: ProviderUnavailable) -> ApiError:
    """The 503 of a token that needs a key the provider cannot give now."""
    log.warning("a token waits on the identity provider: %s", error)
    return ApiError(
        503,
        "the identity provider's signing keys cannot be fetched; retry shortly",
        code="identity_provider_unavailable",
        headers={"Retry-After": str(PROVIDER_RETRY)},
    )


def signing_key(settings: Settings) -> str | None:
    """The local key: the configured secret, or in development without a provider the
    one in ``var/`` (created on first use); ``None`` when tokens come only from the
    provider."""
    if settings.auth_secret is not None:
        return settings.auth_secret.get_secret_value()
    if settings.has_provider:
        return None
    return settings.local_secret("auth-secret")


class Authenticator:
    """Checks tokens, valid ``max_ttl`` at most: HS256 ones with ``key``, others with
    ``provider``; mints HS256 ones when there is a ``key``."""

    def __init__(
        self,
        key: str | None,
        max_ttl: timedelta = DEFAULT_MAX_TTL,
        clock: Callable[[], datetime] | None = None,
        provider: IdentityProvider | None = None,
    ) -> None:
        """``clock`` is now, for the lifetime of a token without ``iat`` (PyJWT checks
        ``exp`` and ``nbf`` against the real time)."""
        if max_ttl <= timedelta(0):
            raise ValueError("the longest token lifetime must be positive")
        self._key, self.provider = key, provider
        self.max_ttl = max_ttl
        self._clock = clock or (lambda: datetime.now(UTC))
        self._verified: Recent[str, tuple[str, frozenset[str], dict[str, Any]]] = Recent(VERIFIED)
        """Tokens signed with the local key that passed every check, with their subject,
        roles and claims: a client sends the same token with each request, and checking it
        again cost a twentieth of an order's CPU (issue 23). Only ``exp`` and ``nbf`` are
        checked again, against the time."""
        self._verified_lock = threading.Lock()

    @classmethod
    def for_settings(
        cls, settings: Settings, provider: IdentityProvider | None = None
    ) -> Authenticator:
        """The installation's local key and ``provider``, and its
        ``LEDGER_AUTH_MAX_TOKEN_HOURS``."""
        max_ttl = timedelta(hours=settings.auth_max_token_hours)
        return cls(signing_key(settings), max_ttl, provider=provider)

    def issue(
        self,
        subject: str,
        roles: Iterable[str] = ("user",),
        ttl: timedelta = DEFAULT_TTL,
        now: datetime | None = None,
    ) -> str:
        """Raises: ValueError for an empty or too long subject, one with a control or
        invisible character, an unknown role, a ``ttl`` beyond ``max_ttl``, or no local
        key."""
        if self._key is None:
            raise ValueError(NO_LOCAL_KEY)
        roles = sorted(set(roles))
        if not subject or len(subject) > MAX_SUBJECT:
            raise ValueError(f"the subject must be 1 to {MAX_SUBJECT} characters")
        if hidden := hidden_characters(subject):
            raise ValueError(f"the subject must not contain {hidden}")
        if ttl > self.max_ttl:
            raise ValueError(f"a token may be valid {_hours(self.max_ttl)} hours at most")
        if unknown := set(roles) - USER_ROLES:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
        issued = now or datetime.now(UTC)
        claims = {"sub": subject, "roles": roles, "iat": issued, "exp": issued + ttl}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    async def caller(self, authorization: str | None, request_id: str | None = None) -> Caller:
        """The caller a ``Bearer`` header names.

        Raises:
            ApiError: 401, for a missing, malformed, forged or expired token, or a token
                with claims this service does not grant; 503, when the token needs a key
                the identity provider cannot give now.
        """
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated("a bearer token is required")
        with self._verified_lock:
            known = self._verified.use(token)
        if known is not None:  # checked whole before; only time has moved since
            subject, roles, claims = known
            _in_time(claims)
            return Caller(subject, roles, request_id)
        try:
            header = jwt.get_unverified_header(token)  # which key: checked by the signature
        except jwt.PyJWTError:
            raise unauthenticated("the token is not valid") from None
        if header.get("alg") == ALGORITHM and self._key is not None:
            claims = self._local_claims(token)
            subject, roles = claims["sub"], _roles(claims)
        elif self.provider is not None:
            claims = await self._provider_claims(self.provider, token, header)
            mapped = self.provider.roles(claims)
            if mapped is None:
                raise unauthenticated("the token's roles claim must be a name or a list of names")
            subject, roles = self.provider.subject(claims), mapped
        else:  # alg none, HS256 with no local key, a key pair with no provider
            raise unauthenticated("the token is not valid")
        _check_type(header)
        self._check_lifetime(claims)
        caller = Caller(_subject(subject), roles, request_id)
        if header.get("alg") == ALGORITHM:  # the provider's keys may be withdrawn: not kept
            with self._verified_lock:
                self._verified.keep(token, (caller.id, caller.roles, claims))
        return caller

    def _local_claims(self, token: str) -> dict[str, Any]:
        assert self._key is not None
        try:
            return jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthenticated("the token has expired") from None
        except jwt.PyJWTError:
            raise unauthenticated("the token is not valid") from None

    async def _provider_claims(
        self, provider: IdentityProvider, token: str, header: dict[str, Any]
    ) -> dict[str, Any]:
        """The claims of a token of ``provider``, for ``LEDGER_AUTH_AUDIENCE``."""
        try:
            claims: dict[str, Any] = await provider.claims(token, header, provider.audience)
        except ProviderUnavailable as error:
            raise provider_unavailable(error) from None
        except UnknownKey:
            raise unauthenticated(
                "the token is signed with a key its issuer does not publish"
            ) from None
        except jwt.ExpiredSignatureError:
            raise unauthenticated("the token has expired") from None
        except jwt.MissingRequiredClaimError as missing:
            raise unauthenticated(_MISSING.get(missing.claim, "the token is not valid")) from None
        except jwt.InvalidIssuerError:
            raise unauthenticated(_MISSING["iss"]) from None
        except jwt.InvalidAudienceError:
            raise unauthenticated(_MISSING["aud"]) from None
        except jwt.PyJWTError:
            raise unauthenticated("the token is not valid") from None
        return claims

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        """``exp``, ``iat`` and ``nbf`` are numbers, and ``exp`` at most ``max_ttl`` after
        ``iat`` (or after now, without ``iat``)."""
        for name in TIME_CLAIMS:
            value = claims.get(name)
            if name in claims and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not -_TIME_LIMIT < value < _TIME_LIMIT  # NaN and infinities too
            ):
                raise unauthenticated(f"the token's {name} must be a number of seconds")
        start = claims.get("iat", self._clock().timestamp())
        if claims["exp"] - start > self.max_ttl.total_seconds():
            raise unauthenticated(
                f"the token is valid for longer than {_hours(self.max_ttl)} hours"
            )


def _in_time(claims: dict[str, Any]) -> None:
    """Raises: ApiError 401, for a token past its ``exp`` or before its ``nbf`` now, as
    PyJWT judges them (no leeway for the local key's tokens)."""
    now = time.time()
    if claims["exp"] <= now:
        raise unauthenticated("the token has expired")
    if "nbf" in claims and claims["nbf"] > now:
        raise unauthenticated("the token is not valid")


def _hours(ttl: timedelta) -> str:
    return f"{ttl.total_seconds() / 3600:g}"


def _check_type(header: dict[str, Any]) -> None:
    kind = header.get("typ")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in TYPES):
        raise unauthenticated("the token's typ must be JWT")


def _subject(subject: Any) -> str:
    if (
        not isinstance(subject, str)
        or not 0 < len(subject) <= MAX_SUBJECT
        or hidden_characters(subject)
    ):
        raise unauthenticated("the token's subject is not valid")
    return subject


def _roles(claims: dict[str, Any]) -> frozenset[str]:
    roles = claims.get("roles", ["user"])
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise unauthenticated("the token's roles must be a non-empty list of names")
    if unknown := set(roles) - USER_ROLES:
        raise unauthenticated(f"the token claims unknown roles: {', '.join(sorted(unknown))}")
    return frozenset(roles)
