"""A real ``ledger serve --port P`` in development with no ``LEDGER_PUBLIC_URL``: the checkout it
opens, and the page the sandbox's form sends the browser on to, are on port P (not the
default 8000), so a first session on another port can pay."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.conftest import bearer, open_checkout, open_gig
from tests.e2e.test_checkout_browser import free_port

CARD = {"cardNumber": "4242424242424242", "expiry": "12/30", "cvv": "123", "cardHolderName": "O"}


def test_the_checkout_follows_the_port_served_on(serve, tmp_path: Path) -> None:
    port = free_port()
    server = serve(port)
    origin = f"http://127.0.0.1:{port}"
    assert server.url == origin
    freelancer = bearer(tmp_path, server.env, "fr-port")
    client = bearer(tmp_path, server.env, "cl-port")
    with httpx.Client(base_url=server.url, timeout=10) as http:
        gig = open_gig(http, freelancer)
        order, payment = open_checkout(http, client, gig)
        form = payment["checkout"]["paymentUrl"]
        assert form.startswith(f"{origin}/sandbox/payment-form/"), form

        paid = httpx.post(form, data=CARD, timeout=10)  # as the browser's form posts it
        assert paid.status_code == 303, paid.text
        landing = f"{origin}/checkout/{payment['id']}/success"
        assert paid.headers["Location"] == landing
        assert httpx.get(landing, timeout=10).status_code == 200

        after = {**client, "X-Ledger-Min-Position": paid_position(http, client, order)}
        read = http.get(f"/v1/orders/{order}", headers=after)
        assert read.json()["status"] == "processing", read.text


def paid_position(http: httpx.Client, client: dict[str, str], order: str) -> str:
    """The head of the log once paid: the order's timeline is read from the store itself."""
    timeline = http.get(f"/v1/orders/{order}/timeline", headers=client)
    assert timeline.status_code == 200, timeline.text
    events = timeline.json()["data"]
    assert events[-1]["type"] == "OrderPaymentConfirmed", events[-1]
    return str(events[-1]["position"])
