"""A whole order life over real HTTP against a real ``ledger serve`` process.

The payment is confirmed by this test process acting as the gateway on the same database
(the gateway's own HTTP routes arrive with the payments issue); everything else is HTTP.
Tokens come from ``ledger token``, the way an operator mints them.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import httpx

from ledger.actors import Caller
from ledger.bootstrap import build_ledger
from ledger.domain.payment import payment_id_for
from ledger.settings import load_settings
from tests.e2e.conftest import bearer, open_gig


def confirm_payment(database_url: str, var_dir: Path, order_id: str) -> int:
    settings = load_settings(
        LEDGER_DATABASE_URL=database_url, LEDGER_VAR_DIR=str(var_dir), _env_file=None
    )
    with build_ledger(settings) as ledger:
        payment = payment_id_for(UUID(order_id))
        done = ledger.confirm_payment(Caller.system("gateway"), payment, "tx-e2e", 25_075, "MAD")
    return done.position


def test_whole_order_life_over_http(serve, tmp_path: Path, database_url: str) -> None:
    server = serve(LEDGER_DATABASE_URL=database_url)
    env = {**server.env, "LEDGER_DATABASE_URL": database_url}
    freelancer, client = bearer(tmp_path, env, "fr-e2e"), bearer(tmp_path, env, "cl-e2e")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        gig = open_gig(http, freelancer)
        body = {"gigId": gig, "packageId": "standard"}
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
        rated = http.get(f"/v1/gigs/{gig}", headers={**freelancer, **after}).json()
        assert rated["rating"] == {"average": 4.0, "count": 1}
        assert http.get("/readyz").status_code == 200
