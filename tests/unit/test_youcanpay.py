"""ledger.gateway.youcanpay against YouCanPay's documented request and response shapes.

HTTP is answered by respx, so nothing leaves the machine, and the backoff sleeps into a
list, so nothing waits. Expected PHP encodings are written out by hand from PHP's
``json_encode`` rules rather than computed by the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import traceback
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest
import respx

from ledger.errors import ValidationFailed
from ledger.gateway.port import (
    Checkout,
    CheckoutRequest,
    GatewayError,
    GatewayRefused,
    PaymentGateway,
    Transaction,
)
from ledger.gateway.youcanpay import (
    BACKOFF,
    CONNECT_TIMEOUT,
    TIMEOUT,
    YouCanPay,
    default_client,
    php_json,
    php_reencoding,
)

KEY = "pri_sandbox_0123456789abcdef"
PUBLIC = "pub_sandbox_0123456789abcdef"
SANDBOX_API = "https://youcanpay.com/sandbox/api/"
LIVE_API = "https://youcanpay.com/api/"
ORDER = "5b1e8a52-7a53-4f3e-9d0c-6a1f0c9b2e11"


def checkout_request(**changes: object) -> CheckoutRequest:
    fields: dict[str, object] = {
        "order_id": ORDER,
        "amount": 57000,
        "currency": "MAD",
        "success_url": "https://ledger.example/checkout/p1/success",
        "error_url": "https://ledger.example/checkout/p1/error",
        "customer_ip": "196.200.1.2",
        "metadata": {"payment_id": "p1"},
    }
    fields.update(changes)
    return CheckoutRequest(**fields)  # type: ignore[arg-type]


def transaction_body(**changes: object) -> dict[str, object]:
    """The transaction object as the PHP SDK's tests show it."""
    body: dict[str, object] = {
        "id": "tx_123",
        "order_id": ORDER,
        "status": 1,
        "amount": "570.00",
        "currency": "MAD",
        "base_amount": None,
        "base_currency": None,
        "created_at": "2026-01-05 10:00:00",
    }
    body.update(changes)
    return body


def sign(body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as made:
        yield made


@pytest.fixture
def gateway(client: httpx.Client, sleeps: list[float]) -> YouCanPay:
    return YouCanPay(KEY, PUBLIC, sandbox=True, client=client, sleep=sleeps.append)


@pytest.fixture
def live(client: httpx.Client, sleeps: list[float]) -> YouCanPay:
    return YouCanPay(KEY, PUBLIC, sandbox=False, client=client, sleep=sleeps.append)


# --- construction -------------------------------------------------------------------------


def test_it_is_a_payment_gateway(gateway: YouCanPay) -> None:
    port: PaymentGateway = gateway
    assert port.name == "youcanpay"


def test_its_own_client_has_explicit_timeouts() -> None:
    with default_client() as made:
        assert made.timeout == httpx.Timeout(15.0, connect=5.0)
    assert (CONNECT_TIMEOUT, TIMEOUT) == (5.0, 15.0)


def test_without_a_client_it_makes_and_closes_its_own() -> None:
    gateway = YouCanPay(KEY, PUBLIC, sandbox=True)
    gateway.close()


def test_an_empty_private_key_is_refused() -> None:
    with pytest.raises(ValueError, match="private key"):
        YouCanPay("", PUBLIC, sandbox=True)


# --- tokenize -----------------------------------------------------------------------------


def test_tokenize_posts_the_documented_fields_to_the_sandbox(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    route = router.post(f"{SANDBOX_API}tokenize").respond(
        200, json={"token": {"id": "tok_1", "transaction_id": "tx_9"}}
    )

    checkout = gateway.tokenize(checkout_request())

    assert checkout == Checkout("tok_1", "https://youcanpay.com/sandbox/payment-form/tok_1")
    sent = route.calls.last.request
    assert sent.headers["accept"] == "application/json"
    assert json.loads(sent.content) == {
        "pri_key": KEY,
        "order_id": ORDER,
        "amount": 57000,
        "currency": "MAD",
        "customer_ip": "196.200.1.2",
        "success_url": "https://ledger.example/checkout/p1/success",
        "error_url": "https://ledger.example/checkout/p1/error",
        "metadata": {"payment_id": "p1"},
    }


def test_tokenize_sends_the_amount_as_integer_centimes(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    route = router.post(f"{SANDBOX_API}tokenize").respond(200, json={"token": {"id": "t"}})

    gateway.tokenize(checkout_request(amount=10050))

    assert b'"amount":10050' in route.calls.last.request.content.replace(b" ", b"")


def test_tokenize_live_uses_the_live_api_and_form(
    router: respx.MockRouter, live: YouCanPay
) -> None:
    router.post(f"{LIVE_API}tokenize").respond(200, json={"token": {"id": "tok_live"}})

    checkout = live.tokenize(checkout_request())

    assert checkout.payment_url == "https://youcanpay.com/payment-form/tok_live"


def test_tokenize_reads_the_token_as_the_docs_show_it_too(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    router.post(f"{SANDBOX_API}tokenize").respond(
        200, json={"transaction_id": "840f1c8a", "token": "cp500014337"}
    )

    assert gateway.tokenize(checkout_request()).token_id == "cp500014337"


def test_tokenize_quotes_the_token_in_the_form_url(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    router.post(f"{SANDBOX_API}tokenize").respond(200, json={"token": {"id": "a/../b c"}})

    checkout = gateway.tokenize(checkout_request())

    assert checkout.payment_url == "https://youcanpay.com/sandbox/payment-form/a%2F..%2Fb%20c"


def test_tokenize_leaves_out_an_unknown_customer_ip(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    route = router.post(f"{SANDBOX_API}tokenize").respond(200, json={"token": {"id": "t"}})

    gateway.tokenize(checkout_request(customer_ip=None))

    assert "customer_ip" not in json.loads(route.calls.last.request.content)


@pytest.mark.parametrize("amount", [0, -100, True])
def test_tokenize_never_sends_a_bad_amount(
    router: respx.MockRouter, gateway: YouCanPay, amount: int
) -> None:
    route = router.post(f"{SANDBOX_API}tokenize").respond(200, json={"token": {"id": "t"}})

    with pytest.raises(ValidationFailed):
        gateway.tokenize(checkout_request(amount=amount))
    assert route.call_count == 0


def test_tokenize_refused_with_the_gateways_message(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    route = router.post(f"{SANDBOX_API}tokenize").respond(
        422,
        json={"success": False, "message": "the amount is less than minimum transaction amount"},
    )

    with pytest.raises(GatewayRefused, match="less than minimum transaction amount") as caught:
        gateway.tokenize(checkout_request())
    assert caught.value.code == "gateway_refused"
    assert route.call_count == 1


def test_a_refusal_never_repeats_the_private_key(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    router.post(f"{SANDBOX_API}tokenize").respond(401, json={"error": f"bad key {KEY}"})

    with pytest.raises(GatewayRefused) as caught:
        gateway.tokenize(checkout_request())
    assert KEY not in str(caught.value)
    assert "[redacted]" in str(caught.value)


def test_a_refusal_without_a_message_still_says_what_happened(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    router.post(f"{SANDBOX_API}tokenize").respond(400, text="<html>nope</html>")

    with pytest.raises(GatewayRefused, match=r"refused the tokenize \(HTTP 400\)"):
        gateway.tokenize(checkout_request())


@pytest.mark.parametrize(
    "outcome",
    [
        httpx.Response(500, json={"message": "boom"}),
        httpx.Response(503),
        httpx.Response(429, json={"message": "slow down"}),
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
    ],
    ids=["500", "503", "429", "connect-error", "connect-timeout", "read-timeout"],
)
def test_tokenize_unavailable_is_not_refused_and_never_retried(
    router: respx.MockRouter,
    gateway: YouCanPay,
    sleeps: list[float],
    outcome: httpx.Response | Exception,
) -> None:
    route = router.post(f"{SANDBOX_API}tokenize").mock(side_effect=[outcome])

    with pytest.raises(GatewayError) as caught:
        gateway.tokenize(checkout_request())
    assert type(caught.value) is GatewayError
    assert caught.value.code == "gateway_unavailable"
    assert route.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="not json"),
        httpx.Response(200, json=["a", "list"]),
        httpx.Response(200, json={"token": {}}),
        httpx.Response(200, json={"token": {"id": 12}}),
        httpx.Response(200, json={"token": "  "}),
        httpx.Response(200, json={"success": True}),
        httpx.Response(302, headers={"location": "https://youcanpay.com/login"}),
    ],
    ids=["not-json", "a-list", "no-id", "numeric-id", "blank", "no-token", "redirect"],
)
def test_tokenize_unreadable_answers_are_gateway_errors(
    router: respx.MockRouter, gateway: YouCanPay, answer: httpx.Response
) -> None:
    router.post(f"{SANDBOX_API}tokenize").mock(return_value=answer)

    with pytest.raises(GatewayError) as caught:
        gateway.tokenize(checkout_request())
    assert type(caught.value) is GatewayError


# --- lookup -------------------------------------------------------------------------------


def test_lookup_gets_the_transaction_with_the_key(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    route = router.get(f"{SANDBOX_API}transactions/tx_123").respond(200, json=transaction_body())

    found = gateway.lookup("tx_123")

    assert found == Transaction("tx_123", "paid", ORDER, 57000, "MAD")
    assert found.raw["created_at"] == "2026-01-05 10:00:00"
    sent = route.calls.last.request
    assert sent.url.params["pri_key"] == KEY
    assert sent.headers["accept"] == "application/json"


def test_lookup_live_uses_the_live_api(router: respx.MockRouter, live: YouCanPay) -> None:
    route = router.get(f"{LIVE_API}transactions/tx_123").respond(200, json=transaction_body())

    live.lookup("tx_123")

    assert route.call_count == 1


def test_lookup_quotes_the_transaction_id(router: respx.MockRouter, gateway: YouCanPay) -> None:
    route = router.get(f"{SANDBOX_API}transactions/a%2Fb").respond(200, json=transaction_body())

    gateway.lookup("a/b")

    assert route.call_count == 1


@pytest.mark.parametrize(
    ("status", "expected", "reason"),
    [
        (1, "paid", None),
        (0, "pending", None),
        (-1, "failed", "cancelled"),
        (-2, "refunded", None),
        (-3, "failed", "failed"),
        ("1", "paid", None),
        ("-2", "refunded", None),
    ],
)
def test_lookup_maps_each_status(
    router: respx.MockRouter,
    gateway: YouCanPay,
    status: object,
    expected: str,
    reason: str | None,
) -> None:
    router.get(f"{SANDBOX_API}transactions/tx_123").respond(
        200, json=transaction_body(status=status)
    )

    found = gateway.lookup("tx_123")

    assert (found.status, found.reason) == (expected, reason)


@pytest.mark.parametrize("status", [2, -4, 9001, None, True, "paid", "1.0", 1.0])
def test_lookup_refuses_to_guess_an_unknown_status(
    router: respx.MockRouter, gateway: YouCanPay, status: object
) -> None:
    router.get(f"{SANDBOX_API}transactions/tx_123").respond(
        200, json=transaction_body(status=status)
    )

    with pytest.raises(GatewayError, match="unknown transaction status") as caught:
        gateway.lookup("tx_123")
    assert type(caught.value) is GatewayError


@pytest.mark.parametrize(
    ("amount", "centimes"),
    [("100.50", 10050), ("20.00", 2000), ("0.01", 1), ("1000000.00", 100_000_000), (20, 2000)],
)
def test_lookup_parses_the_amount_exactly(
    router: respx.MockRouter, gateway: YouCanPay, amount: object, centimes: int
) -> None:
    router.get(f"{SANDBOX_API}transactions/tx_123").respond(
        200, json=transaction_body(amount=amount)
    )

    assert gateway.lookup("tx_123").amount == centimes


def test_lookup_reads_a_numeric_amount_without_a_float(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    body = json.dumps(transaction_body()).replace('"570.00"', "100.10").encode()
    router.get(f"{SANDBOX_API}transactions/tx_123").respond(200, content=body)

    found = gateway.lookup("tx_123")

    assert found.amount == 10010
    assert found.raw["amount"] == Decimal("100.10")


@pytest.mark.parametrize(
    "amount", ["100.505", "abc", "", "-5.00", "0", "NaN", "1e3x", None, True, [1]]
)
def test_lookup_refuses_an_unreadable_amount(
    router: respx.MockRouter, gateway: YouCanPay, amount: object
) -> None:
    router.get(f"{SANDBOX_API}transactions/tx_123").respond(
        200, json=transaction_body(amount=amount)
    )

    with pytest.raises(GatewayError, match="amount"):
        gateway.lookup("tx_123")


@pytest.mark.parametrize("missing", ["id", "order_id", "currency"])
def test_lookup_refuses_a_transaction_without_a_field(
    router: respx.MockRouter, gateway: YouCanPay, missing: str
) -> None:
    body = transaction_body()
    del body[missing]
    router.get(f"{SANDBOX_API}transactions/tx_123").respond(200, json=body)

    with pytest.raises(GatewayError, match=missing):
        gateway.lookup("tx_123")


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_lookup_refused_is_not_retried(
    router: respx.MockRouter, gateway: YouCanPay, sleeps: list[float], status: int
) -> None:
    route = router.get(f"{SANDBOX_API}transactions/tx_404").respond(
        status, json={"success": False, "message": "transaction not found"}
    )

    with pytest.raises(GatewayRefused, match="transaction not found"):
        gateway.lookup("tx_404")
    assert route.call_count == 1
    assert sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(502, text="Bad Gateway"),
        httpx.Response(408),
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
    ids=["500", "502", "408", "connect-error", "connect-timeout", "read-timeout", "disconnect"],
)
def test_lookup_retries_a_passing_failure(
    router: respx.MockRouter,
    gateway: YouCanPay,
    sleeps: list[float],
    failure: httpx.Response | Exception,
) -> None:
    route = router.get(f"{SANDBOX_API}transactions/tx_123").mock(
        side_effect=[failure, httpx.Response(200, json=transaction_body(status=-3))]
    )

    assert gateway.lookup("tx_123").status == "failed"
    assert route.call_count == 2
    assert sleeps == [BACKOFF[0]]


def test_lookup_gives_up_after_three_attempts(
    router: respx.MockRouter, gateway: YouCanPay, sleeps: list[float]
) -> None:
    route = router.get(f"{SANDBOX_API}transactions/tx_123").mock(
        side_effect=[httpx.Response(503), httpx.ConnectError("refused"), httpx.Response(500)]
    )

    with pytest.raises(GatewayError, match=r"after 3 attempts \(HTTP 500\)") as caught:
        gateway.lookup("tx_123")
    assert type(caught.value) is GatewayError
    assert route.call_count == 3
    assert sleeps == list(BACKOFF)
    assert len(BACKOFF) == 2


def test_lookup_timeouts_name_no_secret(
    router: respx.MockRouter, gateway: YouCanPay, sleeps: list[float]
) -> None:
    router.get(f"{SANDBOX_API}transactions/tx_123").mock(
        side_effect=httpx.ReadTimeout(f"timed out reading {SANDBOX_API}?pri_key={KEY}")
    )

    with pytest.raises(GatewayError) as caught:
        gateway.lookup("tx_123")
    assert "ReadTimeout" in str(caught.value)
    assert KEY not in "".join(traceback.format_exception(caught.value))


def test_tokenize_transport_errors_name_no_secret(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    router.post(f"{SANDBOX_API}tokenize").mock(
        side_effect=httpx.ConnectError(f"cannot send pri_key={KEY}")
    )

    with pytest.raises(GatewayError) as caught:
        gateway.tokenize(checkout_request())
    assert "ConnectError" in str(caught.value)
    assert KEY not in "".join(traceback.format_exception(caught.value))


@pytest.mark.parametrize(
    "answer",
    [httpx.Response(200, text="{not json"), httpx.Response(200, json="a string")],
    ids=["broken", "not-an-object"],
)
def test_lookup_bad_json_is_unavailable_and_not_retried(
    router: respx.MockRouter, gateway: YouCanPay, sleeps: list[float], answer: httpx.Response
) -> None:
    route = router.get(f"{SANDBOX_API}transactions/tx_123").mock(return_value=answer)

    with pytest.raises(GatewayError, match="unreadable JSON") as caught:
        gateway.lookup("tx_123")
    assert type(caught.value) is GatewayError
    assert route.call_count == 1
    assert sleeps == []


def test_lookup_an_unusable_url_fails_without_retrying(
    router: respx.MockRouter, gateway: YouCanPay, sleeps: list[float]
) -> None:
    route = router.get(f"{SANDBOX_API}transactions/tx_123").mock(
        side_effect=httpx.UnsupportedProtocol("no")
    )

    with pytest.raises(GatewayError, match="UnsupportedProtocol"):
        gateway.lookup("tx_123")
    assert route.call_count == 1
    assert sleeps == []


# --- verify -------------------------------------------------------------------------------

WEBHOOK = {
    "id": "f9dc2ad2-a2ac-4608-878c-066f5ceb2ab3",
    "event_name": "transaction.paid",
    "sandbox": True,
    "payload": {
        "transaction": {
            "id": "tx_123",
            "status": 1,
            "order_id": ORDER,
            "amount": "570.00",
            "currency": "MAD",
        },
        "metadata": {"return": "https://ledger.example/checkout/p1/success", "note": "Café"},
    },
}
RAW = json.dumps(WEBHOOK, separators=(",", ":")).encode()
PHP = (
    '{"id":"f9dc2ad2-a2ac-4608-878c-066f5ceb2ab3","event_name":"transaction.paid",'
    '"sandbox":true,"payload":{"transaction":{"id":"tx_123","status":1,'
    f'"order_id":"{ORDER}","amount":"570.00","currency":"MAD"}},'
    '"metadata":{"return":"https:\\/\\/ledger.example\\/checkout\\/p1\\/success",'
    '"note":"Caf\\u00e9"}}}'
).encode()


def test_a_signature_of_the_raw_body_verifies(gateway: YouCanPay) -> None:
    assert gateway.verify(RAW, sign(RAW))


def test_an_uppercase_signature_verifies(gateway: YouCanPay) -> None:
    assert gateway.verify(RAW, sign(RAW).upper())


def test_a_signature_over_phps_reencoding_verifies(gateway: YouCanPay) -> None:
    pretty = json.dumps(WEBHOOK, indent=2, ensure_ascii=False).encode()

    assert php_reencoding(pretty) == PHP
    assert gateway.verify(pretty, sign(PHP))
    assert gateway.verify(RAW, sign(PHP))


def test_a_php_escaped_body_verifies_as_it_came(gateway: YouCanPay) -> None:
    assert gateway.verify(PHP, sign(PHP))


@pytest.mark.parametrize("signature", [None, "", "   "])
def test_a_missing_signature_fails(gateway: YouCanPay, signature: str | None) -> None:
    assert not gateway.verify(RAW, signature)


@pytest.mark.parametrize(
    "signature",
    ["00" * 32, "zz" * 32, sign(RAW)[:-1], sign(RAW) + "0", "é" * 64, f"sha256={sign(RAW)}"],
    ids=["wrong", "not-hex", "short", "long", "non-ascii", "prefixed"],
)
def test_a_bad_signature_fails(gateway: YouCanPay, signature: str) -> None:
    assert not gateway.verify(RAW, signature)


def test_a_tampered_body_fails(gateway: YouCanPay) -> None:
    tampered = RAW.replace(b'"570.00"', b'"5.00"')

    assert tampered != RAW
    assert not gateway.verify(tampered, sign(RAW))
    assert not gateway.verify(tampered, sign(PHP))


def test_another_keys_signature_fails(gateway: YouCanPay) -> None:
    assert not gateway.verify(RAW, sign(RAW, key="pri_someone_else"))
    assert not gateway.verify(RAW, sign(PHP, key="pri_someone_else"))


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe{}", b'{"a": NaN}', b""])
def test_a_body_php_cannot_read_verifies_only_as_raw_bytes(gateway: YouCanPay, body: bytes) -> None:
    assert gateway.verify(body, sign(body))
    assert not gateway.verify(body, sign(b"null"))


# --- php_json -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (2**63 - 1, "9223372036854775807"),
        (2**64, "1.8446744073709552e+19"),
        ("a/b", '"a\\/b"'),
        ('q"\\', '"q\\"\\\\"'),
        ("\b\f\n\r\t", '"\\b\\f\\n\\r\\t"'),
        ("\x00\x1f\x7f", '"\\u0000\\u001f\x7f"'),
        ("é€", '"\\u00e9\\u20ac"'),
        ("😀", '"\\ud83d\\ude00"'),
        ("<&'>", '"<&\'>"'),
        (12.3, "12.3"),
        (12.0, "12"),
        (0.1, "0.1"),
        (0.0001, "0.0001"),
        (0.00001, "1.0e-5"),
        (-2.5e-7, "-2.5e-7"),
        (1e16, "10000000000000000"),
        (1e17, "1.0e+17"),
        (1.5e300, "1.5e+300"),
        (0.0, "0"),
        (-0.0, "-0"),
        (Decimal("100.50"), "100.5"),
        ([], "[]"),
        ({}, "[]"),
        ({"0": "a", "1": "b"}, '["a","b"]'),
        ({"1": "a", "0": "b"}, '{"1":"a","0":"b"}'),
        ({"a": [1, {"b/": None}]}, '{"a":[1,{"b\\/":null}]}'),
    ],
)
def test_php_json_encodes_as_phps_json_encode(value: object, encoded: str) -> None:
    assert php_json(value) == encoded.encode()


@pytest.mark.parametrize("value", [float("inf"), float("nan"), {1, 2}, b"bytes"])
def test_php_json_refuses_what_php_cannot_encode(value: object) -> None:
    with pytest.raises(ValueError):
        php_json(value)


# --- CashPlus -----------------------------------------------------------------------------


def cash_request() -> CheckoutRequest:
    return checkout_request(method="cashplus")


def test_it_takes_cards_and_cashplus(gateway: YouCanPay) -> None:
    assert gateway.methods == ("credit_card", "cashplus")


def test_cashplus_tokenizes_then_initiates_with_the_public_key(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    tokenize = router.post(f"{SANDBOX_API}tokenize").respond(200, json={"token": {"id": "tok_1"}})
    init = router.post(f"{SANDBOX_API}cashplus/init").respond(
        200, json={"transaction_id": "tx_cp", "token": "cp500014337"}
    )

    checkout = gateway.tokenize(cash_request())

    assert checkout == Checkout("tok_1", None, "tx_cp", cash_code="cp500014337")
    assert json.loads(tokenize.calls.last.request.content)["amount"] == 57000
    sent = init.calls.last.request
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    fields = dict(httpx.QueryParams(sent.content.decode()))
    assert fields == {"pub_key": PUBLIC, "token_id": "tok_1", "payment_method[type]": "cashplus"}
    assert KEY not in sent.content.decode(), "the private key never goes to cashplus/init"


def test_cashplus_reads_the_code_as_the_docs_show_it_too(
    router: respx.MockRouter, live: YouCanPay
) -> None:
    router.post(f"{LIVE_API}tokenize").respond(200, json={"token": {"id": "tok_1"}})
    router.post(f"{LIVE_API}cashplus/init").respond(200, json={"token": {"id": "cp-42"}})

    checkout = live.tokenize(cash_request())

    assert (checkout.cash_code, checkout.transaction_id, checkout.payment_url) == (
        "cp-42",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, {"success": False, "message": "CashPlus is not enabled"}, GatewayRefused),
        (422, {"message": "token expired"}, GatewayRefused),
        (200, {"transaction_id": "tx"}, GatewayError),
        (503, {}, GatewayError),
    ],
)
def test_cashplus_refusals_and_failures(
    router: respx.MockRouter,
    gateway: YouCanPay,
    status: int,
    body: dict[str, object],
    error: type[Exception],
) -> None:
    router.post(f"{SANDBOX_API}tokenize").respond(200, json={"token": {"id": "tok_1"}})
    init = router.post(f"{SANDBOX_API}cashplus/init").respond(status, json=body)

    with pytest.raises(error) as raised:
        gateway.tokenize(cash_request())

    assert init.call_count == 1, "never retried: a second call could issue a second code"
    assert KEY not in str(raised.value)
    if body.get("message"):
        assert str(body["message"]) in str(raised.value)


def test_cashplus_unreachable_is_a_gateway_error(
    router: respx.MockRouter, gateway: YouCanPay
) -> None:
    router.post(f"{SANDBOX_API}tokenize").respond(200, json={"token": {"id": "tok_1"}})
    router.post(f"{SANDBOX_API}cashplus/init").mock(side_effect=httpx.ConnectError("down"))

    with pytest.raises(GatewayError, match="CashPlus initiation") as raised:
        gateway.tokenize(cash_request())
    assert not isinstance(raised.value, GatewayRefused)


def test_without_a_public_key_cashplus_is_refused_before_any_request(
    router: respx.MockRouter, client: httpx.Client
) -> None:
    cards_only = YouCanPay(KEY, "", sandbox=True, client=client)
    tokenize = router.post(f"{SANDBOX_API}tokenize").respond(200, json={"token": {"id": "t"}})

    assert cards_only.methods == ("credit_card",)
    with pytest.raises(GatewayRefused, match="YOUCANPAY_PUBLIC_KEY"):
        cards_only.tokenize(cash_request())
    assert tokenize.call_count == 0, "no checkout is opened for a method not taken"
