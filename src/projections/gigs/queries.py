"""Queries of the gig catalogue: one gig, a page of gigs, and a package as the API shows it
(orders show the package they copied the same way)."""

from __future__ import annotations

import json
from typing import Any

from ledger.money import from_centimes
from projections.db import Database, Row
from projections.paging import Filters, Page, one, page


class GigQueries:
    """The ``gigs`` table, as the API shows it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, gig_id: str) -> dict[str, Any] | None:
        return one(self.db, "gigs", gig_id, gig_view)

    def page(
        self,
        *,
        freelancer_id: str | None = None,
        archived: bool | None = None,
        limit: int = 20,
        starting_after: str | None = None,
    ) -> Page:
        filters: Filters = {
            "freelancer_id": ("freelancer_id = :freelancer_id", freelancer_id),
            "archived": ("archived = :archived", None if archived is None else int(archived)),
        }
        return page(self.db, "gigs", filters, limit, starting_after, gig_view)

    def rating(self, gig_id: str) -> dict[str, int]:
        """The sum and count of a gig's ratings (zero for a gig the read model has not seen
        yet), to answer a command on the gig with its rating."""
        rows = self.db.read(
            "SELECT rating_sum, rating_count FROM gigs WHERE id = :id", {"id": gig_id}
        )
        found = rows[0] if rows else {"rating_sum": 0, "rating_count": 0}
        return {"rating_sum": int(found["rating_sum"]), "rating_count": int(found["rating_count"])}


def package_view(package: dict[str, Any]) -> dict[str, Any]:
    return {
        "packageId": package["package_id"],
        "price": from_centimes(package["price"]),
        "deliveryDays": package["delivery_days"],
        "revisions": package["revisions"],
        "description": package["description"],
    }


def gig_view(row: Row) -> dict[str, Any]:
    count = int(row["rating_count"])
    average = round(int(row["rating_sum"]) / count, 2) if count else None
    return {
        "id": row["id"],
        "freelancerId": row["freelancer_id"],
        "title": row["title"],
        "currency": row["currency"],
        "packages": [package_view(p) for p in json.loads(row["packages"])],
        "archived": bool(row["archived"]),
        "rating": {"average": average, "count": count},
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }
