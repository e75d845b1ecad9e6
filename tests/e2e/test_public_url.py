"""A real ``ledger serve --port P`` in development with no ``LEDGER_PUBLIC_URL``: the checkout it
opens, and the page the sandbox's form sends the browser on to, are on port P (not the
default 8000), so a first session on another port can pay."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.test_checkout_browser import free_port
from tests.e2e.test_order_life import PACKAGE, token

CARD = {"cardNumber": "4242424242424242", "expiry": "12/30", "cvv": "123", "cardHolderName": "O"}


def test_the_checkout_follows_the_port_served_on(serve, tmp_path: Path) -> None:
    port = free_port()
    server = serve(port)
    origin = f"http://127.0.0.1:{port}"
    assert server.url == origin
    freelancer = {"Authorization": f"Bearer {token(tmp_path, server.env, 'fr-port')}"}
    client = {"Authorization": f"Bearer {token(tmp_path, server.env, 'cl-port')}"}
    with httpx.Client(base_url=server.url, timeout=10) as http:
        gig = http.post(
            "/v1/gigs", json={"title": "Logo", "packages": [PACKAGE]}, headers=freelancer
        )
        assert gig.status_code == 201, gig.text
        body = {"gigId": gig.json()["id"], "packageId": "standard"}
        order = http.post("/v1/orders", json=body, headers=client)
        assert order.status_code == 201, order.text
        path = f"/v1/orders/{order.json()['id']}/payments"
        payment = http.post(path, json={"paymentMethod": "credit_card"}, headers=client)
        assert payment.status_code == 201, payment.text
        form = payment.json()["checkout"]["paymentUrl"]
        assert form.startswith(f"{origin}/sandbox/payment-form/"), form

        paid = httpx.post(form, data=CARD, timeout=10)  # as the browser's form posts it
        assert paid.status_code == 303, paid.text
        landing = f"{origin}/checkout/{payment.json()['id']}/success"
        assert paid.headers["Location"] == landing
        assert httpx.get(landing, timeout=10).status_code == 200

        after = {**client, "X-Ledger-Min-Position": paid_position(http, client, order.json())}
        read = http.get(f"/v1/orders/{order.json()['id']}", headers=after)
        assert read.json()["status"] == "processing", read.text


def paid_position(http: httpx.Client, client: dict[str, str], order: dict[str, object]) -> str:
    """The head of the log once paid: the order's timeline is read from the store itself."""
    timeline = http.get(f"/v1/orders/{order['id']}/timeline", headers=client)
    assert timeline.status_code == 200, timeline.text
    events = timeline.json()["data"]
    assert events[-1]["type"] == "OrderPaymentConfirmed", events[-1]
    return str(events[-1]["position"])
