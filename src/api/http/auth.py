"""Bearer tokens: HS256 JWTs with ``sub``, ``roles`` and ``exp`` (PyJWT does the crypto).

The key is ``LEDGER_AUTH_SECRET``. In development, when it is unset, a random key is
generated once into ``var/auth-secret`` (mode 0600) and reused by every process on the
machine, so ``ledger token`` mints tokens that ``ledger serve`` accepts without any set-up.
Production refuses to start without a configured key (``Settings``).

A token can only claim the user roles (``user``, ``support``, ``auditor``, ``admin``): the
``gateway`` and ``clock`` capacities exist inside the process alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from api.http.problems import ApiError
from ledger.actors import USER_ROLES, Caller
from ledger.settings import Settings

ALGORITHM = "HS256"
MAX_SUBJECT = 255
DEFAULT_TTL = timedelta(hours=12)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gig-ledger"'}


def unauthenticated(detail: str) -> ApiError:
    return ApiError(401, detail, headers=_CHALLENGE)


def signing_key(settings: Settings) -> str:
    """The configured secret, or the development one in ``var/`` (created on first use)."""
    if settings.auth_secret is not None:
        return settings.auth_secret.get_secret_value()
    return settings.local_secret("auth-secret")


class Authenticator:
    """Mints and checks tokens with one key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def issue(
        self,
        subject: str,
        roles: Iterable[str] = ("user",),
        ttl: timedelta = DEFAULT_TTL,
        now: datetime | None = None,
    ) -> str:
        """Raises: ValueError for an empty or too long subject, or an unknown role."""
        roles = sorted(set(roles))
        if not subject or len(subject) > MAX_SUBJECT:
            raise ValueError(f"the subject must be 1 to {MAX_SUBJECT} characters")
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
        except jwt.ExpiredSignatureError:
            raise unauthenticated("the token has expired") from None
        except jwt.PyJWTError:
            raise unauthenticated("the token is not valid") from None
        return Caller(_subject(claims), _roles(claims), request_id)


def _subject(claims: dict[str, Any]) -> str:
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT or "\x00" in subject:
        raise unauthenticated("the token's subject is not valid")
    return subject


def _roles(claims: dict[str, Any]) -> frozenset[str]:
    roles = claims.get("roles", ["user"])
    if not isinstance(roles, list) or not roles or not all(isinstance(r, str) for r in roles):
        raise unauthenticated("the token's roles must be a non-empty list of names")
    if unknown := set(roles) - USER_ROLES:
        raise unauthenticated(f"the token claims unknown roles: {', '.join(sorted(unknown))}")
    return frozenset(roles)
