"""The API with the real YouCanPay adapter in place (its HTTP answered by respx): the
checkout comes from YouCanPay's tokenize, and webhooks signed the way YouCanPay's PHP SDK
signs them (over PHP's re-encoding of the JSON) are accepted through the same route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import respx
from fastapi.testclient import TestClient

from api.http.app import create_app
from ledger.domain.payment import payment_id_for
from ledger.gateway.signing import signature_of
from ledger.gateway.youcanpay import YouCanPay, php_reencoding
from ledger.settings import Settings, load_settings
from tests.api.conftest import Api
from tests.conftest import FakeClock

KEY = "pri_sandbox_0123456789abcdef"
PUBLIC_KEY = "pub_sandbox_0123456789abcdef"
LIVE_KEY = "pri_0123456789abcdef0123"


@pytest.fixture
def youcanpay(api: Api) -> Iterator[tuple[Api, respx.MockRouter]]:
    with respx.mock(base_url="https://youcanpay.com/sandbox/api/") as gateway:
        api.app.state.ledger.gateway = YouCanPay(
            KEY, PUBLIC_KEY, sandbox=True, client=httpx.Client()
        )
        yield api, gateway


def test_a_payment_opens_youcanpays_checkout(youcanpay: tuple[Api, respx.MockRouter]) -> None:
    api, gateway = youcanpay
    tokenize = gateway.post("tokenize").respond(
        200, json={"transaction_id": "yc-tx-1", "token": {"id": "tok_42"}}
    )
    order = api.order(api.gig())
    created = api.open_payment(order)
    assert created["checkout"] == {
        "tokenId": "tok_42",
        "paymentUrl": "https://youcanpay.com/sandbox/payment-form/tok_42",
    }
    sent = json.loads(tokenize.calls.last.request.content)
    assert (sent["order_id"], sent["amount"], sent["currency"]) == (order["id"], 10_000, "MAD")
    assert sent["customer_ip"] == "testclient"  # the TestClient's own address


def test_a_webhook_signed_over_phps_reencoding_is_recorded(
    youcanpay: tuple[Api, respx.MockRouter],
) -> None:
    api, gateway = youcanpay
    gateway.post("tokenize").respond(200, json={"token": {"id": "tok_1"}})
    order = api.order(api.gig())
    api.client.post(
        f"/v1/orders/{order['id']}/payments",
        json={"paymentMethod": "credit_card"},
        headers=api.as_("client-1"),
    )
    body = json.dumps({
        "id": "evt-1", "event_name": "transaction.paid", "sandbox": True,
        "payload": {"transaction": {"id": "yc/tx/1", "status": 1, "order_id": order["id"],
                    "amount": "10000", "currency": "MAD"}, "metadata": {"url": "https://x/y"}},
    }, indent=2).encode()  # fmt: skip
    php = php_reencoding(body)
    assert php is not None and b"\\/" in php and php != body
    for wrong in ("", "00" * 32, signature_of("another-key", php)):
        refused = api.client.post(
            "/v1/webhooks/youcanpay", content=body, headers={"X-Youcanpay-Signature": wrong}
        )
        assert refused.status_code == 401
    answer = api.client.post(
        "/v1/webhooks/youcanpay",
        content=body,
        headers={"X-Youcanpay-Signature": signature_of(KEY, php)},
    )
    assert answer.json() == {"status": "recorded"}, answer.text
    paid = api.read(
        f"/v1/orders/{order['id']}", "client-1", position=int(answer.headers["X-Ledger-Position"])
    )
    assert paid["status"] == "processing"


def test_the_return_pages_are_served_with_youcanpay_and_the_sandbox_is_not(
    settings: Settings, clock: FakeClock
) -> None:
    """Every payment opens with ``/checkout/{id}/success|error`` as its return URLs, so a
    client coming back from YouCanPay's own form finds them; the sandbox's form is not there."""
    real = load_settings(
        LEDGER_DATABASE_URL=settings.database_url,
        LEDGER_VAR_DIR=str(settings.var_dir),
        LEDGER_GATEWAY="youcanpay",
        YOUCANPAY_PRIVATE_KEY=KEY,
        YOUCANPAY_PUBLIC_KEY=PUBLIC_KEY,
        _env_file=None,
    )
    with TestClient(create_app(real, clock=clock)) as client:
        for outcome in ("success", "error"):
            page = client.get(f"/checkout/{uuid4()}/{outcome}")
            assert page.status_code == 200, page.text
            assert page.headers["content-type"].startswith("text/html")
        assert client.get(f"/sandbox/payment-form/sbx_{uuid4()}").status_code == 404


# -- issue 18: the sandbox flag; issue 17: an unknown transaction ------------------------------


def pending_order(api: Api, gateway: respx.MockRouter) -> dict[str, Any]:
    gateway.post("tokenize").respond(200, json={"token": {"id": "tok_1"}})
    order = api.order(api.gig())
    api.open_payment(order)
    return order


def paid_webhook(order: dict[str, Any], sandbox: bool | None, webhook: str = "evt-1") -> bytes:
    message: dict[str, Any] = {
        "id": webhook, "event_name": "transaction.paid", "sandbox": sandbox,
        "payload": {"transaction": {"id": "yc-tx-1", "status": 1, "order_id": order["id"],
                    "amount": "10000", "currency": "MAD"}, "metadata": {}},
    }  # fmt: skip
    if sandbox is None:
        del message["sandbox"]
    return json.dumps(message).encode()


def post_webhook(api: Api, body: bytes, key: str) -> httpx.Response:
    return api.client.post(
        "/v1/webhooks/youcanpay",
        content=body,
        headers={"X-Youcanpay-Signature": signature_of(key, body)},
    )


def position(api: Api) -> int:
    return int(api.app.state.ledger.recorder.max_notification_id() or 0)


@pytest.mark.parametrize("flag", [False, None], ids=["sandbox_false", "sandbox_absent"])
def test_youcanpays_sandbox_refuses_a_webhook_that_is_not_the_sandboxs(
    youcanpay: tuple[Api, respx.MockRouter], flag: bool | None
) -> None:
    api, gateway = youcanpay
    order = pending_order(api, gateway)
    before = position(api)
    refused = post_webhook(api, paid_webhook(order, flag), KEY)
    assert (refused.status_code, refused.json()["code"]) == (409, "sandbox_mismatch"), refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert position(api) == before
    recorded = post_webhook(api, paid_webhook(order, True, "evt-2"), KEY)
    assert recorded.json() == {"status": "recorded"}, recorded.text


def test_live_youcanpay_refuses_a_sandbox_webhook(api: Api) -> None:
    with respx.mock(base_url="https://youcanpay.com/api/") as gateway:
        api.app.state.ledger.gateway = YouCanPay(
            LIVE_KEY, "pub_0123456789abcdef0123", sandbox=False, client=httpx.Client()
        )
        order = pending_order(api, gateway)
        before = position(api)
        refused = post_webhook(api, paid_webhook(order, True), LIVE_KEY)
        assert (refused.status_code, refused.json()["code"]) == (409, "sandbox_mismatch")
        assert position(api) == before
        for webhook, flag in (("evt-2", False), ("evt-3", None)):
            answer = post_webhook(api, paid_webhook(order, flag, webhook), LIVE_KEY)
            assert answer.status_code == 200, answer.text
        assert position(api) > before


def test_a_sync_of_a_transaction_youcanpay_does_not_know_is_404(
    youcanpay: tuple[Api, respx.MockRouter],
) -> None:
    api, gateway = youcanpay
    order = pending_order(api, gateway)
    paid = post_webhook(api, paid_webhook(order, True), KEY)
    assert paid.json() == {"status": "recorded"}, paid.text
    lookup = gateway.get("transactions/yc-tx-1").respond(
        404, json={"success": False, "message": "transaction not found"}
    )
    before = position(api)
    payment_id = payment_id_for(UUID(order["id"]))
    answer = api.client.post(
        f"/v1/payments/{payment_id}/sync", headers=api.as_("support-1", "support")
    )
    assert (answer.status_code, answer.json()["code"]) == (404, "transaction_not_found"), (
        answer.text
    )
    assert "transaction" in answer.json()["detail"]
    assert lookup.call_count == 1, "an unknown transaction is not asked for again"
    assert position(api) == before
