"""The JSON of docs/api.md as pydantic models: requests are strict, answers document themselves.

Requests refuse unknown fields and wrong types (a string is not a number, ``1.0`` is not a
rating). Amounts are JSON numbers in MAD with at most two decimals; they are turned into
integer centimes here, by ``ledger.money``, and never exist as floats inside. Answers carry
``Decimal`` amounts, written as JSON numbers.

These models are the edge's; the domain has its own value types and events.
"""

from __future__ import annotations

import math
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel

from ledger.domain.conversation import MAX_ATTACHMENTS, MAX_MESSAGE
from ledger.domain.conversation import MAX_NAME as MAX_ATTACHMENT_NAME
from ledger.domain.conversation import MAX_SIZE as MAX_ATTACHMENT_SIZE
from ledger.domain.conversation import MAX_URL as MAX_ATTACHMENT_URL
from ledger.domain.endpoint import MAX_DESCRIPTION, MAX_URL, PUBLIC_TYPES
from ledger.domain.order import MAX_EXTENSION_DAYS
from ledger.domain.payment import PAYMENT_METHODS
from ledger.domain.values import (
    HIDDEN_CATEGORIES,
    LINE_BREAKS,
    MAX_DELIVERY_DAYS,
    MAX_REVISIONS,
    MAX_TEXT,
    MAX_TITLE,
    PACKAGE_IDS,
    DisputeOutcome,
    OrderStatus,
    PaymentStatus,
    Stage,
)
from ledger.errors import ValidationFailed
from ledger.money import to_centimes


def _centimes(value: Any) -> int:
    if isinstance(value, str):  # amounts are JSON numbers; "12.50" is a client bug
        raise ValueError("must be a JSON number")
    try:
        return to_centimes(value)
    except ValidationFailed as error:
        raise ValueError(error.detail.removeprefix("amount ")) from None


def _whole(value: Any) -> Any:
    """JSON Schema's ``integer`` includes ``4.0``: take a whole number written with a
    fraction (a ``Decimal`` as the routes read it, or a float) as the int it is; a fraction,
    a bool or a string still fail the strict check that follows."""
    if isinstance(value, Decimal | float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


Centimes = Annotated[
    int,
    BeforeValidator(_centimes),
    WithJsonSchema(
        {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": 1_000_000,
            "multipleOf": 0.01,
            "description": "MAD, at most two decimals",
        }
    ),
]
"""A positive MAD amount with at most two decimals, read into integer centimes."""
Money = Annotated[
    Decimal,
    PlainSerializer(float, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "description": "MAD, at most two decimals"}),
]
"""An amount in an answer: exact inside, a JSON number on the wire (``from_centimes``
gives two places, which a double represents and prints exactly)."""
WHOLE = BeforeValidator(_whole)
"""On an ``int`` field: ``4`` or ``4.0``, never ``4.5``, ``true`` or ``"4"``."""


def text_pattern(*, single_line: bool) -> str:
    """The documented form of ``check_text``'s rule, for generated clients and contract
    tests: no control or invisible character (``HIDDEN_CATEGORIES``, built from the same
    Unicode tables), bar newlines and tabs in multi-line text, and one character that is not
    white space."""
    keep = {ord(c) for c in (() if single_line else LINE_BREAKS)}
    hidden = "".join(
        _escaped(low) if low == high else f"{_escaped(low)}-{_escaped(high)}"
        for low, high in _runs(c for c in _hidden_points() if c not in keep)
    )
    return f"^[^{hidden}]*[^{hidden}\\s][^{hidden}]*$"


@cache
def _hidden_points() -> tuple[int, ...]:
    """Every code point of ``HIDDEN_CATEGORIES``: one pass over Unicode (a fifth of a
    second), shared by both patterns. Lone surrogates (Cs) are left out of the class: no
    UTF-8 text carries one, only a JSON escape can, and regex engines differ on surrogates
    in a class."""
    categories = HIDDEN_CATEGORIES - {"Cs"}
    return tuple(c for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) in categories)


def _runs(points: Iterable[int]) -> Iterator[tuple[int, int]]:
    low = high = -2
    for point in points:
        if point != high + 1:
            if low >= 0:
                yield low, high
            low = point
        high = point
    if low >= 0:
        yield low, high


def _escaped(point: int) -> str:
    return f"\\u{point:04x}" if point <= 0xFFFF else f"\\U{point:08x}"


Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TEXT),
    Field(json_schema_extra={"pattern": text_pattern(single_line=False)}),
]
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]
"""A moment in an answer: ISO 8601 in UTC, as the events recorded it (``ledger.clock.iso``),
passed through as written rather than parsed and printed again."""

PackageId = Literal["basic", "standard", "premium"]
PaymentMethod = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$"),
    Field(json_schema_extra={"enum": list(PAYMENT_METHODS)}),
]


class Schema(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Request(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)


# -- requests ---------------------------------------------------------------------------------


class PackageIn(Request):
    package_id: PackageId
    price: Centimes
    delivery_days: Annotated[int, Field(ge=1, le=MAX_DELIVERY_DAYS), WHOLE]
    revisions: Annotated[int, Field(ge=0, le=MAX_REVISIONS), WHOLE]
    description: Text


GigTitle = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TITLE),
    Field(json_schema_extra={"pattern": text_pattern(single_line=True)}),
]
GigPackages = Annotated[
    list[PackageIn],
    Field(
        min_length=1,
        max_length=3,
        json_schema_extra={
            "description": "1 to 3 packages, each packageId at most once",
            "allOf": [
                {
                    "contains": {"properties": {"packageId": {"const": package_id}}},
                    "minContains": 0,
                    "maxContains": 1,
                }
                for package_id in PACKAGE_IDS
            ],
        },
    ),
]


class GigIn(Request):
    title: GigTitle
    packages: GigPackages


class GigPatchIn(Request):
    """What the gig's freelancer changes: the title, the packages (all of them, replacing
    the old ones), or both. A field left out stays as it is; ``null`` is no title."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    title: GigTitle = None  # type: ignore[assignment]  # absent, never null
    packages: GigPackages = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _something(self) -> GigPatchIn:
        if self.title is None and self.packages is None:
            raise ValueError("give a title, packages, or both")
        return self


class OrderIn(Request):
    gig_id: Annotated[
        str,
        StringConstraints(min_length=1, max_length=64),
        Field(json_schema_extra={"format": "uuid"}),
    ]
    package_id: PackageId
    requirements: Text | None = None


class RequirementsIn(Request):
    text: Text


class DeliveryIn(Request):
    message: Text


class ReasonIn(Request):
    """A revision request, a cancellation request or a dispute: why."""

    reason: Text


class ExtensionIn(Request):
    """The freelancer asks for more days to deliver, saying why."""

    days: Annotated[int, Field(ge=1, le=MAX_EXTENSION_DAYS), WHOLE]
    reason: Text


class CancelIn(Request):
    reason: Literal["client_withdrew", "policy_violation"]
    note: Text | None = None


class ResolutionIn(Request):
    outcome: Annotated[DisputeOutcome, Field(strict=False)]  # a JSON string names the member
    refund_amount: Centimes | None = None


class ReviewIn(Request):
    rating: Annotated[int, Field(ge=1, le=5), WHOLE]
    comment: Text | None = None


class RefundConfirmationIn(Request):
    reference: Annotated[str, StringConstraints(min_length=1, max_length=255)]


class PaymentIn(Request):
    payment_method: PaymentMethod


# -- answers ----------------------------------------------------------------------------------


class PackageOut(Schema):
    package_id: PackageId
    price: Money
    delivery_days: int
    revisions: int
    description: str


class Rating(Schema):
    average: float | None
    count: int


class Gig(Schema):
    id: str
    freelancer_id: str
    title: str
    currency: str
    packages: list[PackageOut]
    archived: bool
    rating: Rating
    created_at: Timestamp
    updated_at: Timestamp


class ExtensionOut(Schema):
    days: int
    reason: str
    requested_at: Timestamp


class Order(Schema):
    id: str
    user_id: str
    gig_id: str
    package_id: PackageId
    freelancer_id: str
    status: OrderStatus
    stage: Stage
    total_amount: Money
    currency: str
    package: PackageOut
    revisions_used: int
    requirements: str | None
    due_at: Timestamp | None
    extension: ExtensionOut | None
    """The freelancer's request for more time, waiting for the client's answer."""
    created_at: Timestamp
    updated_at: Timestamp
    version: int


class ActorOut(Schema):
    id: str
    role: str


class HistoryEntry(Schema):
    status: OrderStatus
    stage: Stage
    event: str
    at: Timestamp
    actor: ActorOut


class History(Schema):
    """A page of the order's history, oldest first; ``nextAfter`` is the last entry's
    order version when more follow (send it back as ``after``), else ``null``."""

    data: list[HistoryEntry]
    next_after: int | None


class OrderState(Schema):
    status: OrderStatus
    stage: Stage


class TimelineEntry(Schema):
    """One stored event (``data`` as stored: snake_case names, amounts in centimes), who
    did it, and the order's status and stage after it."""

    position: int
    stream: str
    version: int
    type: str
    at: Timestamp
    actor: ActorOut
    data: dict[str, Any]
    state: OrderState


class Timeline(Schema):
    """A page of the timeline, by position; ``nextAfter`` is the last entry's position when
    more follow (send it back as ``after``), else ``null``."""

    data: list[TimelineEntry]
    next_after: int | None


class Refund(Schema):
    """``completed`` counts in ``refundedAmount``; ``requested`` waits to be made at the
    gateway (YouCanPay) and confirmed with the gateway's ``reference``."""

    amount: Money
    currency: str
    reason: str
    at: Timestamp
    status: Literal["completed", "requested"]
    reference: str | None


class Checkout(Schema):
    """What the gateway opened: for a card, ``paymentUrl`` is its hosted form; a CashPlus
    payment has no form (``null``), its code is in the payment's ``cashplus``."""

    token_id: str
    payment_url: str | None


class Card(Schema):
    """The card that paid, as the gateway reported it: never more than the last four digits."""

    brand: str
    last4: Annotated[str, Field(pattern=r"^[0-9]{4}$")]


class CashPlus(Schema):
    """A CashPlus payment's code, quoted at an agency to pay in cash, and how to."""

    code: str
    instructions: str


class PaymentMethodOut(Schema):
    """A method the configured gateway takes, and how its payment goes."""

    method: Literal["credit_card", "cashplus"]
    flow: Literal["hosted_form", "cash_code"]
    expires_in_minutes: int
    """How long a payment by this method may stay unpaid before it fails (``expired``)."""
    description: str


class PaymentMethods(Schema):
    data: list[PaymentMethodOut]


class Payment(Schema):
    id: str
    order_id: str
    status: PaymentStatus
    amount: Money
    currency: str
    payment_method: str
    transaction_id: str | None
    failure_reason: str | None
    refunded_amount: Money
    refunds: list[Refund]
    checkout: Checkout | None
    card: Card | None
    cashplus: CashPlus | None
    expires_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    version: int


class Account(Schema):
    """``balance`` has the account's natural sign: what the gateway holds (assets), what
    is owed (liabilities), what was earned (revenue)."""

    account: str
    debits: Money
    credits: Money
    balance: Money


class Accounts(Schema):
    data: list[Account]


class PostingOut(Schema):
    account: str
    debit: Money
    credit: Money


class Entry(Schema):
    id: str
    order_id: str
    payment_id: str
    position: int
    at: Timestamp
    description: str
    postings: list[PostingOut]


class TrialBalance(Schema):
    debits: Money
    credits: Money
    balanced: bool


class Balance(Schema):
    """What the platform owes a freelancer: released but still pending clearance, and
    cleared (``available``)."""

    pending_clearance: Money
    available: Money
    currency: str


Item = TypeVar("Item")


class Page(Schema, Generic[Item]):
    data: list[Item]
    has_more: bool


class AuditEvent(Schema):
    """An event as stored; ``data`` holds amounts in integer centimes, as the log does."""

    position: int
    stream: str
    version: int
    type: str
    at: Timestamp
    data: dict[str, Any]


class AuditEvents(Schema):
    data: list[AuditEvent]
    next_after: int


class ChainHead(Schema):
    position: int
    hash: str


class Verification(Schema):
    ok: bool
    events: int
    head: ChainHead
    first_mismatch: int | None


# -- notifications (docs/api.md "Notifications and preferences") ------------------------------

NotificationType = Literal[
    "order.received",
    "order.status_changed",
    "order.delivered",
    "payment.confirmed",
    "review.requested",
    "order.late",
    "order.extension_requested",
    "order.extension_answered",
    "order.message",
]


class Notification(Schema):
    """Something that happened to one of the caller's orders. ``order.late`` (an order past
    its due date, not delivered) is ours, beyond the five types first designed."""

    id: str
    type: NotificationType
    order_id: str
    message: str
    created_at: Timestamp
    read_at: Timestamp | None


class PreferencesIn(Request):
    order_updates_notifications: bool


class Preferences(Schema):
    order_updates_notifications: bool


EventType = Literal[tuple(sorted(PUBLIC_TYPES))]  # type: ignore[valid-type]
"""What a webhook endpoint subscribes to (``ledger.domain.endpoint.EVENT_TYPES``)."""
Subscription = Annotated[
    list[EventType | Literal["*"]],  # type: ignore[valid-type]
    Field(min_length=1, max_length=len(PUBLIC_TYPES)),
]
EndpointUrl = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL)]
EndpointDescription = Annotated[
    str,
    StringConstraints(max_length=MAX_DESCRIPTION),
    Field(json_schema_extra={"pattern": text_pattern(single_line=True)}),
]


class WebhookEndpointIn(Request):
    url: EndpointUrl
    events: Subscription
    description: EndpointDescription | None = None


class WebhookEndpointPatchIn(Request):
    """What an admin changes; a field left out stays as it is."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    url: EndpointUrl = None  # type: ignore[assignment]  # absent, never null
    events: Subscription = None  # type: ignore[assignment]
    description: EndpointDescription = None  # type: ignore[assignment]
    enabled: bool = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _something(self) -> WebhookEndpointPatchIn:
        if all(v is None for v in (self.url, self.events, self.description, self.enabled)):
            raise ValueError("give url, events, description or enabled")
        return self


class WebhookEndpoint(Schema):
    """Where events are delivered. ``disabledReason`` says why the ledger disabled it."""

    id: str
    url: str
    events: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    secret_generation: int
    previous_secret_until: Timestamp | None
    created_by: str
    created_at: Timestamp
    updated_at: Timestamp
    version: int


class WebhookEndpointWithSecret(WebhookEndpoint):
    """The answer of a registration or a rotation: the signing secret, shown only here."""

    secret: str


class DeliveryAttempt(Schema):
    number: int
    at: Timestamp
    outcome: Literal["delivered", "failed", "gave_up"]
    status_code: int | None
    duration_ms: int
    error: str | None


class WebhookDelivery(Schema):
    """One event's delivery to one endpoint, with every attempt."""

    id: str
    endpoint_id: str
    event_id: str
    type: str
    position: int
    order_id: str
    status: Literal["pending", "delivered", "failed"]
    attempts: list[DeliveryAttempt]
    next_attempt_at: Timestamp | None
    delivered_at: Timestamp | None
    created_at: Timestamp


class AttachmentIn(Request):
    """A file shared as a link: the ledger stores no files."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ATTACHMENT_NAME)]
    url: Annotated[str, StringConstraints(min_length=1, max_length=MAX_ATTACHMENT_URL)]
    size: Annotated[int, Field(ge=0, le=MAX_ATTACHMENT_SIZE), WHOLE]
    content_type: Annotated[str, StringConstraints(min_length=3, max_length=255)]


class MessageIn(Request):
    text: Annotated[str, StringConstraints(min_length=1, max_length=MAX_MESSAGE)]
    attachments: Annotated[list[AttachmentIn], Field(max_length=MAX_ATTACHMENTS)] = []


class Attachment(Schema):
    name: str
    url: str
    size: int
    content_type: str


class Message(Schema):
    """One message of an order's conversation; ``author.role`` is ``client``,
    ``freelancer``, or ``support``/``admin`` for staff."""

    id: str
    order_id: str
    author: ActorOut
    text: str
    attachments: list[Attachment]
    created_at: Timestamp
