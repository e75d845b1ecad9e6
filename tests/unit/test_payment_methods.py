"""The payment methods' rules on the write side: what a payment may use, what it keeps of a
card (never its number), a CashPlus code instead of a form, the order waiting for cash, and
the expiry recorded with each payment."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from tests.conftest import FakeClock

from ledger.actors import Actor, Caller
from ledger.bootstrap import payment_terms
from ledger.domain.payment import CARD, CASHPLUS, Payment, PaymentTerms
from ledger.domain.values import CardSummary, Package, Stage
from ledger.errors import InvalidTransition, ValidationFailed
from ledger.service import LedgerApp
from ledger.settings import SettingsError, load_settings

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CLIENT_ACTOR = Actor("client-1", "client")
GATEWAY_ACTOR = Actor("gateway", "gateway")
CLIENT = Caller("client-1")
FREELANCER = Caller("freelancer-1")
PACKAGE = Package("basic", 10_000, 3, 1, "One logo")


def payment(method: str = CARD, **changes: object) -> Payment:
    fields: dict[str, object] = {"expires_at": NOW + timedelta(minutes=30)}
    fields.update(changes)
    return Payment.create(
        uuid4(), "client-1", "freelancer-1", 10_000, method, CLIENT_ACTOR, NOW, **fields
    )  # type: ignore[arg-type]


@pytest.mark.parametrize("label", ["paypal", "bank_transfer", "wallet", ""])
def test_only_the_methods_processed_as_themselves_are_taken(label: str) -> None:
    with pytest.raises(ValidationFailed, match="credit_card, cashplus") as refused:
        payment(label)
    assert refused.value.field == "paymentMethod"


def test_a_method_the_gateway_does_not_take_is_refused_naming_those_it_does() -> None:
    with pytest.raises(ValidationFailed, match=r"one of credit_card \(what the gateway takes"):
        payment(CASHPLUS, accepted=(CARD,))


def test_a_payment_must_expire_after_it_is_created() -> None:
    with pytest.raises(ValidationFailed, match="expire after"):
        payment(expires_at=NOW)
    assert payment().expires_at == NOW + timedelta(minutes=30)


def test_a_card_opens_with_a_form_and_cash_with_a_code() -> None:
    card = payment(CARD)
    with pytest.raises(ValidationFailed, match="form and no code"):
        card.open_checkout("tok", "https://pay.example/f", None, CLIENT_ACTOR, NOW, "123")
    with pytest.raises(ValidationFailed, match="form and no code"):
        card.open_checkout("tok", None, None, CLIENT_ACTOR, NOW)
    cash = payment(CASHPLUS)
    with pytest.raises(ValidationFailed, match="code and no form"):
        cash.open_checkout("tok", "https://pay.example/f", None, CLIENT_ACTOR, NOW, "123")
    with pytest.raises(ValidationFailed, match="code and no form"):
        cash.open_checkout("tok", None, None, CLIENT_ACTOR, NOW)
    with pytest.raises(ValidationFailed):
        cash.open_checkout("tok", None, None, CLIENT_ACTOR, NOW, "12\n34")
    cash.open_checkout("tok", None, "tx-1", CLIENT_ACTOR, NOW, "123456789012")
    assert (cash.cash_code, cash.checkout) == (
        "123456789012",
        {"token_id": "tok", "payment_url": None},
    )


@pytest.mark.parametrize(
    ("brand", "last4"),
    [("visa", "42424"), ("visa", "424"), ("visa", "42a2"), ("visa", "٤٢٤٢"), ("", "4242"),
     ("v" * 33, "4242"), ("<b>", "4242"), ("visa\n", "4242"), ("4242424242424242", "4242"),
     ("4242 4242 4242 4242", "4242"), ("visa2", "4242")],
)  # fmt: skip
def test_a_card_summary_is_a_short_brand_and_four_digits(brand: str, last4: str) -> None:
    with pytest.raises(ValidationFailed):
        CardSummary(brand, last4)


def test_a_payment_so_labelled_before_methods_were_processed_is_a_card_payment() -> None:
    old = payment(CASHPLUS, expires_at=None)
    assert not old.in_cash and payment(CASHPLUS).in_cash
    old.succeed("tx-1", GATEWAY_ACTOR, NOW, "wh-1", CardSummary("visa", "4242"))
    assert old.card == {"brand": "visa", "last4": "4242"}


def test_success_keeps_the_card_summary_and_cash_keeps_none() -> None:
    card = payment(CARD)
    card.succeed("tx-1", GATEWAY_ACTOR, NOW, "wh-1", CardSummary("mastercard", "0004"))
    assert card.card == {"brand": "mastercard", "last4": "0004"}
    cash = payment(CASHPLUS)
    cash.succeed("tx-2", GATEWAY_ACTOR, NOW, "wh-2", CardSummary("visa", "4242"))
    assert cash.card is None


def test_each_method_has_its_window() -> None:
    terms = PaymentTerms(card_window=timedelta(minutes=5), cash_window=timedelta(hours=2))
    assert (terms.window(CARD), terms.window(CASHPLUS)) == (
        timedelta(minutes=5),
        timedelta(hours=2),
    )
    assert terms.window("paypal") == timedelta(minutes=5), "an old label was a card"


@dataclass
class CardsOnly:
    name = "cards-only"
    methods = (CARD,)


def test_the_offered_methods_narrow_what_the_gateway_takes(tmp_path: object) -> None:
    settings = load_settings(_env_file=None, LEDGER_CASHPLUS_EXPIRY_HOURS="24")
    sandbox_terms = payment_terms(settings, CardsOnly())  # type: ignore[arg-type]
    assert sandbox_terms.methods == (CARD,)
    assert sandbox_terms.cash_window == timedelta(hours=24)
    offered = load_settings(_env_file=None, LEDGER_PAYMENT_METHODS="cashplus")
    with pytest.raises(SettingsError, match="does not take cashplus; it takes credit_card"):
        payment_terms(offered, CardsOnly())  # type: ignore[arg-type]


def place(app: LedgerApp) -> object:
    gig = app.create_gig(FREELANCER, "Logo design", [PACKAGE]).aggregate
    return app.place_order(CLIENT, gig.id, "basic").aggregate.id


def test_paying_in_cash_makes_the_order_wait_for_the_cash(
    memory_app: LedgerApp, clock: FakeClock
) -> None:
    order_id = place(memory_app)
    done = memory_app.create_payment(CLIENT, order_id, CASHPLUS)  # type: ignore[arg-type]
    order = memory_app.get_order(CLIENT, order_id)  # type: ignore[arg-type]
    assert (order.status, order.stage, order.version) == ("pending", Stage.AWAITING_CASH_PAYMENT, 2)
    assert done.aggregate.expires_at == done.aggregate.created_on + timedelta(hours=72)
    with pytest.raises(InvalidTransition):
        order.await_cash_payment(done.aggregate.id, CLIENT_ACTOR, clock())
    gateway = Caller.system("gateway")
    memory_app.confirm_payment(gateway, done.aggregate.id, "tx-1", 10_000, "MAD")
    order = memory_app.get_order(CLIENT, order_id)  # type: ignore[arg-type]
    assert (order.status, order.stage) == ("processing", Stage.AWAITING_ACCEPTANCE)


def test_expiry_is_decided_on_the_recorded_moment(memory_app: LedgerApp, clock: FakeClock) -> None:
    order_id = place(memory_app)
    done = memory_app.create_payment(CLIENT, order_id, CASHPLUS)  # type: ignore[arg-type]
    clock.advance(hours=71, minutes=59)
    assert memory_app.expire_payment(done.aggregate.id) is None
    clock.advance(minutes=1)
    expired = memory_app.expire_payment(done.aggregate.id)
    assert expired is not None and expired.aggregate.failure_reason == "expired"
