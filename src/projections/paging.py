"""Reading one item or one page of a read-model table, the same way for every list.

Lists are newest first, ordered by the position of each item's first event (unique and
increasing), and paged with ``limit`` and ``startingAfter``: the cursor is looked up in the
same filtered list, so a cursor from another list is refused rather than silently skipping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.errors import InvalidCursor, ValidationFailed
from projections.db import Database, Row

MAX_LIMIT = 100
Filters = dict[str, tuple[str, Any]]
"""Column filters: name → (SQL condition with ``:name``, value); ``None`` values are ignored."""
View = Callable[[Row], dict[str, Any]]


@dataclass(frozen=True)
class Page:
    data: list[dict[str, Any]]
    has_more: bool

    def as_api(self) -> dict[str, Any]:
        return {"data": self.data, "hasMore": self.has_more}


def one(db: Database, table: str, item_id: str, view: View) -> dict[str, Any] | None:
    rows = db.read(f"SELECT * FROM {table} WHERE id = :id", {"id": item_id})
    return view(rows[0]) if rows else None


def page(
    db: Database,
    table: str,
    filters: Filters,
    limit: int,
    starting_after: str | None,
    view: View,
    cursor_in: Sequence[str] | None = None,
) -> Page:
    """Raises: ValidationFailed (limit out of range), InvalidCursor.

    The cursor must be an item of the list as ``filters`` select it, or, when given, as
    only the filters named in ``cursor_in`` do: for a filter an item can leave (an unread
    notification marked read while its page is on screen), the next page still follows it.
    """
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be from 1 to {MAX_LIMIT}", field="limit")
    params = {name: value for name, (_, value) in filters.items() if value is not None}
    where = [condition for name, (condition, _) in filters.items() if name in params]
    if starting_after is not None:
        scope = [
            condition
            for name, (condition, _) in filters.items()
            if name in params and (cursor_in is None or name in cursor_in)
        ]
        cursor = db.read(
            f"SELECT position FROM {table} WHERE {' AND '.join([*scope, 'id = :cursor'])}",
            {**params, "cursor": starting_after},
        )
        if not cursor:
            raise InvalidCursor(starting_after)
        where.append("position < :before")
        params["before"] = cursor[0]["position"]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = db.read(
        f"SELECT * FROM {table} {clause} ORDER BY position DESC LIMIT :limit",
        {**params, "limit": limit + 1},
    )
    return Page([view(row) for row in rows[:limit]], has_more=len(rows) > limit)


def check_choice(value: str | None, choices: Any, field: str) -> None:
    """Raises: ValidationFailed, when ``value`` is given and not one of ``choices``."""
    if value is not None and value not in {str(choice) for choice in choices}:
        allowed = ", ".join(str(choice) for choice in choices)
        raise ValidationFailed(f"{field} must be one of {allowed}", field=field)
