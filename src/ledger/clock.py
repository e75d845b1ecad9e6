"""Time comes from an injected clock, so tests fix it and no event body ever reads it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The system clock, in UTC (the only timezone the ledger stores)."""
    return datetime.now(UTC)
