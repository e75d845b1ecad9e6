"""Time comes from an injected clock, so tests fix it and no event body ever reads it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The system clock, in UTC (the only timezone the ledger stores)."""
    return datetime.now(UTC)


def iso(moment: datetime | None) -> str | None:
    """Timestamps are stored as ISO 8601 UTC text with microseconds, which sorts by time on
    every backend and reads back exactly."""
    if moment is None:
        return None
    # ``…+00:00`` → ``…Z``; isoformat is faster than strftime, and the same from year 1000.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"
