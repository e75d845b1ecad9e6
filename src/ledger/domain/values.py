"""Value types shared by the aggregates, and how they are written into stored events."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from eventsourcing.persistence import Transcoding

from ledger.actors import Actor
from ledger.errors import ValidationFailed
from ledger.money import check_centimes

PACKAGE_IDS: Final = ("basic", "standard", "premium")
MAX_DELIVERY_DAYS: Final = 365
MAX_REVISIONS: Final = 100
MAX_TEXT: Final = 5_000
MAX_TITLE: Final = 200
HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""Unicode categories no text of the ledger may hold: controls (NUL, CR, LF, the ANSI escape
…), format characters (zero-width spaces and joiners, bidi controls, BOM), lone
surrogates, and the line and paragraph separators."""
LINE_BREAKS: Final = frozenset("\n\r\t")
"""The controls a multi-line text keeps: newlines (LF, CR or CRLF) and tabs."""


@dataclass(frozen=True)
class CardSummary:
    """What a payment keeps of the card that paid it, as the gateway reported it: the
    brand and the last four digits. Never more of the number: a longer "last4" is refused,
    and a brand holds no digits at all (brands are names: visa, mastercard, amex …), so a
    full card number cannot slip into an event by a gateway's mistake."""

    brand: str
    last4: str

    def __post_init__(self) -> None:
        if not (self.last4.isascii() and self.last4.isdigit() and len(self.last4) == 4):
            raise ValidationFailed("a card's last four digits are four digits", field="last4")
        short_name = 0 < len(self.brand) <= 32 and self.brand.isascii()
        if not (short_name and all(c.isalpha() or c in " -_" for c in self.brand)):
            raise ValidationFailed("a card brand is a short name", field="brand")


class OrderStatus(StrEnum):
    """The order's public status: exactly the seed's four values."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Stage(StrEnum):
    """Where a non-terminal order stands; ``closed`` once completed or cancelled."""

    AWAITING_PAYMENT = "awaiting_payment"
    AWAITING_CASH_PAYMENT = "awaiting_cash_payment"
    """The client chose CashPlus and holds a code to pay with at an agency, hours or days
    later: the order waits for the gateway's word that the cash was paid."""
    AWAITING_ACCEPTANCE = "awaiting_acceptance"
    IN_PROGRESS = "in_progress"
    DELIVERED = "delivered"
    REVISION_REQUESTED = "revision_requested"
    CANCELLATION_REQUESTED = "cancellation_requested"
    IN_DISPUTE = "in_dispute"
    CLOSED = "closed"


class CancelReason(StrEnum):
    PAYMENT_FAILED = "payment_failed"
    CLIENT_WITHDREW = "client_withdrew"
    MUTUAL_AGREEMENT = "mutual_agreement"
    POLICY_VIOLATION = "policy_violation"
    DISPUTE_REFUND = "dispute_refund"
    REFUNDED_AT_GATEWAY = "refunded_at_gateway"


class DeadlineReason(StrEnum):
    """Why the clock acted on an order, written into the event it took (``reason``)."""

    DELIVERY_UNANSWERED = "delivery_unanswered"
    """The client neither completed, asked for a revision, disputed nor asked to cancel
    within ``LEDGER_AUTO_COMPLETE_DAYS`` of the delivery."""
    CANCELLATION_UNANSWERED = "cancellation_unanswered"
    """The other party did not answer a cancellation request within
    ``LEDGER_CANCELLATION_ANSWER_HOURS``."""
    PAST_DUE = "past_due"
    """The order's ``dueAt`` passed with no delivery."""


class DisputeOutcome(StrEnum):
    RELEASE = "release"
    REFUND = "refund"
    SPLIT = "split"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


@dataclass(frozen=True)
class Package:
    """One purchasable tier of a gig; copied whole into every order placed for it.

    Validation is a separate step (``validated``), not ``__post_init__``: stored events are
    decoded into packages on every replay, and a rule tightened later must never make an old
    event unreadable.
    """

    package_id: str
    price: int
    delivery_days: int
    revisions: int
    description: str

    def validated(self) -> Package:
        """Return this package if every field is acceptable.

        Raises:
            ValidationFailed: the first field that is not.
        """
        if self.package_id not in PACKAGE_IDS:
            raise ValidationFailed(
                f"packageId must be one of {', '.join(PACKAGE_IDS)}", field="packageId"
            )
        check_centimes(self.price, field="price")
        _check_int_range(self.delivery_days, 1, MAX_DELIVERY_DAYS, "deliveryDays")
        _check_int_range(self.revisions, 0, MAX_REVISIONS, "revisions")
        check_text(self.description, "description", max_length=MAX_TEXT)
        return self


def check_text(
    value: object,
    field: str,
    *,
    max_length: int,
    required: bool = True,
    single_line: bool = False,
) -> str:
    """Return ``value`` if it is a string of acceptable length and characters.

    ``single_line`` (titles, references, names) refuses every control and invisible
    character; otherwise newlines and tabs are kept, and the others refused alike.

    Raises:
        ValidationFailed: not a string, empty when required, longer than ``max_length``, or
            holding a NUL character (no text column can store one, and no text needs one)
            or another control or invisible character (``hidden_characters``).
    """
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be a string", field=field)
    if "\x00" in value:
        raise ValidationFailed(f"{field} must not contain NUL characters", field=field)
    if required and not value.strip():
        raise ValidationFailed(f"{field} must not be empty", field=field)
    if len(value) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters", field=field)
    if hidden := hidden_characters(value, keep=frozenset() if single_line else LINE_BREAKS):
        kind = "one line of text" if single_line else "text"
        raise ValidationFailed(f"{field} must be {kind} without {hidden}", field=field)
    return value


def hidden_characters(text: str, *, keep: frozenset[str] = frozenset()) -> str | None:
    """What in ``text`` is a control or invisible character (``HIDDEN_CATEGORIES``), other
    than those of ``keep``, described for a message (``"control or invisible characters
    (U+200B)"``); ``None`` when there is none."""
    if text.isprintable():  # the common case, in C: no control, format or separator at all
        return None
    for char in text:
        if char not in keep and unicodedata.category(char) in HIDDEN_CATEGORIES:
            return f"control or invisible characters (U+{ord(char):04X})"
    return None


def _check_int_range(value: object, low: int, high: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"{field} must be a whole number from {low} to {high}", field=field)


class ActorAsDict(Transcoding):
    """Stores an ``Actor`` as ``{"id", "role", "request_id"}`` inside an event."""

    type = Actor
    name = "actor"

    def encode(self, obj: Actor) -> dict[str, Any]:
        return vars(obj)  # flat fields; asdict() deep-copies them one by one (5 µs an event)

    def decode(self, data: dict[str, Any]) -> Actor:
        return Actor(**data)


class PackageAsDict(Transcoding):
    """Stores a ``Package`` as a plain mapping inside an event or snapshot."""

    type = Package
    name = "package"

    def encode(self, obj: Package) -> dict[str, Any]:
        return vars(obj)  # flat fields, as ``ActorAsDict``

    def decode(self, data: dict[str, Any]) -> Package:
        return Package(**data)
