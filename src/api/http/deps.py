"""``Annotated`` dependencies: who asks, the ledger, the read models, and the headers.

The cheap ones are ``async``: FastAPI runs a plain ``def`` dependency in the thread pool,
and a thread hop per dependency per request costs more than the work itself. Only
``fresh``, which blocks on the projection runner, stays a thread-pool dependency.

Routes declare what they need (``caller: CallerDep``); the objects come from ``app.state``,
built once in the lifespan. Header parsing lives here, so each rule (``If-Match``,
``X-Ledger-Min-Position``, ``Idempotency-Key``) is written once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.dependencies.models import Dependant

from api.http.auth import Authenticator
from api.http.problems import ApiError
from ledger import access
from ledger.actors import Caller
from ledger.errors import Forbidden
from ledger.service import LedgerApp
from ledger.settings import Settings
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

MAX_WAIT_SECONDS = 5.0
_ETAG = re.compile(r'^\s*"(\d{1,9})"\s*$')
"""One strong ETag: ``If-Match`` compares strongly (RFC 9110), so a weak tag never matches."""


async def _ledger(request: Request) -> LedgerApp:
    ledger: LedgerApp = request.app.state.ledger
    return ledger


async def _read_models(request: Request) -> ReadModels:
    models: ReadModels = request.app.state.read_models
    return models


async def _caller(request: Request) -> Caller:
    """Who asks, from the bearer token, checked by ``Authenticator`` (every failure the same
    401 problem). The scheme is declared by ``openapi`` on each operation that depends on
    this: as a FastAPI ``Security`` sub-dependency it cost each request a second dependency
    to solve (15 to 20 µs, measured in-process), for a value nobody read."""
    known: Caller | None = getattr(request.state, "caller", None)  # set by ``Idempotency``
    if known is not None:
        return known
    auth: Authenticator = request.app.state.auth
    authorization = request.headers.get("authorization")
    return await auth.caller(authorization, getattr(request.state, "request_id", None))


async def _expected_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """``If-Match: "3"`` → 3; absent or ``*`` → no expectation.

    Raises: ApiError 400 for anything else (a list of tags, a bare number, a word).
    """
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match)
    if match is None:
        raise ApiError(400, 'If-Match must be one strong ETag, such as "3"', code="invalid_header")
    return int(match[1])


async def _new_id(request: Request) -> UUID | None:
    """The id a creating command gives what it creates: derived from the caller, the
    ``Idempotency-Key`` and the request (by ``idempotency.middleware.Idempotency``) when
    keyed, else new. The header is checked by that middleware and documented on every keyed
    POST by ``openapi``: declaring it here as well cost 22 µs a request (a quarter of what
    solving a placed order's dependencies costs), for the same document."""
    new_id: UUID | None = getattr(request.state, "new_id", None)
    return new_id


async def _staff_reader(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    """Raises: Forbidden, for anyone but support, auditors and admins (the books are not
    a party's to read: they show every order's money)."""
    if not caller.is_staff_reader:
        raise Forbidden("only support, auditors and admins may read this")
    return caller


async def _admin(caller: Annotated[Caller, Depends(_caller)]) -> Caller:
    """Raises: Forbidden, for anyone but admins (the webhook endpoints)."""
    access.require_admin(caller, "webhook endpoints")
    return caller


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


LedgerDep = Annotated[LedgerApp, Depends(_ledger)]
ReadModelsDep = Annotated[ReadModels, Depends(_read_models)]
CallerDep = Annotated[Caller, Depends(_caller)]
StaffReaderDep = Annotated[Caller, Depends(_staff_reader)]
AdminDep = Annotated[Caller, Depends(_admin)]
SettingsDep = Annotated[Settings, Depends(_settings)]
ExpectedVersion = Annotated[int | None, Depends(_expected_version)]
NewId = Annotated[UUID | None, Depends(_new_id)]


def asks_caller(dependant: Dependant) -> bool:
    """Whether solving ``dependant`` authenticates the caller (``CallerDep``, at any depth):
    the operations ``openapi`` documents with the bearer scheme."""
    return any(d.call is _caller or asks_caller(d) for d in dependant.dependencies)


def fresh(*names: str) -> Callable[..., None]:
    """A dependency honouring ``X-Ledger-Min-Position`` for routes reading ``names``.

    It authenticates first (a stranger must not hold a thread for seconds), answers at
    once for a position the store has not reached, and otherwise blocks on the runner's
    condition in the thread pool (never sleeping in steps).
    """

    def wait(
        request: Request,
        _: CallerDep,
        x_ledger_min_position: Annotated[int | None, Header(ge=0, le=2**62)] = None,
    ) -> None:
        if x_ledger_min_position is None:
            return
        runner: ProjectionRunner = request.app.state.runner
        if runner.wait_for(x_ledger_min_position, 0, names):
            return
        head = runner.app.recorder.max_notification_id() or 0
        if x_ledger_min_position > head:
            raise _not_ready(
                f"position {x_ledger_min_position} is beyond the last event in the store"
                f" (position {head}), so it is answered at once: send back the"
                " X-Ledger-Position a command answered"
            )
        if not runner.wait_for(x_ledger_min_position, MAX_WAIT_SECONDS, names):
            raise _not_ready(
                f"the read models have not reached position {x_ledger_min_position}"
                f" within {MAX_WAIT_SECONDS:g} s"
            )

    return wait


def _not_ready(detail: str) -> ApiError:
    return ApiError(503, detail, code="not_ready", headers={"Retry-After": "1"})
