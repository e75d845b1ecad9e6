"""What a projection is: a name, the event topics it reads, its tables, and ``apply``.

``apply`` receives a whole batch of events and writes its rows inside the transaction the
runner opened; the runner moves the projection's tracking position in that same
transaction, so a batch is applied exactly once or not at all.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from projections.db import Txn


@dataclass(frozen=True)
class Envelope:
    """A decoded event and its position in the notification log, with the bytes it was
    decoded from (for projections about the log itself, such as the audit chain)."""

    position: int
    event: Any
    stored: Notification | None = None

    @property
    def kind(self) -> str:
        """The event's type name, as the API shows it (``OrderPlaced``)."""
        return type(self.event).__name__


class Projection(ABC):
    """A read model built from events. Subclasses declare ``name``, ``tables`` and ``topics``."""

    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    """Tables this projection owns, in the order they may be dropped."""
    version: ClassVar[int] = 1
    """The shape of its tables. Raise it when ``schema`` or the rows change: the runner
    then drops the tables and rebuilds them from the log (read models are derived data)."""
    reads_everything: ClassVar[bool] = False
    """Reads every event, whatever its topic (``topics`` is then not consulted): for
    projections of the log itself, which must not miss an aggregate added later."""

    @property
    @abstractmethod
    def topics(self) -> Sequence[str]:
        """The event topics this projection reads; all others count as processed."""

    @abstractmethod
    def schema(self) -> Sequence[str]:
        """``CREATE TABLE/INDEX IF NOT EXISTS`` statements (valid on SQLite and PostgreSQL)."""

    @abstractmethod
    def apply(self, batch: Sequence[Envelope], txn: Txn) -> None:
        """Write the rows for ``batch`` (oldest first) within ``txn``."""

    def drop(self, txn: Txn) -> None:
        for table in self.tables:
            txn.execute(f"DROP TABLE IF EXISTS {table}")


def topics_of(*aggregates: type[Aggregate]) -> list[str]:
    """Every event topic declared on the given aggregate classes."""
    return [
        get_topic(value)
        for aggregate in aggregates
        for value in vars(aggregate).values()
        if isinstance(value, type) and issubclass(value, DomainEvent)
    ]


def topics_named(names: Collection[str], *aggregates: type[Aggregate]) -> list[str]:
    """The topics of the events of ``aggregates`` whose names are in ``names`` (a projection
    that reads some of an aggregate's events, by name)."""
    return [t for t in topics_of(*aggregates) if t.rsplit(".", 1)[-1] in names]
