"""Bearer tokens: HS256 JWTs with ``sub``, ``roles`` and ``exp`` (PyJWT does the crypto).

The key is ``LEDGER_AUTH_SECRET``. In development, when it is unset, a random key is
generated once into ``var/auth-secret`` (mode 0600) and reused by every process on the
machine, so ``ledger token`` mints tokens that ``ledger serve`` accepts without any set-up.
Production refuses to start without a configured key (``Settings``).

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

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import jwt

from api.http.problems import ApiError
from ledger.actors import USER_ROLES, Caller
from ledger.domain.values import hidden_characters
from ledger.settings import Settings

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
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gig-ledger"'}


def unauthenticated(detail: str) -> ApiError:
    return ApiError(401, detail, headers=_CHALLENGE)


def signing_key(settings: Settings) -> str:
    """The configured secret, or the development one in ``var/`` (created on first use)."""
    if settings.auth_secret is not None:
        return settings.auth_secret.get_secret_value()
    return settings.local_secret("auth-secret")


class Authenticator:
    """Mints and checks tokens with one key, valid ``max_ttl`` at most."""

    def __init__(
        self,
        key: str,
        max_ttl: timedelta = DEFAULT_MAX_TTL,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``clock`` is now, for the lifetime of a token without ``iat`` (PyJWT checks
        ``exp`` and ``nbf`` against the real time)."""
        if max_ttl <= timedelta(0):
            raise ValueError("the longest token lifetime must be positive")
        self._key = key
        self.max_ttl = max_ttl
        self._clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def for_settings(cls, settings: Settings) -> Authenticator:
        """The installation's key, and its ``LEDGER_AUTH_MAX_TOKEN_HOURS``."""
        return cls(signing_key(settings), timedelta(hours=settings.auth_max_token_hours))

    def issue(
        self,
        subject: str,
        roles: Iterable[str] = ("user",),
        ttl: timedelta = DEFAULT_TTL,
        now: datetime | None = None,
    ) -> str:
        """Raises: ValueError for an empty or too long subject, one with a control or
        invisible character, an unknown role, or a ``ttl`` beyond ``max_ttl``."""
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

    def caller(self, authorization: str | None, request_id: str | None = None) -> Caller:
        """The caller a ``Bearer`` header names.

        Raises:
            ApiError: 401, for a missing, malformed, forged or expired token, or a token
                with claims this service does not grant.
        """
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("a bearer token is required")
        try:
            claims = jwt.decode(
                token.strip(),
                self._key,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "exp"]},
            )
            header = jwt.get_unverified_header(token.strip())  # read once the signature held
        except jwt.ExpiredSignatureError:
            raise unauthenticated("the token has expired") from None
        except jwt.PyJWTError:
            raise unauthenticated("the token is not valid") from None
        _check_type(header)
        self._check_lifetime(claims)
        return Caller(_subject(claims), _roles(claims), request_id)

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


def _hours(ttl: timedelta) -> str:
    return f"{ttl.total_seconds() / 3600:g}"


def _check_type(header: dict[str, Any]) -> None:
    kind = header.get("typ")
    if kind is not None and (not isinstance(kind, str) or kind.lower() not in TYPES):
        raise unauthenticated("the token's typ must be JWT")


def _subject(claims: dict[str, Any]) -> str:
    subject = claims["sub"]
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
