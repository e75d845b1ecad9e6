"""The HTTP contract through the ASGI app (``TestClient`` runs the lifespan, so the store,
the projections and the idempotency table are real), on SQLite and PostgreSQL.

Reads after writes pass ``X-Ledger-Min-Position`` (see ``Api.after``), exactly as a real
client would: the runner's condition wakes the request, nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.http.app import create_app
from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.money import to_centimes
from ledger.settings import Settings
from tests.conftest import FakeClock

BASIC = {
    "packageId": "basic",
    "price": 100.0,
    "deliveryDays": 3,
    "revisions": 1,
    "description": "One logo",
}


@dataclass
class Api:
    """A test client plus the ways tests act as someone."""

    client: TestClient
    app: FastAPI

    def headers(self, sub: str, *roles: str, **extra: str) -> dict[str, str]:
        token = self.app.state.auth.issue(sub, roles or ("user",))
        return {"Authorization": f"Bearer {token}", **extra}

    def as_(self, sub: str, *roles: str) -> dict[str, str]:
        return self.headers(sub, *roles)

    @staticmethod
    def after(response: httpx.Response) -> dict[str, str]:
        """The header that makes a read wait for ``response``'s events."""
        return {"X-Ledger-Min-Position": response.headers["X-Ledger-Position"]}

    def gig(self, freelancer: str = "freelancer-1", **fields: Any) -> dict[str, Any]:
        body = {"title": "Logo design", "packages": [BASIC], **fields}
        response = self.client.post("/v1/gigs", json=body, headers=self.as_(freelancer))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def order(
        self, gig: dict[str, Any], client: str = "client-1", package: str = "basic"
    ) -> dict[str, Any]:
        body = {"gigId": gig["id"], "packageId": package}
        response = self.client.post("/v1/orders", json=body, headers=self.as_(client))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def paid_order(
        self, gig: dict[str, Any], client: str = "client-1", transaction: str = "tx-1"
    ) -> dict[str, Any]:
        """An order the gateway has confirmed (as its webhook would)."""
        order = self.order(gig, client)
        self.open_payment(order, client)
        position = self.confirm(order, transaction)
        return self.read(f"/v1/orders/{order['id']}", client, position=position)

    def open_payment(self, order: dict[str, Any], client: str = "client-1") -> dict[str, Any]:
        """``POST /v1/orders/{id}/payments`` by card: must be 201; the payment."""
        response = self.client.post(
            f"/v1/orders/{order['id']}/payments",
            json={"paymentMethod": "credit_card"},
            headers=self.as_(client),
        )
        assert response.status_code == 201, response.text
        return dict(response.json())

    def confirm(self, order: dict[str, Any], transaction: str = "tx-1") -> int:
        """The gateway confirms the order's payment; the position of its last event."""
        done = self.app.state.ledger.confirm_payment(
            Caller.system("gateway"),
            payment_id_for(UUID(order["id"])),
            transaction,
            to_centimes(order["totalAmount"]),
            "MAD",
        )
        return int(done.position)

    def read(self, path: str, sub: str, *roles: str, position: int = 0) -> dict[str, Any]:
        """GET ``path`` as ``sub`` once the read models reached ``position``; must be 200."""
        headers = {**self.as_(sub, *roles), "X-Ledger-Min-Position": str(position)}
        response = self.client.get(path, headers=headers)
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def api(settings: Settings, clock: FakeClock) -> Iterator[Api]:
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        yield Api(client, app)
