"""The sandbox gateway, the embedded default: YouCanPay's flow, served by this service.

``tokenize`` opens a checkout whose form this service serves itself
(``/sandbox/payment-form/{token}``); ``charge`` is what that form does with a card: it
decides by YouCanPay's test cards and returns the webhook YouCanPay would send, signed
the way YouCanPay signs it, for the service to deliver to its own webhook endpoint.

A CashPlus checkout has no form: ``tokenize`` issues a 12-digit code the client would quote
at an agency, and ``settle_cash`` is what the sandbox's "agency" (``/sandbox/cashplus/{token}``)
does with it: the cash is paid (``transaction.paid``) or the code lapses unpaid
(``transaction.failed``, reason ``expired``), each a signed webhook as for cards.

Test cards: ``4242424242424242`` is paid, ``4000000000000002`` is declined; any other
number is refused outright, as YouCanPay refuses cards it does not know, and no webhook
is sent. Both are Visa cards: a paid card's webhook names the brand and the last four
digits, which the payment keeps (never the number).

A token is ``sbx_<payment id hex>_<secret>``, the secret 32 random hex digits
(``secrets.token_hex``), and is stored with the payment (``CheckoutOpened``): the form finds
the payment by the id part and admits only the token stored with it (``is_token_of``), so it
needs no state of its own and survives restarts, and a token cannot be computed from an
order's or a payment's id. Transactions are remembered by this process only, for
``lookup``.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from dataclasses import asdict, dataclass
from typing import Final
from uuid import UUID, uuid4

from ledger.domain.payment import CARD, CASHPLUS
from ledger.domain.values import CardSummary
from ledger.errors import ValidationFailed
from ledger.gateway.port import Checkout, CheckoutRequest, Transaction, TransactionNotFound
from ledger.gateway.signing import signature_of, signs

PAID_CARD: Final = "4242424242424242"
DECLINED_CARD: Final = "4000000000000002"
TOKEN_PREFIX: Final = "sbx_"
SECRET_BYTES: Final = 16
CASH_CODE_DIGITS: Final = 12
TEST_CARD_BRAND: Final = "visa"
_TOKEN: Final = re.compile(
    rf"{TOKEN_PREFIX}(?P<payment>[0-9a-f]{{32}})_[0-9a-f]{{{2 * SECRET_BYTES}}}", re.ASCII
)


@dataclass(frozen=True)
class SignedWebhook:
    """A webhook as it travels: the raw body and its ``X-Youcanpay-Signature``."""

    body: bytes
    signature: str
    paid: bool


def payment_of_token(token_id: str) -> UUID | None:
    """The payment a sandbox token names, or None for anything not shaped like one."""
    found = _TOKEN.fullmatch(token_id)
    return UUID(hex=found["payment"]) if found else None


def is_token_of(token_id: str, stored: str | None) -> bool:
    """Whether ``token_id`` is the token stored with the payment, compared in constant time."""
    if stored is None:
        return False
    return hmac.compare_digest(token_id.encode(), stored.encode())


class Sandbox:
    name = "sandbox"
    methods: tuple[str, ...] = (CARD, CASHPLUS)
    refunds_at_once = True
    sandbox = True  # its webhooks say so, as YouCanPay's sandbox's do

    def __init__(self, private_key: str, public_url: str) -> None:
        self._key = private_key
        self._public_url = public_url.rstrip("/")
        self._transactions: dict[str, Transaction] = {}
        self._lock = threading.Lock()

    def tokenize(self, request: CheckoutRequest) -> Checkout:
        """A checkout for the payment ``request.metadata["payment_id"]`` names, with a
        random secret: the token is the form's only credential."""
        payment = UUID(request.metadata["payment_id"])
        token = f"{TOKEN_PREFIX}{payment.hex}_{secrets.token_hex(SECRET_BYTES)}"
        if request.method == CASHPLUS:
            code = "".join(secrets.choice("0123456789") for _ in range(CASH_CODE_DIGITS))
            return Checkout(token, None, cash_code=code)
        return Checkout(token, f"{self._public_url}/sandbox/payment-form/{token}")

    def lookup(self, transaction_id: str) -> Transaction:
        with self._lock:
            found = self._transactions.get(transaction_id)
        if found is None:
            raise TransactionNotFound(
                f"the sandbox has no transaction {transaction_id} (it forgets them on restart)"
            )
        return found

    def verify(self, body: bytes, signature: str | None) -> bool:
        return signs(self._key, body, signature)

    def charge(self, order_id: UUID, amount: int, currency: str, card_number: str) -> SignedWebhook:
        """Charge a test card for an order; the webhook YouCanPay would send about it.

        Raises: ValidationFailed (field ``cardNumber``), for a card that is not a test card.
        """
        if card_number not in (PAID_CARD, DECLINED_CARD):
            raise ValidationFailed("the sandbox accepts only its test cards", field="cardNumber")
        paid = card_number == PAID_CARD
        card = CardSummary(TEST_CARD_BRAND, card_number[-4:]) if paid else None
        return self._settle(order_id, amount, currency, paid, "card_declined", card)

    def settle_cash(self, order_id: UUID, amount: int, currency: str, paid: bool) -> SignedWebhook:
        """The agency took the cash for a CashPlus code (``paid``), or the code lapsed
        unpaid; the webhook YouCanPay would send about it."""
        return self._settle(order_id, amount, currency, paid, "expired", None)

    def _settle(
        self,
        order_id: UUID,
        amount: int,
        currency: str,
        paid: bool,
        failure: str,
        card: CardSummary | None,
    ) -> SignedWebhook:
        transaction = Transaction(
            id=f"sbx_tx_{uuid4().hex}",
            status="paid" if paid else "failed",
            order_id=str(order_id),
            amount=amount,
            currency=currency,
            reason=None if paid else failure,
            card=card,
        )
        with self._lock:
            self._transactions[transaction.id] = transaction
        body = json.dumps(_envelope(transaction), separators=(",", ":")).encode()
        return SignedWebhook(body, signature_of(self._key, body), paid)


def _envelope(transaction: Transaction) -> dict[str, object]:
    """YouCanPay's webhook envelope (docs/api.md, "Payments"), with the paying card's
    brand and last four digits when a card paid."""
    described: dict[str, object] = {
        "id": transaction.id,
        "status": transaction.status,
        "order_id": transaction.order_id,
        "amount": transaction.amount,
        "currency": transaction.currency,
        "reason": transaction.reason,
    }
    if transaction.card is not None:
        described["card"] = asdict(transaction.card)
    return {
        "id": f"sbx_evt_{uuid4().hex}",
        "event_name": f"transaction.{transaction.status}",
        "sandbox": True,
        "payload": {"transaction": described, "metadata": {}},
    }
