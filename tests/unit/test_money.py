"""ledger.money: strict parsing of MAD amounts, formatting, and the platform fee."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ValidationFailed
from ledger.money import (
    BASIS_POINTS,
    MAX_AMOUNT,
    fee_of,
    from_centimes,
    percent_to_basis_points,
    to_centimes,
)


@pytest.mark.parametrize(
    ("value", "centimes"),
    [
        (0.01, 1),
        ("0.01", 1),
        (Decimal("0.01"), 1),
        ("12.50", 1250),
        ("12.5", 1250),
        (" 12.50 ", 1250),
        (Decimal("12.50"), 1250),
        (Decimal("12.500"), 1250),
        (12, 1200),
        (1, 100),
        (0.1, 10),
        (19.99, 1999),
        (12.5, 1250),
        ("1000000", MAX_AMOUNT),
        (Decimal("1000000.00"), MAX_AMOUNT),
        ("999999.99", MAX_AMOUNT - 1),
    ],
)
def test_to_centimes_accepts(value: object, centimes: int) -> None:
    result = to_centimes(value)
    assert result == centimes
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        # more than two decimals: refused, never rounded
        1.005,
        "1.001",
        Decimal("0.001"),
        "0.005",
        0.1 + 0.2,
        # zero and negatives
        0,
        0.0,
        "0",
        "0.00",
        "-0",
        -1,
        "-0.01",
        Decimal("-5"),
        # too large
        "1000000.01",
        1_000_001,
        MAX_AMOUNT,  # centimes passed where MAD is expected: 100,000,000 MAD
        1e30,
        "1e400",
        Decimal("1E+7"),
        # not finite
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "sNaN",
        "Infinity",
        "-inf",
        Decimal("NaN"),
        # not numbers at all
        True,
        False,
        None,
        [],
        [1],
        {},
        {"amount": 1},
        b"1",
        1 + 0j,
        "abc",
        "",
        "   ",
        "1,50",
        "12.50 MAD",
    ],
)
def test_to_centimes_refuses(value: object) -> None:
    with pytest.raises(ValidationFailed):
        to_centimes(value)


def test_float_sum_is_refused_not_rounded_to_thirty_centimes() -> None:
    with pytest.raises(ValidationFailed, match="two decimal"):
        to_centimes(0.1 + 0.2)


@pytest.mark.parametrize("value", ["abc", -1, "1.001", "1e400", True, None, "NaN"])
def test_validation_failed_names_the_field(value: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        to_centimes(value, field="refundAmount")
    assert caught.value.field == "refundAmount"
    assert "refundAmount" in caught.value.detail


def test_field_defaults_to_amount() -> None:
    with pytest.raises(ValidationFailed) as caught:
        to_centimes("abc")
    assert caught.value.field == "amount"


@pytest.mark.parametrize(
    ("centimes", "text"),
    [(1, "0.01"), (10, "0.10"), (100, "1.00"), (1050, "10.50"), (1999, "19.99")],
)
def test_from_centimes_has_exactly_two_places(centimes: int, text: str) -> None:
    result = from_centimes(centimes)
    assert isinstance(result, Decimal)
    assert result == Decimal(text)
    assert str(result) == text


def test_from_centimes_of_max_amount() -> None:
    assert str(from_centimes(MAX_AMOUNT)) == "1000000.00"


@pytest.mark.parametrize(
    ("amount", "rate_bp", "fee"),
    [
        (2, 2500, 0),  # 0.5 → 0 (half to even)
        (6, 2500, 2),  # 1.5 → 2
        (10, 2500, 2),  # 2.5 → 2
        (14, 2500, 4),  # 3.5 → 4
        (3, 5000, 2),  # 1.5 → 2
        (5, 5000, 2),  # 2.5 → 2
        (7, 5000, 4),  # 3.5 → 4
        (1, 4999, 0),  # 0.4999 → 0
        (1, 5001, 1),  # 0.5001 → 1
        (10_000, 2000, 2000),
        (12_345, 2000, 2469),
        (10_000, 0, 0),
        (10_000, BASIS_POINTS, 10_000),
        (MAX_AMOUNT, 1, 10_000),
    ],
)
def test_fee_of_rounds_half_even(amount: int, rate_bp: int, fee: int) -> None:
    assert fee_of(amount, rate_bp) == fee


def test_fee_of_returns_an_int() -> None:
    assert type(fee_of(12_345, 2000)) is int


@pytest.mark.parametrize(
    ("percent", "bp"),
    [
        (Decimal("20"), 2000),
        (Decimal("12.5"), 1250),
        (Decimal("12.25"), 1225),
        (Decimal("0"), 0),
        (Decimal("0.01"), 1),
        (Decimal("100"), BASIS_POINTS),
        (Decimal("100.00"), BASIS_POINTS),
    ],
)
def test_percent_to_basis_points(percent: Decimal, bp: int) -> None:
    result = percent_to_basis_points(percent)
    assert result == bp
    assert type(result) is int


@pytest.mark.parametrize(
    "percent",
    [Decimal("0.001"), Decimal("12.345"), Decimal("101"), Decimal("100.01"), Decimal("-1")],
)
def test_percent_to_basis_points_refuses(percent: Decimal) -> None:
    with pytest.raises(ValidationFailed):
        percent_to_basis_points(percent)


@settings(derandomize=True, database=None)
@given(
    amount=st.integers(min_value=1, max_value=MAX_AMOUNT),
    rate_bp=st.integers(min_value=0, max_value=BASIS_POINTS),
)
def test_fee_and_net_always_add_up(amount: int, rate_bp: int) -> None:
    fee = fee_of(amount, rate_bp)
    assert 0 <= fee <= amount
    # never further than half a centime from the exact fee
    assert abs(Decimal(fee) - Decimal(amount) * rate_bp / BASIS_POINTS) <= Decimal("0.5")


@settings(derandomize=True, database=None)
@given(centimes=st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_centimes_round_trip_through_decimal_and_text(centimes: int) -> None:
    assert to_centimes(from_centimes(centimes)) == centimes
    assert to_centimes(str(from_centimes(centimes))) == centimes
