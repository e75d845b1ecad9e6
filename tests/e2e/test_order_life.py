"""A whole order life over real HTTP against a real ``ledger serve`` process.

The payment is confirmed by this test process acting as the gateway on the same database
(the gateway's own HTTP routes arrive with the payments issue); everything else is HTTP.
Tokens come from ``ledger token``, the way an operator mints them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.payment import payment_id_for
from ledger.settings import load_settings

PACKAGE = {
    "packageId": "standard",
    "price": 250.75,
    "deliveryDays": 5,
    "revisions": 1,
    "description": "A logo and a card",
}


def token(cwd: Path, env: dict[str, str], sub: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "token", "--sub", sub],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def confirm_payment(database_url: str, var_dir: Path, order_id: str) -> int:
    settings = load_settings(
        LEDGER_DATABASE_URL=database_url, LEDGER_VAR_DIR=str(var_dir), _env_file=None
    )
    with build_ledger(settings) as ledger:
        payment = payment_id_for(UUID(order_id))
        done = ledger.confirm_payment(Caller.system("gateway"), payment, "tx-e2e", 25_075, "MAD")
    return done.position


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_whole_order_life_over_http(
    backend: str, serve, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database_url = (
        f"sqlite:///{tmp_path}/var/ledger.db"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    server = serve(LEDGER_DATABASE_URL=database_url)
    env = {**server.env, "LEDGER_DATABASE_URL": database_url}
    freelancer = {"Authorization": f"Bearer {token(tmp_path, env, 'fr-e2e')}"}
    client = {"Authorization": f"Bearer {token(tmp_path, env, 'cl-e2e')}"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        gig = http.post(
            "/v1/gigs", json={"title": "Logo", "packages": [PACKAGE]}, headers=freelancer
        )
        assert gig.status_code == 201, gig.text
        body = {"gigId": gig.json()["id"], "packageId": "standard"}
        placed = http.post("/v1/orders", json=body, headers={**client, "Idempotency-Key": "o-1"})
        assert placed.status_code == 201, placed.text
        assert placed.json()["totalAmount"] == 250.75
        order = placed.json()["id"]
        paying = http.post(
            f"/v1/orders/{order}/payments", json={"paymentMethod": "credit_card"}, headers=client
        )
        assert paying.status_code == 201, paying.text
        position = confirm_payment(database_url, tmp_path / "var", order)
        seen = http.get(
            f"/v1/orders/{order}", headers={**client, "X-Ledger-Min-Position": str(position)}
        )
        assert (seen.status_code, seen.json()["status"]) == (200, "processing"), seen.text
        for who, command, payload in [
            (freelancer, "accept", None),
            (client, "requirements", {"text": "Blue"}),
            (freelancer, "deliver", {"message": "Done"}),
            (client, "complete", None),
            (client, "review", {"rating": 4}),
        ]:
            answer = http.post(f"/v1/orders/{order}/{command}", json=payload, headers=who)
            assert answer.status_code == 200, answer.text
        after = {"X-Ledger-Min-Position": answer.headers["X-Ledger-Position"]}
        history = http.get(f"/v1/orders/{order}/history", headers={**client, **after}).json()
        assert [entry["event"] for entry in history["data"]] == [
            "OrderPlaced",
            "OrderPaymentConfirmed",
            "OrderAccepted",
            "RequirementsSubmitted",
            "OrderDelivered",
            "OrderCompleted",
            "OrderReviewed",
        ]
        rated = http.get(f"/v1/gigs/{gig.json()['id']}", headers={**freelancer, **after}).json()
        assert rated["rating"] == {"average": 4.0, "count": 1}
        assert http.get("/readyz").status_code == 200
