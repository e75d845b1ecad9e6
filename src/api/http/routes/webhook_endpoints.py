"""docs/api.md "Webhook endpoints": where the ledger delivers events, for admins only.

An endpoint is registered, changed, rotated and deleted by commands (its events say who and
when); the lists and deliveries are read from the ``webhooks`` read model (and honour
``X-Ledger-Min-Position``). The signing secret is answered by a registration and a
rotation only: it is derived again whenever a delivery is signed, and stored nowhere.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Response

from api.delivery.addresses import UnsafeAddress, check_url
from api.delivery.signing import secret_for
from api.http import schemas
from api.http.deps import AdminDep, LedgerDep, NewId, ReadModelsDep, SettingsDep, fresh
from api.http.problems import ApiError
from api.http.routes.common import Cursor, Limit, api_router, parse_id, tag
from ledger.domain.endpoint import WebhookEndpoint
from ledger.errors import NotFound, ValidationFailed
from ledger.service import Done
from ledger.settings import Settings
from projections.read_models import ReadModels
from projections.webhooks.projection import endpoint_row
from projections.webhooks.queries import endpoint_view

router = api_router(prefix="/v1", tags=["webhooks"])
Fresh = Depends(fresh("webhooks"))


def _key(settings: Settings) -> str:
    key = settings.endpoint_key
    if key is None:
        raise ApiError(
            409,
            "webhook endpoints need LEDGER_WEBHOOK_KEY, which their secrets are derived from",
            code="webhooks_not_configured",
        )
    return key


def _safe(url: str, settings: Settings) -> str:
    try:
        return check_url(url, production=settings.environment == "production")
    except UnsafeAddress as refused:
        raise ValidationFailed(str(refused), field="url") from None


def _answer(response: Response, done: Done[WebhookEndpoint]) -> dict[str, Any]:
    tag(response, done.aggregate.version, done.position)
    return endpoint_view(endpoint_row(done.aggregate))


def _with_secret(response: Response, done: Done[WebhookEndpoint], key: str) -> dict[str, Any]:
    endpoint = done.aggregate
    return {**_answer(response, done), "secret": secret_for(key, endpoint.id, endpoint.generation)}


@router.post(
    "/webhook-endpoints", status_code=201, response_model=schemas.WebhookEndpointWithSecret
)
def register_endpoint(
    body: schemas.WebhookEndpointIn,
    caller: AdminDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    new_id: NewId,
    response: Response,
) -> dict[str, Any]:
    """Deliver events of the types named (or ``*``) to ``url``; the answer holds the
    signing secret, which is never shown again."""
    key = _key(settings)
    url = _safe(body.url, settings)
    done = ledger.register_endpoint(caller, url, body.events, body.description, new_id)
    response.headers["Location"] = f"/v1/webhook-endpoints/{done.aggregate.id}"
    return _with_secret(response, done, key)


@router.get(
    "/webhook-endpoints",
    response_model=schemas.Page[schemas.WebhookEndpoint],
    dependencies=[Fresh],
)
def list_endpoints(
    _: AdminDep, models: ReadModelsDep, limit: Limit = 20, starting_after: Cursor = None
) -> dict[str, Any]:
    """Every endpoint not deleted, newest first."""
    return models.webhooks.endpoints(limit, starting_after).as_api()


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=schemas.WebhookEndpoint,
    dependencies=[Fresh],
)
def get_endpoint(endpoint_id: str, _: AdminDep, models: ReadModelsDep) -> dict[str, Any]:
    return _visible(models, endpoint_id)


def _visible(models: ReadModels, endpoint_id: str) -> dict[str, Any]:
    """Raises: NotFound (unknown, malformed or deleted)."""
    found = models.webhooks.endpoint(str(parse_id(endpoint_id, "webhook endpoint")))
    if found is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return dict(found)


@router.patch("/webhook-endpoints/{endpoint_id}", response_model=schemas.WebhookEndpoint)
def change_endpoint(
    endpoint_id: str,
    body: schemas.WebhookEndpointPatchIn,
    caller: AdminDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    response: Response,
) -> dict[str, Any]:
    """Change the URL, the events, the description, or enable/disable it: disabling holds
    its deliveries, enabling sends what waited and clears the reason the ledger gave."""
    eid = parse_id(endpoint_id, "webhook endpoint")
    url = None if body.url is None else _safe(body.url, settings)
    done = ledger.change_endpoint(
        caller, eid, url=url, events=body.events, description=body.description,
        enabled=body.enabled,
    )  # fmt: skip
    return _answer(response, done)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(
    endpoint_id: str, caller: AdminDep, ledger: LedgerDep, response: Response
) -> Response:
    """Nothing more is delivered to it, and what waited for it is given up."""
    done = ledger.delete_endpoint(caller, parse_id(endpoint_id, "webhook endpoint"))
    return Response(status_code=204, headers={"X-Ledger-Position": str(done.position)})


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=schemas.WebhookEndpointWithSecret,
)
def rotate_secret(
    endpoint_id: str,
    caller: AdminDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    response: Response,
) -> dict[str, Any]:
    """A new secret signs from now on; the previous one signs beside it for 24 hours
    (two ``v1`` in ``Ledger-Signature``). The answer holds the new secret."""
    key = _key(settings)
    done = ledger.rotate_endpoint_secret(caller, parse_id(endpoint_id, "webhook endpoint"))
    return _with_secret(response, done, key)


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=schemas.Page[schemas.WebhookDelivery],
    dependencies=[Fresh],
)
def deliveries(
    endpoint_id: str,
    _: AdminDep,
    models: ReadModelsDep,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    """The endpoint's deliveries, newest event first, each with its attempts."""
    found = _visible(models, endpoint_id)
    return models.webhooks.deliveries(found["id"], limit, starting_after).as_api()


@router.post(
    "/webhook-deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=schemas.WebhookDelivery,
)
def retry_delivery(
    delivery_id: str, _: AdminDep, models: ReadModelsDep, ledger: LedgerDep
) -> dict[str, Any]:
    """Send a delivery again now (a delivered one too: receivers deduplicate on the
    event id); one being sent at this moment is left to finish."""
    did = str(parse_id(delivery_id, "webhook delivery"))
    models.webhooks.retry(did, ledger.clock())
    found = models.webhooks.delivery(did)
    if found is None:
        raise NotFound(f"webhook delivery {delivery_id} not found")
    return found
