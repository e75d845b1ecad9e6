"""Receiving a gateway webhook: verify, read, record once — for the route and the sandbox.

The sandbox checkout delivers its webhooks through ``receive`` too, so what it proves
(signatures, deduplication, amount checks) is what real YouCanPay webhooks go through.

The answer is 2xx only once the events are stored. A notification that was already
recorded, that arrives out of order (a failure after the payment succeeded), or that names
an event we do not handle is answered 200 and changes nothing: the gateway must stop
retrying it. Unknown orders and amount or currency mismatches are errors (404, 409) and
logged: they need a person.

The envelope's ``sandbox`` flag (absent: false) must say what the gateway is: a test-money
notification is never recorded by a live installation, nor a live one by a sandbox (409
``sandbox_mismatch``). A refund must name the transaction that paid (409 ``conflict``).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from api.http.problems import ApiError, invalid
from ledger.domain.values import CardSummary
from ledger.errors import AlreadyApplied, InvalidTransition, ValidationFailed
from ledger.gateway.port import Transaction, TransactionStatus
from ledger.service import LedgerApp

log = logging.getLogger("api.http.webhooks")
HANDLED: dict[str, TransactionStatus] = {
    "transaction.paid": "paid",
    "transaction.failed": "failed",
    "transaction.refunded": "refunded",
}
Outcome = Literal["recorded", "duplicate", "ignored"]


def _whole(value: Any) -> Any:
    """Amounts come in centimes, as a number or a string of digits."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


class _Gateway(BaseModel):
    model_config = ConfigDict(extra="allow")  # the gateway may add fields; we read these


class WebhookTransaction(_Gateway):
    id: Annotated[str, Field(min_length=1, max_length=255)]
    order_id: Annotated[str, Field(min_length=1, max_length=255)]
    amount: Annotated[int, BeforeValidator(_whole), Field(strict=True, gt=0)]
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    reason: Annotated[str | None, Field(max_length=1_000)] = None
    card: Any = None
    """``{"brand", "last4"}`` of the card that paid, when the gateway sends it. Read
    leniently (``card_summary``): a malformed one is dropped, not the money's news."""

    def card_summary(self, webhook_id: str) -> CardSummary | None:
        """The card named, or ``None`` when none is, or when it is not a brand and four
        digits (logged: the payment is recorded without it, never with a card number)."""
        if self.card is None:
            return None
        named = self.card if isinstance(self.card, dict) else {}
        brand, last4 = named.get("brand"), named.get("last4")
        try:
            if isinstance(brand, str) and isinstance(last4, str):
                return CardSummary(brand, last4)
        except ValidationFailed:
            pass
        log.warning("webhook %s: its card is not a brand and four digits; not kept", webhook_id)
        return None


class WebhookPayload(_Gateway):
    transaction: WebhookTransaction


class YouCanPayWebhook(_Gateway):
    id: Annotated[str, Field(min_length=1, max_length=255)]
    event_name: Annotated[str, Field(max_length=100)]
    sandbox: bool = False
    payload: WebhookPayload

    def transaction(self, status: TransactionStatus) -> Transaction:
        found = self.payload.transaction
        return Transaction(
            found.id,
            status,
            found.order_id,
            found.amount,
            found.currency,
            found.reason,
            card=found.card_summary(self.id),
        )


async def receive(
    ledger: LedgerApp, body: bytes, signature: str | None, request_id: str | None = None
) -> tuple[Outcome, int | None]:
    """Verify and record one webhook; returns what happened and the last event's position.
    The command is performed on the event loop (``LedgerApp.perform``).

    Raises:
        ApiError: 401 for a missing or wrong signature, 422 for an unreadable envelope,
            409 for an envelope whose ``sandbox`` flag is not the gateway's mode.
        NotFound: no payment for the order named. Conflict: amount or currency differ, or
            a refund of another transaction than the payment's.
    """
    if ledger.gateway is None or not ledger.gateway.verify(body, signature):
        raise ApiError(401, "the webhook signature is not valid", code="invalid_signature")
    try:
        webhook = YouCanPayWebhook.model_validate_json(body)
    except ValidationError as error:
        raise invalid(error, "not a YouCanPay webhook") from None
    if webhook.sandbox != ledger.gateway.sandbox:
        log.warning(
            "webhook %s refused: sandbox=%s, but the gateway is %s",
            webhook.id,
            webhook.sandbox,
            "the sandbox" if ledger.gateway.sandbox else "live",
        )
        expected = "true" if ledger.gateway.sandbox else "false (or absent)"
        raise ApiError(
            409,
            f"the webhook's sandbox flag is {str(webhook.sandbox).lower()}; this gateway "
            f"takes only sandbox={expected}",
            code="sandbox_mismatch",
        )
    if webhook.event_name not in HANDLED:
        log.info("webhook %s: event %s is not handled; ignored", webhook.id, webhook.event_name)
        return "ignored", None
    transaction = webhook.transaction(HANDLED[webhook.event_name])
    try:
        done = await ledger.perform(
            lambda: ledger.apply_gateway_event(
                webhook.id, webhook.event_name, transaction, request_id
            )
        )
    except AlreadyApplied:
        return "duplicate", None
    except (InvalidTransition, ValidationFailed) as error:
        log.warning("webhook %s (%s) ignored: %s", webhook.id, webhook.event_name, error.detail)
        return "ignored", None
    return "recorded", done.position
