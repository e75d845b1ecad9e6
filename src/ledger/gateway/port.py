"""``PaymentGateway``: what the ledger needs from a payment provider, and nothing more.

The ledger asks a gateway to open a checkout for a payment (``tokenize``): a hosted form for a
card, a code to pay in cash at an agency for CashPlus; to tell it the state of a transaction
(``lookup``); and to check that a webhook really comes from it (``verify``). Each gateway
says which payment methods it takes (``methods``). Amounts cross this port as integer
centimes, as everywhere inside.

    GatewayError              the gateway could not be reached or answered nonsense;
     │                         the payment and its order stay pending and consistent
     └── GatewayRefused       the gateway understood and said no (bad key, bad amount …)
          └── TransactionNotFound   the gateway has no transaction by that id
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ledger.domain.payment import CARD
from ledger.domain.values import CardSummary
from ledger.errors import LedgerError

TransactionStatus = Literal["pending", "paid", "failed", "refunded"]


class GatewayError(LedgerError):
    """The gateway is unreachable, timed out, or answered something we cannot read."""

    code = "gateway_unavailable"


class GatewayRefused(GatewayError):
    """The gateway answered and refused the request."""

    code = "gateway_refused"


class TransactionNotFound(GatewayRefused):
    """The gateway answered that it has no transaction by that id (the sandbox forgets
    its transactions when the process restarts)."""

    code = "transaction_not_found"


@dataclass(frozen=True)
class CheckoutRequest:
    """What a checkout is opened for (``order_id`` is what the gateway echoes back), and by
    which method."""

    order_id: str
    amount: int
    currency: str
    success_url: str
    error_url: str
    customer_ip: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    method: str = CARD


@dataclass(frozen=True)
class Checkout:
    """What the gateway opened: ``token_id`` names it; for a card, ``payment_url`` is the
    hosted form where the client goes to pay (absolute); for CashPlus, ``cash_code`` is the
    code the client pays with at an agency, and there is no form. ``transaction_id``, when
    the gateway names the transaction at once, lets support look it up before any webhook
    came."""

    token_id: str
    payment_url: str | None
    transaction_id: str | None = None
    cash_code: str | None = None


@dataclass(frozen=True)
class Transaction:
    """A transaction as the gateway reports it."""

    id: str
    status: TransactionStatus
    order_id: str
    amount: int
    currency: str
    reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    card: CardSummary | None = None
    """The paying card's brand and last four digits, when the gateway reports them."""


class PaymentGateway(Protocol):
    name: str
    sandbox: bool
    """Whether this gateway moves test money: a webhook's envelope says the same
    (``"sandbox": true``), or it is refused."""
    methods: tuple[str, ...]
    """The payment methods this gateway takes (``ledger.domain.payment.PAYMENT_METHODS``
    order): what ``GET /v1/payment-methods`` lists and what a payment may use."""
    refunds_at_once: bool
    """Whether a refund the ledger decides is made there and then (the sandbox), or only
    requested, to be made at the gateway by hand and confirmed (YouCanPay documents no
    refund API)."""

    def tokenize(self, request: CheckoutRequest) -> Checkout:
        """Open a checkout by ``request.method`` (one of ``methods``).

        Raises: GatewayError, GatewayRefused."""
        ...

    def lookup(self, transaction_id: str) -> Transaction:
        """The transaction's current state.

        Raises: GatewayError, TransactionNotFound (unknown), GatewayRefused.
        """
        ...

    def verify(self, body: bytes, signature: str | None) -> bool:
        """Whether ``signature`` signs the raw webhook ``body``."""
        ...
