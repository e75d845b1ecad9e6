"""The YouCanPay adapter: a thin httpx client of YouCanPay's public API, behind ``PaymentGateway``.

What it relies on, and where that comes from:

* Base URLs: ``https://youcanpay.com/api/`` live, ``https://youcanpay.com/sandbox/api/``
  sandbox (the tokenize page of the docs; the official PHP SDK's ``HTTPAdapter``).
* ``POST tokenize`` takes ``pri_key``, ``order_id``, ``amount`` (an integer in minor units,
  so centimes for MAD), ``currency``, ``customer_ip``, ``success_url``, ``error_url`` and
  ``metadata``, form- or JSON-encoded (the API introduction says both are accepted; the PHP
  SDK's curl adapter sends JSON). The answer names the token. The official SDKs read
  ``{"token": {"id": …}}``, but the tokenize page shows ``{"token": "…"}``, so both are
  read here.
* The hosted form is ``https://youcanpay.com/payment-form/{token}``, with ``sandbox/``
  before ``payment-form`` in the sandbox (PHP SDK ``Models/Token::getPaymentURL``, and the
  ``paymentUrl`` of the TypeScript SDK).
* ``GET transactions/{id}?pri_key=…`` returns a flat object: ``id``, ``order_id``, a
  numeric ``status``, ``amount`` as a decimal string in major units (``"20.00"``),
  ``currency``, ``base_amount``, ``base_currency``, ``created_at`` (PHP SDK
  ``TransactionEndpoint`` and ``Models/Transaction`` with its tests). A non-200 answer
  means no such transaction for the SDK; here a 404 is ``TransactionNotFound``, and any other
  refusal (a bad key …) stays ``GatewayRefused``.
* Status codes, from YouCanPay's official WooCommerce plugin
  (``WC_YouCanPay_Transaction_Model``): ``1`` paid, ``0`` pending, ``-1`` cancelled,
  ``-2`` refunded, ``-3`` failed. See ``STATUSES`` for how each maps onto the port.
* CashPlus (the client pays in cash at an agency): the checkout is tokenized as for a
  card, then ``POST cashplus/init`` with ``pub_key``, ``token_id`` and
  ``payment_method[type]=cashplus`` (the CashPlus gateway page of the docs; the Android
  SDK's ``YCPayCashPlusService`` sends the first two) answers the ``transaction_id`` and the
  CashPlus ``token``, the code the client quotes at the agency. The SDK reads ``token`` as a
  string; the docs' example shows ``{"token": {"id": …}}``: both are read. A ``"success":
  false`` answer is a refusal, with its ``message``. It needs the public key, so without
  ``YOUCANPAY_PUBLIC_KEY`` the adapter takes cards only (``methods``). The payment is then
  settled by the ``transaction.paid`` webhook when the cash is paid, hours or days later.
* Webhooks carry ``X-Youcanpay-Signature``: the hex HMAC-SHA256 of the JSON body, keyed
  with the private key. The PHP SDK (and the WooCommerce and Laravel integrations built on
  it) checks it against ``json_encode(json_decode($body, true))``, PHP's own re-encoding,
  so ``verify`` accepts a signature over the raw body or over that re-encoding
  (``php_json``).
* Errors: 4xx means the request was understood and refused, with ``message`` (or
  ``error``) saying why; 5xx means trouble on YouCanPay's side (the errors page).

What is said here was taken from YouCanPay's published API reference (tokenize, the
transaction object, error cases), its PHP SDK and the integrations built on it, and PHP's
own JSON encoder (for the signature's re-encoding); the unit tests pin each point.

Only lookups are retried: a GET is idempotent, whereas a repeated tokenize could open a
second checkout for the same order. Error messages never contain the private key, which
travels in the tokenize body and, as the API requires, in the lookup's query string (so
the ``httpx`` logger, which logs request URLs at INFO, should stay at WARNING or above).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

import httpx

from ledger.domain.payment import CARD, CASHPLUS
from ledger.errors import ValidationFailed
from ledger.gateway.port import (
    Checkout,
    CheckoutRequest,
    GatewayError,
    GatewayRefused,
    Transaction,
    TransactionNotFound,
    TransactionStatus,
)
from ledger.gateway.signing import signs
from ledger.money import check_centimes, to_centimes

SITE: Final = "https://youcanpay.com/"
CONNECT_TIMEOUT: Final = 5.0
TIMEOUT: Final = 15.0
"""httpx bounds each phase, not a whole exchange: connecting takes at most 5 s, and each
read, write or wait for a pooled connection at most 15 s."""

LOOKUP_ATTEMPTS: Final = 3
BACKOFF: Final = (0.25, 0.5)
"""Seconds slept before the second and the third lookup attempt."""

STATUSES: Final[Mapping[int, tuple[TransactionStatus, str | None]]] = {
    1: ("paid", None),
    0: ("pending", None),
    -1: ("failed", "cancelled"),  # the customer gave up: for the ledger, not paid
    -2: ("refunded", None),
    -3: ("failed", "failed"),
}
"""YouCanPay's numeric transaction status → the port's status and a failure reason. Any
other code is refused as unreadable rather than guessed at, so nothing moves on it."""

_ACCEPT: Final = {"Accept": "application/json"}
_RETRIED_ERRORS: Final = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_BUSY_STATUSES: Final = frozenset({408, 429})
_MAX_MESSAGE: Final = 200
_INT64: Final = range(-(2**63), 2**63)


def default_client() -> httpx.Client:
    """The client used when none is given: explicit timeouts, no redirects followed (a
    redirect from a payment API is an answer we do not understand, not one to chase)."""
    return httpx.Client(timeout=httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT))


class YouCanPay:
    """``PaymentGateway`` over YouCanPay's API (sandbox or live)."""

    name = "youcanpay"
    refunds_at_once = False  # no refund API: refunds are made in its dashboard, then confirmed

    def __init__(
        self,
        private_key: str,
        public_key: str,
        sandbox: bool,
        client: httpx.Client | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """``public_key`` is what CashPlus payments are opened with (without it, the
        adapter takes cards only); the other calls need only the private key. ``sleep``
        waits between lookup attempts (tests pass a recorder)."""
        if not private_key:
            raise ValueError("YouCanPay needs a private key")
        self._key = private_key
        self.public_key = public_key
        self.methods: tuple[str, ...] = (CARD, CASHPLUS) if public_key else (CARD,)
        self.sandbox = sandbox
        self._owns_client = client is None
        self._client = client if client is not None else default_client()
        self._sleep = sleep
        prefix = "sandbox/" if sandbox else ""
        self._api = f"{SITE}{prefix}api/"
        self._form = f"{SITE}{prefix}payment-form/"

    def close(self) -> None:
        """Close the HTTP client if this adapter made it (an injected one is the caller's)."""
        if self._owns_client:
            self._client.close()

    def tokenize(self, request: CheckoutRequest) -> Checkout:
        """Open a hosted checkout. Tried once only: a retried POST could open two.

        Raises: GatewayError, GatewayRefused; ValidationFailed for an amount that is not
        positive centimes (a bug upstream, caught before it reaches the gateway).
        """
        check_centimes(request.amount)
        if request.method not in self.methods:  # before any request: nothing is opened
            taken = ", ".join(self.methods)
            raise GatewayRefused(
                f"this YouCanPay adapter takes {taken} (CashPlus needs YOUCANPAY_PUBLIC_KEY)"
            )
        try:
            response = self._client.post(
                f"{self._api}tokenize", json=self._tokenize_fields(request), headers=_ACCEPT
            )
        except httpx.HTTPError as error:
            raise GatewayError(_unreachable("tokenize", error)) from None
        body = self._answer("tokenize", response)
        token_id = _token_id(body, "tokenize")
        if request.method == CASHPLUS:
            return self._cashplus(token_id)
        return Checkout(token_id, f"{self._form}{quote(token_id, safe='')}", _transaction_id(body))

    def _cashplus(self, token_id: str) -> Checkout:
        """Turn a tokenized checkout into a CashPlus code. Tried once, as tokenize is.

        Raises: GatewayError, GatewayRefused (CashPlus said no)."""
        fields = {"pub_key": self.public_key, "token_id": token_id}
        try:
            response = self._client.post(
                f"{self._api}cashplus/init",
                data={**fields, "payment_method[type]": CASHPLUS},
                headers=_ACCEPT,
            )
        except httpx.HTTPError as error:
            raise GatewayError(_unreachable("CashPlus initiation", error)) from None
        body = self._answer("CashPlus initiation", response)
        if body.get("success") is False:
            reason = body.get("message")
            detail = f": {reason.strip()[:_MAX_MESSAGE]}" if isinstance(reason, str) else ""
            raise GatewayRefused(f"YouCanPay refused the CashPlus initiation{detail}")
        code = _token_id(body, "CashPlus initiation")
        return Checkout(token_id, None, _transaction_id(body), cash_code=code)

    def lookup(self, transaction_id: str) -> Transaction:
        """The transaction as YouCanPay reports it now.

        Raises: GatewayError (unreachable after retries, or an unreadable answer),
        TransactionNotFound (a 404: YouCanPay knows no such transaction), GatewayRefused
        (another refusal, such as the key's).
        """
        response = self._get_with_retries(
            f"{self._api}transactions/{quote(transaction_id, safe='')}"
        )
        if response.status_code == 404:
            raise TransactionNotFound(self._refusal("lookup", response))
        return _transaction(self._answer("lookup", response))

    def verify(self, body: bytes, signature: str | None) -> bool:
        """Whether ``signature`` (hex, any case) is YouCanPay's signature of ``body``:
        over the raw bytes, or over PHP's re-encoding of them, as the PHP SDK checks it."""
        if signs(self._key, body, signature):
            return True
        reencoded = php_reencoding(body)
        return reencoded is not None and signs(self._key, reencoded, signature)

    def _tokenize_fields(self, request: CheckoutRequest) -> dict[str, object]:
        fields: dict[str, object] = {
            "pri_key": self._key,
            "order_id": request.order_id,
            "amount": request.amount,
            "currency": request.currency,
            "success_url": request.success_url,
            "error_url": request.error_url,
            "metadata": dict(request.metadata),
        }
        if request.customer_ip:
            fields["customer_ip"] = request.customer_ip
        return fields

    def _get_with_retries(self, url: str) -> httpx.Response:
        """GET, retried on timeouts, connection trouble, 5xx, 408 and 429 only: anything
        else is an answer, and asking again would get the same one."""
        failure = ""
        for attempt in range(1, LOOKUP_ATTEMPTS + 1):
            try:
                response = self._client.get(url, params={"pri_key": self._key}, headers=_ACCEPT)
            except _RETRIED_ERRORS as error:
                failure = type(error).__name__
            except httpx.HTTPError as error:
                raise GatewayError(_unreachable("lookup", error)) from None
            else:
                if not _is_busy(response.status_code):
                    return response
                failure = f"HTTP {response.status_code}"
            if attempt < LOOKUP_ATTEMPTS:
                self._sleep(BACKOFF[attempt - 1])
        raise GatewayError(
            f"YouCanPay did not answer the lookup after {LOOKUP_ATTEMPTS} attempts ({failure})"
        )

    def _answer(self, operation: str, response: httpx.Response) -> dict[str, Any]:
        """The JSON object of a 2xx answer.

        Raises: GatewayRefused for a 4xx; GatewayError for anything else unusable.
        """
        status = response.status_code
        if 200 <= status < 300:
            body = _json_object(response)
            if body is None:
                raise GatewayError(f"YouCanPay answered the {operation} with unreadable JSON")
            return body
        if 400 <= status < 500 and not _is_busy(status):
            raise GatewayRefused(self._refusal(operation, response))
        raise GatewayError(f"YouCanPay could not serve the {operation} (HTTP {status})")

    def _refusal(self, operation: str, response: httpx.Response) -> str:
        """A refusal's message, with the key blanked out should the gateway echo it."""
        body = _json_object(response) or {}
        reason = body.get("message") or body.get("error")
        text = f"YouCanPay refused the {operation} (HTTP {response.status_code})"
        if isinstance(reason, str) and reason.strip():
            text = f"{text}: {reason.strip()[:_MAX_MESSAGE]}"
        return text.replace(self._key, "[redacted]")


def _is_busy(status: int) -> bool:
    """5xx, 408 and 429 say "not now" rather than "no": unavailable, not refused."""
    return status >= 500 or status in _BUSY_STATUSES


def _unreachable(operation: str, error: httpx.HTTPError) -> str:
    # Only the exception's class: its text may quote the URL, and the lookup URL holds the key.
    return f"YouCanPay could not be reached for the {operation} ({type(error).__name__})"


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object, fractional numbers as ``Decimal`` (money never passes
    through a float); ``None`` when it is not a JSON object."""
    try:
        value = json.loads(response.content, parse_float=Decimal)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError alike
        return None
    return value if isinstance(value, dict) else None


def _token_id(body: Mapping[str, Any], operation: str) -> str:
    """The token from ``{"token": {"id": …}}`` or ``{"token": "…"}`` (the SDKs and the
    docs each show both, for tokenize and for CashPlus).

    Raises: GatewayError, when neither is there.
    """
    token = body.get("token")
    token_id = token.get("id") if isinstance(token, dict) else token
    if not isinstance(token_id, str) or not token_id.strip():
        raise GatewayError(f"YouCanPay answered the {operation} without a token")
    return token_id.strip()


def _transaction_id(body: Mapping[str, Any]) -> str | None:
    """The transaction an answer names at once, when it names one."""
    transaction = body.get("transaction_id")
    return transaction.strip() if isinstance(transaction, str) and transaction.strip() else None


def _transaction(body: Mapping[str, Any]) -> Transaction:
    """Read YouCanPay's transaction object.

    Raises: GatewayError, for a missing field, an unknown status or an unreadable amount.
    """
    status, reason = _status(body.get("status"))
    return Transaction(
        id=_text(body, "id"),
        status=status,
        order_id=_text(body, "order_id"),
        amount=_amount(body.get("amount")),
        currency=_text(body, "currency"),
        reason=reason,
        raw=dict(body),
    )


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise GatewayError(f"YouCanPay's transaction has no readable {key}")
    return value


def _status(value: object) -> tuple[TransactionStatus, str | None]:
    """The numeric status (the PHP SDK casts it with ``(int)``, so ``"1"`` is read too)."""
    code: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        code = value
    elif isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        code = int(value)
    if code is None or code not in STATUSES:
        raise GatewayError(f"YouCanPay reported an unknown transaction status {value!r:.20}")
    return STATUSES[code]


def _amount(value: object) -> int:
    """A decimal amount in MAD (``"100.50"``) as exact centimes (``10050``)."""
    if not isinstance(value, str | int | Decimal) or isinstance(value, bool):
        raise GatewayError("YouCanPay's transaction has no readable amount")
    try:
        return to_centimes(value)
    except ValidationFailed:
        raise GatewayError(f"YouCanPay reported an unreadable amount {value!r:.30}") from None


def php_reencoding(body: bytes) -> bytes | None:
    """``json_encode(json_decode($body, true))`` as PHP computes it, or ``None`` when PHP
    could not decode or re-encode ``body`` (not UTF-8, not JSON, a non-finite number)."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_no_constant)
        return php_json(value)
    except ValueError:
        return None


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def php_json(value: object) -> bytes:
    """Encode a decoded JSON value as PHP's ``json_encode`` does with its default flags.

    That differs from ``json.dumps`` in ways that change an HMAC: no spaces; ``/`` escaped
    as ``\\/``; every non-ASCII character as ``\\uxxxx`` (lowercase, surrogate pairs), but
    DEL left alone; a float printed with the fewest digits that read back, with no ``.0``
    on whole numbers and ``1.0e+25`` style past 17 digits or below ``0.0001``; integers
    beyond 64 bits as floats, as PHP decodes them; and an object whose keys are ``"0"``
    … ``"n-1"`` in order, or that is empty, as a list, because PHP decodes it into an
    array that is a list.

    Raises: ValueError, for a value PHP cannot encode (a non-finite float, another type).
    """
    return _php(value).encode("ascii")


def _php(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value in _INT64 else _php_float(float(value))
    if isinstance(value, float | Decimal):
        return _php_float(float(value))
    if isinstance(value, str):
        return _php_string(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(_php(item) for item in value) + "]"
    if isinstance(value, dict):
        if list(value) == [str(i) for i in range(len(value))]:
            return _php(list(value.values()))
        pairs = (f"{_php_string(str(key))}:{_php(item)}" for key, item in value.items())
        return "{" + ",".join(pairs) + "}"
    raise ValueError(f"PHP's json_encode has no encoding for {type(value).__name__}")


_PHP_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _php_string(text: str) -> str:
    return '"' + "".join(_php_char(char) for char in text) + '"'


def _php_char(char: str) -> str:
    escaped = _PHP_ESCAPES.get(char)
    if escaped is not None:
        return escaped
    point = ord(char)
    if point < 0x20 or 0x80 <= point < 0x10000:
        return f"\\u{point:04x}"
    if point >= 0x10000:
        high, low = divmod(point - 0x10000, 0x400)
        return f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
    return char


def _php_float(number: float) -> str:
    """PHP's ``serialize_precision = -1`` float format (its ``zend_gcvt`` in mode 0)."""
    if not math.isfinite(number):
        raise ValueError("PHP's json_encode cannot encode a non-finite number")
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign, digit_tuple, exponent = Decimal(repr(number)).as_tuple()
    if not isinstance(exponent, int):  # unreachable for a finite float; narrows the type
        raise ValueError("not a finite number")
    all_digits = "".join(map(str, digit_tuple))
    point = len(all_digits) + exponent  # the value is 0.<digits> * 10**point
    digits = all_digits.rstrip("0")
    if point > 17 or point < -3:
        shown = point - 1
        text = f"{digits[0]}.{digits[1:] or '0'}e{'-' if shown < 0 else '+'}{abs(shown)}"
    elif point <= 0:
        text = "0." + "0" * -point + digits
    else:
        whole, fraction = digits[:point].ljust(point, "0"), digits[point:]
        text = f"{whole}.{fraction}" if fraction else whole
    return f"-{text}" if sign else text
