"""Money as an integer number of centimes.

The API speaks decimal MAD with at most two places; inside, every amount is an ``int`` of
centimes, so sums balance exactly and no float ever touches money. Parsing is strict on
purpose: a third decimal, a float that is not exactly what it looks like, a boolean or a
non-finite number is refused rather than rounded, because a silently rounded amount is a
wrong amount.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Final

from ledger.errors import ValidationFailed

CURRENCY: Final = "MAD"
CENTIMES_PER_UNIT: Final = 100
MAX_AMOUNT: Final = 1_000_000 * CENTIMES_PER_UNIT
"""The largest single amount accepted (1,000,000.00 MAD): larger is a typo or an attack."""

BASIS_POINTS: Final = 10_000
"""A rate is kept in basis points (1 bp = 0.01 %), so 20 % is ``2000`` and exact."""

_TWO_PLACES: Final = Decimal("0.01")


def to_centimes(value: object, *, field: str = "amount") -> int:
    """Parse a decimal MAD amount (``12.5``, ``"12.50"``, ``Decimal``) into centimes.

    Raises:
        ValidationFailed: not a finite number, more than two decimals, not positive,
            or above ``MAX_AMOUNT``.
    """
    amount = _as_decimal(value, field)
    if amount <= 0:
        raise ValidationFailed(f"{field} must be greater than 0", field=field)
    if amount > from_centimes(MAX_AMOUNT):
        raise ValidationFailed(
            f"{field} must not exceed {from_centimes(MAX_AMOUNT)} {CURRENCY}", field=field
        )
    if amount != amount.quantize(_TWO_PLACES):
        raise ValidationFailed(f"{field} has more than two decimal places", field=field)
    return int(amount * CENTIMES_PER_UNIT)


def check_centimes(centimes: int, *, field: str = "amount") -> int:
    """Return ``centimes`` if it is a positive amount within range.

    Raises:
        ValidationFailed: not an ``int``, not positive, or above ``MAX_AMOUNT``.
    """
    if isinstance(centimes, bool) or not isinstance(centimes, int):
        raise ValidationFailed(f"{field} must be a whole number of centimes", field=field)
    if centimes <= 0:
        raise ValidationFailed(f"{field} must be greater than 0", field=field)
    if centimes > MAX_AMOUNT:
        raise ValidationFailed(
            f"{field} must not exceed {from_centimes(MAX_AMOUNT)} {CURRENCY}", field=field
        )
    return centimes


def from_centimes(centimes: int) -> Decimal:
    """Format centimes back as MAD with exactly two places (``1050`` → ``Decimal("10.50")``)."""
    return (Decimal(centimes) / CENTIMES_PER_UNIT).quantize(_TWO_PLACES)


def fee_of(amount: int, rate_bp: int) -> int:
    """The platform fee on ``amount`` centimes at ``rate_bp`` basis points, round-half-even.

    Banker's rounding keeps the sum of many fees unbiased, which is what auditors expect.
    """
    exact = Decimal(amount) * Decimal(rate_bp) / BASIS_POINTS
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def percent_to_basis_points(percent: Decimal) -> int:
    """``Decimal("20")`` → ``2000``; at most two decimals, from 0 to 100 inclusive.

    Raises:
        ValidationFailed: out of range or too precise to be a whole number of basis points.
    """
    bp = percent * 100
    if bp != bp.to_integral_value() or not 0 <= bp <= BASIS_POINTS:
        raise ValidationFailed("a fee percent must be 0 to 100 with at most two decimals")
    return int(bp)


def _as_decimal(value: object, field: str) -> Decimal:
    if isinstance(value, bool):
        raise ValidationFailed(f"{field} must be a number, not a boolean", field=field)
    if isinstance(value, float):
        # repr() is the shortest string that round-trips: 0.1 → "0.1", but 0.1 + 0.2 →
        # "0.30000000000000004", which then fails the two-places rule instead of being rounded.
        value = repr(value)
    if not isinstance(value, int | str | Decimal):
        raise ValidationFailed(f"{field} must be a number", field=field)
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise ValidationFailed(f"{field} must be a number", field=field) from None
    if not amount.is_finite():
        raise ValidationFailed(f"{field} must be a finite number", field=field)
    return amount
