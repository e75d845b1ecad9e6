"""One stored event as JSON, for the audit feed, exports and order timelines.

``data`` is what the event carries, as stored: amounts in integer centimes (the log's own
unit, not the API's MAD decimals), ids and times as strings, the actor as
``{"id", "role", "request_id"}``. The envelope fields (stream, version, time) are lifted out.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from ledger.clock import iso

ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})


def event_record(position: int, event: Any) -> dict[str, Any]:
    """``{"position", "stream", "version", "type", "at", "data"}`` of a decoded event."""
    return {
        "position": position,
        "stream": str(event.originator_id),
        "version": event.originator_version,
        "type": type(event).__name__,
        "at": iso(event.timestamp),
        "data": {name: plain(value) for name, value in vars(event).items() if name not in ENVELOPE},
    }


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: UUIDs and enums as strings, times in ISO 8601 UTC,
    dataclasses (actors, packages) as objects, containers element by element."""
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    return str(value)
