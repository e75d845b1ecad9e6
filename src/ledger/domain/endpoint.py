"""The WebhookEndpoint aggregate: a URL of the marketplace's backend that events are sent to.

An endpoint is event-sourced like everything else, so who registered it, changed it, rotated
its secret, disabled or deleted it, and when, is part of the log (and of the audit chain).
Its signing secrets are never in an event: each is derived from the installation's webhook
key, the endpoint's id and the secret's ``generation`` (``api.delivery.signing``), so the
events say only which generation signs, and since when.

``EVENT_TYPES`` is the public vocabulary of what an endpoint may subscribe to: each type
names the ledger event it is sent for. It is versioned with the payload (``API_VERSION``):
a type is never renamed, only added.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.actors import Actor
from ledger.domain.values import check_text
from ledger.errors import InvalidTransition, ValidationFailed

API_VERSION: Final = "1"
EVENT_TYPES: Final = {
    "OrderPlaced": "order.placed",
    "OrderPaymentConfirmed": "order.paid",
    "OrderAccepted": "order.accepted",
    "RequirementsSubmitted": "order.requirements_submitted",
    "OrderDelivered": "order.delivered",
    "RevisionRequested": "order.revision_requested",
    "OrderCompleted": "order.completed",
    "OrderReviewed": "order.reviewed",
    "CancellationRequested": "order.cancellation_requested",
    "OrderCancelled": "order.cancelled",
    "DisputeOpened": "order.disputed",
    "DisputeResolved": "order.dispute_resolved",
    "OrderMarkedLate": "order.late",
    "ExtensionRequested": "order.extension_requested",
    "ExtensionAccepted": "order.extension_accepted",
    "ExtensionDeclined": "order.extension_declined",
    "FundsCleared": "funds.cleared",
    "PaymentSucceeded": "payment.succeeded",
    "PaymentFailed": "payment.failed",
    "RefundRecorded": "payment.refunded",
    "RefundConfirmed": "payment.refunded",
}
"""The ledger event → the public type a delivery carries (two refund events, one type: money
went back either way). ``funds.cleared`` carries the order, ``payment.*`` the payment."""
PUBLIC_TYPES: Final = frozenset(EVENT_TYPES.values())
ALL: Final = "*"
MAX_URL = 2048
MAX_DESCRIPTION = 500
ROTATION_OVERLAP: Final = timedelta(hours=24)
"""How long the previous secret keeps signing beside the new one after a rotation."""


def check_subscription(events: Sequence[str]) -> list[str]:
    """The event types an endpoint asks for, sorted and once each (``["*"]``: all).

    Raises: ValidationFailed, for none, an unknown type, or ``*`` beside others.
    """
    if not events:
        raise ValidationFailed("events must name at least one event type, or *", field="events")
    chosen = sorted(set(events))
    if ALL in chosen and len(chosen) > 1:
        raise ValidationFailed('events is either ["*"] or a list of types', field="events")
    if unknown := [name for name in chosen if name != ALL and name not in PUBLIC_TYPES]:
        known = ", ".join(sorted(PUBLIC_TYPES))
        raise ValidationFailed(
            f"unknown event types: {', '.join(unknown)} (known: {known}, or *)", field="events"
        )
    return chosen


def _check_description(description: str | None) -> None:
    if description:
        check_text(description, "description", max_length=MAX_DESCRIPTION, single_line=True)


class WebhookEndpoint(Aggregate):
    """Where and what to deliver; whether it is enabled; which secret signs."""

    @event("EndpointRegistered")
    def __init__(
        self,
        endpoint_id: UUID,
        url: str,
        events: list[str],
        description: str | None,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.url = url
        self.events = events
        self.description = description
        self.enabled = True
        self.disabled_reason: str | None = None
        self.generation = 1
        """Which derived secret signs (``api.delivery.signing.secret_for``)."""
        self.previous_until: datetime | None = None
        """Until when the previous generation signs too, after a rotation."""
        self.deleted = False
        self.created_by = actor.id
        self.created_at = timestamp
        self.updated_at = timestamp

    @staticmethod
    def create_id(endpoint_id: UUID) -> UUID:
        return endpoint_id

    @classmethod
    def register(
        cls,
        endpoint_id: UUID,
        url: str,
        events: Sequence[str],
        description: str | None,
        actor: Actor,
        timestamp: datetime,
    ) -> WebhookEndpoint:
        """Raises: ValidationFailed (events, description)."""
        chosen = check_subscription(events)
        _check_description(description)
        return cls(
            endpoint_id=endpoint_id,
            url=url,
            events=chosen,
            description=description,
            actor=actor,
            timestamp=timestamp,
        )

    def _require_present(self) -> None:
        if self.deleted:
            raise InvalidTransition("this webhook endpoint was deleted")

    def change(
        self,
        actor: Actor,
        timestamp: datetime,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        description: str | None = None,
        enabled: bool | None = None,
    ) -> None:
        """Change what is given (re-enabling clears the reason it was disabled); the same
        values again record nothing.

        Raises: InvalidTransition (deleted), ValidationFailed.
        """
        self._require_present()
        chosen = self.events if events is None else check_subscription(events)
        _check_description(description)
        new = (
            self.url if url is None else url,
            chosen,
            self.description if description is None else description,
            self.enabled if enabled is None else enabled,
        )
        if new != (self.url, self.events, self.description, self.enabled):
            self._changed(*new, actor=actor, timestamp=timestamp)

    @event("EndpointChanged")
    def _changed(
        self,
        url: str,
        events: list[str],
        description: str | None,
        enabled: bool,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        if enabled and not self.enabled:
            self.disabled_reason = None
        self.url, self.events, self.description, self.enabled = url, events, description, enabled
        self.updated_at = timestamp

    def disable(self, reason: str, actor: Actor, timestamp: datetime) -> None:
        """Stop deliveries, saying why (the dispatcher, after failing for days).

        Raises: InvalidTransition (deleted).
        """
        self._require_present()
        if self.enabled:
            self._disabled(reason, actor, timestamp)

    @event("EndpointDisabled")
    def _disabled(self, reason: str, actor: Actor, timestamp: datetime) -> None:
        self.enabled, self.disabled_reason, self.updated_at = False, reason, timestamp

    def rotate_secret(self, actor: Actor, timestamp: datetime) -> None:
        """A new secret signs from now on; the one before signs beside it for
        ``ROTATION_OVERLAP`` (only two sign at once, so no second rotation before it ends).

        Raises: InvalidTransition (deleted, or the last rotation's overlap not over).
        """
        self._require_present()
        if self.previous_until is not None and timestamp < self.previous_until:
            raise InvalidTransition(
                "the previous rotation's old secret signs until"
                f" {self.previous_until.isoformat()}: rotate again after that"
            )
        self._secret_rotated(self.generation + 1, timestamp + ROTATION_OVERLAP, actor, timestamp)

    @event("SecretRotated")
    def _secret_rotated(
        self, generation: int, previous_until: datetime, actor: Actor, timestamp: datetime
    ) -> None:
        self.generation, self.previous_until = generation, previous_until
        self.updated_at = timestamp

    def delete(self, actor: Actor, timestamp: datetime) -> None:
        """Nothing more is delivered to it; what waited for it is given up.

        Raises: InvalidTransition (deleted already).
        """
        self._require_present()
        self._deleted(actor, timestamp)

    @event("EndpointDeleted")
    def _deleted(self, actor: Actor, timestamp: datetime) -> None:
        self.deleted, self.enabled, self.updated_at = True, False, timestamp

    def generations_signing(self, now: datetime) -> list[int]:
        """The secret generations that sign a delivery sent at ``now``, newest first."""
        if self.previous_until is not None and now < self.previous_until:
            return [self.generation, self.generation - 1]
        return [self.generation]
