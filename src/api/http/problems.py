"""Every error answer is RFC 9457 ``application/problem+json``, made here and nowhere else.

The ledger raises its own error tree (``ledger.errors``); this module maps each class to a
status once. FastAPI's and Starlette's own errors (validation, unknown route, wrong method,
malformed JSON) get the same shape, so a client parses one kind of error body. Anything else
is a bug of ours: it is logged with the request id and answered with a 500 that reveals
nothing — except a failure of the database itself, which is 503 ``not_ready`` with
``Retry-After`` (nothing was written; a retry may succeed).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from ledger.errors import (
    Busy,
    Conflict,
    Forbidden,
    InvalidTransition,
    LedgerError,
    NotFound,
    OutcomeUnknown,
    ValidationFailed,
    VersionMismatch,
)
from ledger.gateway.port import GatewayError, GatewayRefused, TransactionNotFound

log = logging.getLogger("api")
PROBLEM_JSON = "application/problem+json"

STATUS_OF: Sequence[tuple[type[LedgerError], int]] = (
    (TransactionNotFound, 404),  # before GatewayRefused, its base
    (GatewayRefused, 502),  # before GatewayError, its base
    (GatewayError, 503),
    (Busy, 503),  # transient: not kept as an idempotent answer, and retried
    (OutcomeUnknown, 503),  # the commit's fate unknown: retry under the same key
    (NotFound, 404),
    (Forbidden, 403),
    (InvalidTransition, 409),
    (VersionMismatch, 412),  # before Conflict, its base
    (Conflict, 409),
    (ValidationFailed, 422),
)
"""The first class an error is an instance of decides its status."""

CODE_OF_STATUS = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "version_mismatch",
    413: "payload_too_large",
    415: "unsupported_media_type",
    502: "gateway_refused",
    422: "validation_failed",
    429: "rate_limited",
    503: "not_ready",
}


class ApiError(Exception):
    """An error that only the HTTP edge knows (bad token, bad header, body too large…)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.code = code or CODE_OF_STATUS.get(status, "error")
        self.headers = dict(headers or {})
        self.errors = errors


def problem(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code or CODE_OF_STATUS.get(status, "error"),
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def status_of(error: LedgerError) -> int:
    return next((status for kind, status in STATUS_OF if isinstance(error, kind)), 500)


def ledger_problem(error: LedgerError) -> JSONResponse:
    errors = None
    if isinstance(error, ValidationFailed):
        errors = [{"field": error.field or "", "message": error.detail}]
    status = status_of(error)
    headers = {"Retry-After": "1"} if status == 503 else None
    return problem(status, error.detail, code=error.code, errors=errors, headers=headers)


def _validation_problem(error: RequestValidationError) -> JSONResponse:
    issues = list(error.errors())
    if any(issue.get("type") == "json_invalid" for issue in issues):
        return problem(400, "the request body is not valid JSON", code="malformed_json")
    errors = field_errors(issues)
    return problem(422, summary(errors), errors=errors)


def field_errors(issues: Sequence[Any]) -> list[dict[str, str]]:
    """pydantic's error list as docs/api.md's ``errors: [{"field", "message"}]``."""
    return [{"field": _field(issue["loc"]), "message": issue["msg"]} for issue in issues]


def summary(errors: list[dict[str, str]]) -> str:
    return "; ".join(f"{e['field'] or 'body'}: {e['message']}" for e in errors)


def invalid(error: ValidationError, what: str) -> ApiError:
    """A 422 for input read with a pydantic model outside FastAPI's own parsing."""
    errors = field_errors(error.errors())
    return ApiError(422, f"{what}: {summary(errors)}", errors=errors)


def _field(location: Sequence[Any]) -> str:
    """``("body", "packages", 0, "price")`` → ``packages.0.price``; headers keep their name."""
    parts = [str(part) for part in location]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts)


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of the app serves on ``path`` (for ``Allow``), read from the
    app's own OpenAPI paths, compiled once."""
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "allow", None)
    if table is None:
        table = [
            (compile_path(template)[0], [method.upper() for method in operations])
            for template, operations in app.openapi()["paths"].items()
        ]
        app.state.allow = table
    return sorted({m for pattern, methods in table if pattern.match(path) for m in methods})


STORE_ERRORS = (OperationalError, InterfaceError)
"""What the database's own failure raises (down, unreachable, a connection it closed, a
lock not granted in time), after the library's and our own retries."""


def store_down(path: str, request_id: str, error: Exception) -> JSONResponse:
    """503 ``not_ready`` with ``Retry-After``: nothing of the request was written, and a
    retry may well succeed."""
    log.warning("the event store failed in %s [%s]: %s", path, request_id, error)
    detail = "the event store is not available; nothing was recorded, retry shortly"
    return problem(503, detail, code="not_ready", headers={"Retry-After": "1"})


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into problem+json."""

    @app.exception_handler(LedgerError)
    async def on_ledger_error(_: Request, error: LedgerError) -> JSONResponse:
        return ledger_problem(error)

    @app.exception_handler(ApiError)
    async def on_api_error(_: Request, error: ApiError) -> JSONResponse:
        errors = error.errors
        if errors is None and error.status == 422:
            errors = [{"field": "", "message": error.detail}]
        return problem(
            error.status, error.detail, code=error.code, headers=error.headers, errors=errors
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        return _validation_problem(error)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        detail = error.detail if isinstance(error.detail, str) else HTTPStatus(error.status_code)
        headers = dict(error.headers or {})
        if error.status_code == 405:  # the router names one route's methods; the path has more
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
        return problem(error.status_code, str(detail), headers=headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def on_store_down(request: Request, error: PersistenceError) -> JSONResponse:
        """The database failed (down, unreachable, a lock not granted in time): nothing of
        the command was written, and a retry may well succeed."""
        request_id = getattr(request.state, "request_id", "-")
        return store_down(request.url.path, request_id, error)

    @app.exception_handler(Exception)
    async def on_bug(request: Request, error: Exception) -> JSONResponse:
        request_id = getattr(request.state, "request_id", "-")
        log.exception("unhandled error in %s %s [%s]", request.method, request.url.path, request_id)
        return problem(500, f"internal error; quote request id {request_id}", code="internal")
