"""The Gig aggregate: a freelancer's offer, with up to three packages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.actors import Actor
from ledger.domain.values import MAX_TITLE, Package, check_text
from ledger.errors import GigArchived, ValidationFailed


class Gig(Aggregate):
    """A freelancer's gig. Orders copy a package when placed, so revising prices later never
    changes an order already placed. An archived gig takes no new orders and no edits; the
    orders placed before go on."""

    archived = False
    """A class default, so a gig snapshotted before archiving existed reads as open."""

    @event("Created")
    def __init__(
        self,
        gig_id: UUID,
        freelancer_id: str,
        title: str,
        packages: tuple[Package, ...],
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        self.freelancer_id = freelancer_id
        self.title = title
        self.packages = {p.package_id: p for p in packages}

    @staticmethod
    def create_id(gig_id: UUID) -> UUID:
        return gig_id

    @classmethod
    def create(
        cls,
        gig_id: UUID,
        title: str,
        packages: Sequence[Package],
        actor: Actor,
        timestamp: datetime,
    ) -> Gig:
        """Open a new gig owned by ``actor``.

        Raises:
            ValidationFailed: empty or overlong title; no, too many, duplicate or bad packages.
        """
        check_text(title, "title", max_length=MAX_TITLE, single_line=True)
        return cls(
            gig_id=gig_id,
            freelancer_id=actor.id,
            title=title,
            packages=_validated_packages(packages),
            actor=actor,
            timestamp=timestamp,
        )

    def revise(
        self,
        title: str | None,
        packages: Sequence[Package] | None,
        actor: Actor,
        timestamp: datetime,
    ) -> None:
        """Give the gig a new title, new packages, or both (new prices apply to orders placed
        from now on). What is given the same as before records nothing.

        Raises:
            GigArchived: the gig is archived.
            ValidationFailed: as for ``create``.
        """
        self._require_open()
        if title is not None:
            check_text(title, "title", max_length=MAX_TITLE, single_line=True)
        revised = None if packages is None else _validated_packages(packages)
        if title is not None and title != self.title:
            self._retitled(title, actor, timestamp)
        if revised is not None and revised != tuple(self.packages.values()):
            self._packages_revised(revised, actor, timestamp)

    @event("Retitled")
    def _retitled(self, title: str, actor: Actor, timestamp: datetime) -> None:
        self.title = title

    @event("PackagesRevised")
    def _packages_revised(
        self, packages: tuple[Package, ...], actor: Actor, timestamp: datetime
    ) -> None:
        self.packages = {p.package_id: p for p in packages}

    def archive(self, actor: Actor, timestamp: datetime) -> None:
        """Take the gig out of the catalogue's offer; archiving it again records nothing."""
        if not self.archived:
            self._archived(actor, timestamp)

    @event("Archived")
    def _archived(self, actor: Actor, timestamp: datetime) -> None:
        self.archived = True

    def _require_open(self) -> None:
        if self.archived:
            raise GigArchived(f"gig {self.id} is archived")

    def package(self, package_id: str) -> Package:
        """The package a client is ordering.

        Raises:
            GigArchived: the gig takes no new orders.
            ValidationFailed: the gig has no such package (the gig exists; the input is wrong).
        """
        self._require_open()
        try:
            return self.packages[package_id]
        except KeyError:
            raise ValidationFailed(
                f"this gig has no {package_id!r} package", field="packageId"
            ) from None


def _validated_packages(packages: Sequence[Package]) -> tuple[Package, ...]:
    if not 1 <= len(packages) <= 3:
        raise ValidationFailed("a gig has 1 to 3 packages", field="packages")
    ids = [p.package_id for p in packages]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("package ids must be distinct", field="packages")
    return tuple(p.validated() for p in packages)
