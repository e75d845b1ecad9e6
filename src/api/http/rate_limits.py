"""Per-caller rate limits on commands and per-address limits on failed authentication,
answered 429 ``rate_limited`` with ``Retry-After`` (the ``limits`` library counts).

Two limits, each a ``limits`` rate string from the settings (``0``/``off`` disables it):

- **Commands** (``LEDGER_RATE_LIMIT_COMMANDS``; unset: 120/minute in production, off in
  development): every request with a valid token whose method is not a safe one (``GET``,
  ``HEAD``, ``OPTIONS``) counts against the
  token's ``sub``, whatever it is then answered (a refusal and an idempotent replay
  included: each still cost a request). Past the limit the request is answered 429 before
  its body is read, and nothing runs.
- **Failed authentication** (``LEDGER_RATE_LIMIT_FAILED_AUTH``; unset: 300/minute;1000/hour
  in production, off in development, where test tools send floods of bad tokens on purpose):
  every request without a valid token that the API answers 401 counts against the client's
  address. Past
  the limit, every further request from that address **without a valid token** is answered
  429 at once, before the app checks anything (so guessing tokens costs the guesser, not
  us); a request from the same address **with** a valid token goes on as usual, so a
  shared address (an office behind NAT) is not shut out by one bad client. The address is
  the ASGI client's: behind a proxy on another host, set ``FORWARDED_ALLOW_IPS`` to the
  proxy's address (``ledger serve``'s uvicorn reads it) so it is the caller's, not the proxy's.

Only ``/v1`` is limited, and not its gateway webhook (signed, sent by YouCanPay, not a
caller): the operations probes (``/healthz``, ``/readyz``, ``/metrics``), the checkout and
sandbox pages and the OpenAPI document are never counted.

Counting is the moving window (``MovingWindowRateLimiter``): at most N requests in any
window of the period, with no burst of 2N across a boundary, and ``Retry-After`` is the
seconds until the oldest counted request leaves the window. The counts live in
``LEDGER_RATE_LIMIT_STORAGE``: ``memory://`` keeps them in this process (several processes
then each allow the limit), ``redis://…`` shares them (``pip install 'limits[redis]'``;
the calls then run in a worker thread, and a Redis that fails lets requests through, logged,
rather than refusing everyone). The library offers no PostgreSQL storage.

**Where it sits** (``app.create_app``): request id → metrics → **rate limits** → body limit
→ idempotency → FastAPI. After ``RequestId`` and the metrics, so a 429 carries its
``X-Request-Id`` and is counted like any answer; before the body limit and idempotency, so
a refused request costs no body read and no key claim, and a 429 is never kept as a key's
answer (the retry after ``Retry-After`` runs for real). The valid caller it decoded is left
in ``scope["state"]["caller"]``, so the route does not decode the token again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from urllib.parse import quote

from anyio import to_thread
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, MovingWindowSupport, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.auth import Authenticator
from api.http.middleware import header
from api.http.problems import ApiError, problem
from ledger.actors import Caller
from ledger.settings import RATE_LIMITS_OFF, Settings

log = logging.getLogger("api")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LIMITED_PREFIX = "/v1/"
EXEMPT = frozenset({"/v1/webhooks/youcanpay"})
"""Paths under ``/v1`` that are not a caller's: the gateway's signed webhook."""


def rates(value: str) -> list[RateLimitItem]:
    """A setting's rates; none for ``0``/``off``."""
    return [] if value.strip().lower() in RATE_LIMITS_OFF else parse_many(value)


def limited(path: str) -> bool:
    return path.startswith(LIMITED_PREFIX) and path.rstrip("/") not in EXEMPT


class RateLimits:
    """Pure ASGI middleware answering 429 past the commands or failed-auth limits."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.commands = rates(settings.commands_rate)
        self.failed_auth = rates(settings.failed_auth_rate)
        storage = storage_from_string(settings.rate_limit_storage, wrap_exceptions=True)
        assert isinstance(storage, MovingWindowSupport)  # memory and Redis both are
        self.limiter = MovingWindowRateLimiter(storage)
        self.in_thread = not isinstance(storage, MemoryStorage)  # Redis does I/O

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not limited(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            caller = await _caller(scope)
        except ApiError as error:  # the identity provider down: not a failed authentication
            await problem(error.status, error.detail, code=error.code, headers=error.headers)(
                scope, receive, send
            )
            return
        if caller is not None:
            scope.setdefault("state", {})["caller"] = caller
            if self.commands and scope["method"] not in SAFE_METHODS:
                refused = await self._count(self.commands, "commands", caller.id, hit=True)
                if refused is not None:
                    rate, wait = refused
                    detail = f"too many commands: at most {rate} per caller; retry in {wait} s"
                    await _too_many(detail, wait)(scope, receive, send)
                    return
            await self.app(scope, receive, send)
            return
        if not self.failed_auth:
            await self.app(scope, receive, send)
            return
        address = scope["client"][0] if scope.get("client") else "unknown"
        # A token that is there and not valid is a failure already: counted at once, so a
        # burst of guesses sent together cannot all pass before the first is counted.
        guessed = header(scope, b"authorization") is not None
        refused = await self._count(self.failed_auth, "failed-auth", address, hit=guessed)
        if refused is not None:
            rate, wait = refused
            detail = (
                f"too many failed authentications from this address: at most {rate};"
                f" retry in {wait} s"
            )
            await _too_many(detail, wait)(scope, receive, send)
            return
        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        if status == 401 and not guessed:
            await self._count(self.failed_auth, "failed-auth", address, hit=True)

    async def _count(
        self, items: Sequence[RateLimitItem], kind: str, who: str, *, hit: bool
    ) -> tuple[RateLimitItem, int] | None:
        """Count one request of ``who`` (``hit``) or only look (not ``hit``): the first
        rate it is past, with the seconds until the window frees, or ``None``."""
        if self.in_thread:
            return await to_thread.run_sync(self._count_now, items, kind, who, hit)
        return self._count_now(items, kind, who, hit)

    def _count_now(
        self, items: Sequence[RateLimitItem], kind: str, who: str, hit: bool
    ) -> tuple[RateLimitItem, int] | None:
        key = quote(who, safe="")  # the library joins identifiers with "/"
        try:
            for item in items:
                allowed = (
                    self.limiter.hit(item, kind, key) if hit else self.limiter.test(item, kind, key)
                )
                if not allowed:
                    reset = self.limiter.get_window_stats(item, kind, key).reset_time
                    return item, max(1, math.ceil(reset - time.time()))
        except StorageError as error:  # a shared store down: let requests through
            log.warning("the rate-limit storage failed; not limiting: %s", error)
        return None


async def _caller(scope: Scope) -> Caller | None:
    """The caller of a valid bearer token, or ``None``.

    Raises: ApiError, other than 401 (the identity provider cannot be reached).
    """
    auth: Authenticator = scope["app"].state.auth
    request_id = scope.get("state", {}).get("request_id")
    try:
        return await auth.caller(header(scope, b"authorization"), request_id)
    except ApiError as error:
        if error.status != 401:
            raise
        return None


def _too_many(detail: str, wait: int) -> ASGIApp:
    return problem(429, detail, headers={"Retry-After": str(wait)})
