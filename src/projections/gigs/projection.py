"""The gig catalogue: gigs with their packages, and their rating from order reviews."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.persistence import Transcoder
from eventsourcing.utils import get_topic

from ledger.clock import iso
from ledger.domain.gig import Gig
from ledger.domain.order import Order
from projections.base import Envelope, Projection, topics_of
from projections.db import Txn
from projections.states import Evolver, StateCodec

UPSERT_GIG = """
INSERT INTO gigs (id, position, freelancer_id, title, currency, packages, archived,
    rating_sum, rating_count, created_at, updated_at, version, state)
VALUES (:id, :position, :freelancer_id, :title, :currency, :packages, :archived,
    :rating_sum, :rating_count, :created_at, :updated_at, :version, :state)
ON CONFLICT (id) DO UPDATE SET title = excluded.title, packages = excluded.packages,
    archived = excluded.archived, updated_at = excluded.updated_at, version = excluded.version,
    state = excluded.state
"""

ADD_RATING = """
UPDATE gigs SET rating_sum = rating_sum + :rating_sum,
    rating_count = rating_count + :rating_count
WHERE id = :id
"""


class GigCatalog(Projection):
    """``gigs``: every gig with its packages and the sum and count of its ratings."""

    name: ClassVar[str] = "gigs"
    version: ClassVar[int] = 2  # 2: archived
    tables: ClassVar[tuple[str, ...]] = ("gigs",)
    _reviewed = get_topic(Order.OrderReviewed)  # type: ignore[attr-defined]

    def __init__(self, transcoder: Transcoder) -> None:
        self.codec = StateCodec(Gig, transcoder)

    @property
    def topics(self) -> Sequence[str]:
        return [*topics_of(Gig), self._reviewed]

    def schema(self) -> Sequence[str]:
        return [
            """CREATE TABLE IF NOT EXISTS gigs (
                id TEXT PRIMARY KEY, position BIGINT NOT NULL, freelancer_id TEXT NOT NULL,
                title TEXT NOT NULL, currency TEXT NOT NULL, packages TEXT NOT NULL,
                archived INTEGER NOT NULL, rating_sum BIGINT NOT NULL, rating_count BIGINT NOT NULL,
                created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL,
                state TEXT NOT NULL)""",
            "CREATE INDEX IF NOT EXISTS gigs_by_position ON gigs (position)",
            "CREATE INDEX IF NOT EXISTS gigs_by_freelancer ON gigs (freelancer_id, position)",
        ]

    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        """Gig rows are written before ratings, so a review in the same batch as its gig's
        creation still finds the row. A batch's reviews of one gig make one update."""
        evolver = Evolver(self.codec, txn, "gigs")
        created: dict[UUID, int] = {}
        reviewed = Order.OrderReviewed  # type: ignore[attr-defined]
        ratings: dict[str, dict[str, Any]] = {}
        gig_events = []
        for envelope in batch:
            event = envelope.event
            if isinstance(event, reviewed):
                gig_id = str(event.gig_id)
                rating = ratings.setdefault(
                    gig_id, {"id": gig_id, "rating_sum": 0, "rating_count": 0}
                )
                rating["rating_sum"] += event.rating
                rating["rating_count"] += 1
            else:
                gig_events.append(envelope)
        for envelope, gig in evolver.apply_all(gig_events):
            if gig.version == 1:
                created[gig.id] = envelope.position
        rows = [
            {**gig_row(gig, created.get(gig.id, 0)), "state": self.codec.dump(gig)}
            for gig in evolver.touched()
        ]
        txn.executemany(UPSERT_GIG, rows)
        txn.executemany(ADD_RATING, list(ratings.values()))


def gig_row(gig: Gig, position: int = 0) -> dict[str, Any]:
    """The ``gigs`` row of a gig without its rating (and ``state``), shared with the API,
    which adds the rating the read model has (``GigQueries.rating``)."""
    packages = [vars(package) for package in gig.packages.values()]  # asdict() is slow
    return {
        "id": str(gig.id),
        "position": position,
        "freelancer_id": gig.freelancer_id,
        "title": gig.title,
        "currency": "MAD",
        "packages": json.dumps(packages),
        "archived": int(gig.archived),
        "rating_sum": 0,
        "rating_count": 0,
        "created_at": iso(gig.created_on),
        "updated_at": iso(gig.modified_on),
        "version": gig.version,
    }
