"""The OpenAPI document, told as the API behaves, so clients generated from it work.

FastAPI documents each route's success and its own 422; the API answers more than that. The
document is completed here, once, from two sources:

- what every operation of a kind can answer, whatever it does (``_common``): 400 for input
  the middleware refuses, 401 where a token is needed, 413 and a malformed body where there
  is one, 422 where there are parameters or a body, 409 and 422 for ``Idempotency-Key`` on
  every POST, 503 wherever the database is read;
- what each route can answer beyond that (``ROUTE_ERRORS``, by the route's name; a test
  fails for a route missing from it).

Every error is a ``Problem`` as ``application/problem+json``, with the ``code`` values its
status can carry (``CODES``). The headers the API reads get their rules (``HEADERS``), and
the bodies FastAPI cannot see (the webhook, the sandbox's form) are declared by their routes.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer

from api.http.deps import asks_caller
from api.http.idempotency.keys import MAX_KEY

PROBLEM = "#/components/schemas/Problem"
CODES: dict[int, tuple[str, ...]] = {
    400: ("bad_request", "malformed_json", "invalid_header"),
    401: ("unauthenticated", "invalid_signature"),
    403: ("forbidden",),
    404: ("not_found", "transaction_not_found"),
    409: (
        "conflict",
        "sandbox_mismatch",
        "invalid_transition",
        "gig_archived",
        "already_applied",
        "idempotency_conflict",
        "idempotency_in_progress",
        "webhooks_not_configured",
    ),
    412: ("version_mismatch",),
    413: ("payload_too_large",),
    422: ("validation_failed", "invalid_cursor"),
    429: ("rate_limited",),
    502: ("gateway_refused",),
    503: (
        "not_ready",
        "busy",
        "gateway_unavailable",
        "outcome_unknown",
        "identity_provider_unavailable",
    ),
}
"""The ``code`` values an error of each status carries (``ledger.errors`` and the edge's)."""

BEARER = HTTPBearer(
    bearerFormat="JWT",
    description=(
        "A JWT from the marketplace's identity provider, or one signed with this"
        " installation's shared key (claims sub, roles, exp)."
    ),
)
"""The bearer scheme (``/docs`` gets its Authorize button), on every operation that asks who
calls (``deps.asks_caller``); the token itself is checked by ``Authenticator``."""

MEANING = {
    400: "Input refused before it was read: a malformed JSON body or header, a NUL in the query",
    401: "No valid bearer token (or, for webhooks, no valid signature)",
    403: "The caller may see this but may not do it",
    404: "Unknown, or not the caller's to see (its existence is not revealed)",
    409: "Refused by the state of what it acts on, or by the Idempotency-Key's first request",
    412: "If-Match names another version than the current one",
    413: "The body exceeds 64 KiB",
    422: "A field, parameter or header breaks its rule (``errors`` names each)",
    429: "Too many commands from this caller, or failed authentications from this address"
    " (Retry-After)",
    502: "The payment gateway refused the request",
    503: (
        "Try again (Retry-After): the database, the read models, the gateway or the"
        " identity provider is not ready"
    ),
}

ROUTE_ERRORS: dict[str, tuple[int, ...]] = {
    "create_gig": (403, 409),
    "list_gigs": (),
    "get_gig": (404,),
    "revise_gig": (403, 404, 409),
    "archive_gig": (403, 404),
    "place_order": (403, 404, 409),
    "list_orders": (403,),
    "get_order": (404,),
    "order_history": (404,),
    "order_timeline": (404,),
    "accept": (403, 404, 409, 412),
    "complete": (403, 404, 409, 412),
    "cancellation_requests_accept": (403, 404, 409, 412),
    "cancellation_requests_decline": (403, 404, 409, 412),
    "cancellation_requests_withdraw": (403, 404, 409, 412),
    "submit_requirements": (403, 404, 409, 412),
    "deliver": (403, 404, 409, 412),
    "request_revision": (403, 404, 409, 412),
    "request_cancellation": (403, 404, 409, 412),
    "request_extension": (403, 404, 409, 412),
    "extensions_accept": (403, 404, 409, 412),
    "extensions_decline": (403, 404, 409, 412),
    "cancel": (403, 404, 409, 412),
    "open_dispute": (403, 404, 409, 412),
    "resolve_dispute": (403, 404, 409, 412),
    "review": (403, 404, 409, 412),
    "create_payment": (403, 404, 409, 502),
    "sync_payment": (403, 404, 409, 502),
    "confirm_refund": (403, 404, 409),
    "order_payment": (404,),
    "list_payments": (403,),
    "get_payment": (404,),
    "accounts": (403,),
    "entries": (403,),
    "trial_balance": (403,),
    "my_balance": (),
    "notifications": (),
    "mark_read": (404,),
    "preferences": (),
    "change_preferences": (403,),
    "events": (403,),
    "verify": (403,),
    "youcanpay": (401, 404, 409),
    "checkout_result": (404,),
    "payment_form": (404,),
    "pay": (404, 409),
    "agency": (404,),
    "pay_cash": (404, 409),
    "expire_cash": (404, 409),
    "payment_methods": (),
    "post_message": (403, 404, 409),
    "list_messages": (404,),
    "register_endpoint": (403, 409),
    "list_endpoints": (403,),
    "get_endpoint": (403, 404),
    "change_endpoint": (403, 404, 409),
    "delete_endpoint": (403, 404, 409),
    "rotate_secret": (403, 404, 409),
    "deliveries": (403, 404),
    "retry_delivery": (403, 404),
    "healthz": (),
    "readyz": (),
    "metrics": (),
}
"""What each route can answer beyond what every operation of its kind can (``_common``)."""

NO_DATABASE = frozenset({"healthz", "checkout_result"})
"""Routes that read nothing stored, so never answer 503."""

HEADERS: dict[str, dict[str, Any]] = {
    "idempotency-key": {
        "description": (
            "Makes a retried POST answer its first answer instead of acting twice; kept 24 h"
            " per caller, bound to the first request (another request under it is 409"
            " idempotency_conflict)."
        ),
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_KEY,
            "pattern": "^[\\x20-\\x7e]+$",
        },
    },
    "if-match": {
        "description": 'The version the command expects, as one strong ETag ("3"), or *.',
        "schema": {"type": "string", "pattern": '^("[0-9]{1,9}"|[*])$'},
    },
    "x-ledger-min-position": {
        "description": (
            "A position from X-Ledger-Position: the read waits (up to 5 s) until the read"
            " models have reached it."
        ),
        "schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
    },
}


UUID_PATH_PARAMETERS = frozenset({"gig_id", "order_id", "payment_id", "notification_id"})
"""Path ids that are UUIDs (the routes take any text and answer 404 for what is not one)."""


_ORDER = {"order_id": "$response.body#/id"}
_CARD = {"cardNumber": "4242424242424242", "expiry": "12/99", "cvv": "123", "cardHolderName": "A"}


def _each(parameters: dict[str, str], *targets: str) -> dict[str, dict[str, Any]]:
    return {target: {"parameters": parameters} for target in targets}


LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("create_gig", "201"): {
        "place_order": {"requestBody": {"gigId": "$response.body#/id", "packageId": "basic"}},
        **_each({"gig_id": "$response.body#/id"}, "get_gig", "revise_gig"),
    },
    ("place_order", "201"): _each(
        _ORDER, "create_payment", "get_order", "order_history", "order_timeline", "cancel"
    ),
    ("create_payment", "201"): {
        "pay": {
            "parameters": {"token_id": "$response.body#/checkout/tokenId"},
            "requestBody": _CARD,
        },
        **_each({"payment_id": "$response.body#/id"}, "get_payment", "sync_payment"),
    },
    ("pay", "200"): _each({"order_id": "$response.body#/orderId"}, "accept", "order_payment"),
    ("accept", "200"): _each(
        _ORDER,
        "deliver",
        "submit_requirements",
        "request_extension",
        "request_cancellation",
        "open_dispute",
    ),
    ("deliver", "200"): _each(_ORDER, "complete", "request_revision"),
    ("request_revision", "200"): _each(_ORDER, "deliver"),
    ("complete", "200"): _each(_ORDER, "review"),
    ("open_dispute", "200"): _each(_ORDER, "resolve_dispute"),
    ("request_extension", "200"): _each(_ORDER, "extensions_accept", "extensions_decline"),
    ("request_cancellation", "200"): _each(
        _ORDER,
        "cancellation_requests_accept",
        "cancellation_requests_decline",
        "cancellation_requests_withdraw",
    ),
}
"""How an answer leads to the next request (OpenAPI links): a gig → an order → its
payment → the sandbox pays → accept → deliver → complete → review, and the side roads."""


def install(app: FastAPI) -> None:
    """Serve the completed document at ``/openapi.json`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    scheme = jsonable_encoder(BEARER.model, by_alias=True, exclude_none=True)
    components["securitySchemes"] = {BEARER.scheme_name: scheme}
    secured = {
        route.name
        for route in app.routes
        if isinstance(route, APIRoute) and asks_caller(route.dependant)
    }
    for operations in schema["paths"].values():
        for operation in operations.values():
            if operation["operationId"] in secured:
                _secure(operation)
    schemas["Problem"] = _problem_schema()
    for status, codes in CODES.items():  # one named schema per status, shared by operations
        schemas[f"Problem{status}"] = {
            "title": f"Problem{status}",
            "allOf": [{"$ref": PROBLEM}, {"properties": {"code": {"enum": list(codes)}}}],
        }
    for operations in schema["paths"].values():
        for method, operation in operations.items():
            _complete(operation, method.upper())
    for unused in ("HTTPValidationError", "ValidationError"):
        components["schemas"].pop(unused, None)
    _hoist_definitions(schema["paths"], components["schemas"])
    return schema


def _secure(operation: dict[str, Any]) -> None:
    """Require the bearer scheme, just after the operation's name, where FastAPI placed it
    when the scheme was a dependency (on every operation with parameters)."""
    items = list(operation.items())
    after = "deprecated" if "deprecated" in operation else "operationId"
    items.insert(list(operation).index(after) + 1, ("security", [{BEARER.scheme_name: []}]))
    operation.clear()
    operation.update(items)


def _hoist_definitions(node: Any, schemas: dict[str, Any]) -> None:
    """Bodies declared from a model's own JSON schema (the webhook's) carry their
    ``$defs``: they become components, and their references point there, as everywhere."""
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
            _hoist_definitions(definition, schemas)
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + reference.removeprefix("#/$defs/")
        for value in node.values():
            _hoist_definitions(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _hoist_definitions(value, schemas)


def operation_id(route: APIRoute) -> str:
    """Each operation is named after its route's function (``place_order``), which is what a
    generated client calls it."""
    return route.name


def _complete(operation: dict[str, Any], method: str) -> None:
    name = operation["operationId"]
    parameters = [p for p in operation.get("parameters", []) if p["name"] != "authorization"]
    keyed = method == "POST" and "security" in operation  # the key is scoped to the caller
    if keyed and not any(p["name"] == "idempotency-key" for p in parameters):
        parameters.append({"name": "idempotency-key", "in": "header", "required": False})
    for parameter in parameters:
        if parameter["in"] == "header" and parameter["name"] in HEADERS:
            parameter.update(HEADERS[parameter["name"]])
        if parameter["in"] == "path" and parameter["name"] in UUID_PATH_PARAMETERS:
            parameter["schema"] = {"type": "string", "format": "uuid"}
    if parameters:
        operation["parameters"] = parameters
    else:
        operation.pop("parameters", None)
    responses = operation["responses"]
    responses.pop("422", None)  # FastAPI's own shape; ours is a Problem
    for status, answer in responses.items():
        links = LINKS.get((name, status), {})
        if links:
            answer["links"] = {
                target: {"operationId": target, **how} for target, how in links.items()
            }
    for status in sorted(_common(operation, name, method) | set(ROUTE_ERRORS[name])):
        responses[str(status)] = _problem_response(status)


def _common(operation: dict[str, Any], name: str, method: str) -> set[int]:
    statuses = {400}
    if "security" in operation:
        statuses |= {401, 429}  # failed auth per address; commands per caller (rate_limits)
        statuses.add(503)  # a token whose key the identity provider cannot give now
    if "requestBody" in operation:
        statuses |= {413, 422}
    if operation.get("parameters"):
        statuses.add(422)
    if method == "POST" and "security" in operation:
        statuses |= {409, 422}
    if name not in NO_DATABASE:
        statuses.add(503)
    return statuses


def _problem_response(status: int) -> dict[str, Any]:
    codes = CODES[status]
    schema = {"$ref": f"{PROBLEM}{status}"}
    answer: dict[str, Any] = {
        "description": f"{MEANING[status]} (code: {', '.join(codes)})",
        "content": {"application/problem+json": {"schema": schema}},
    }
    if status in (409, 429, 503):
        answer["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before a retry (idempotency_in_progress, 429, 503)",
                "schema": {"type": "integer", "minimum": 0},
            }
        }
    return answer


def _problem_schema() -> dict[str, Any]:
    return {
        "title": "Problem",
        "description": "An RFC 9457 problem: every error answer has this shape.",
        "type": "object",
        "required": ["type", "title", "status", "detail", "code"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "errors": {
                "description": "On 422: each field (or header) refused and why.",
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }
