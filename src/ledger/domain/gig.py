"""The Gig aggregate: a freelancer's offer, with up to three packages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from ledger.actors import Actor
from ledger.domain.values import MAX_TITLE, Package, check_text
from ledger.errors import Forbidden, ValidationFailed


class Gig(Aggregate):
    """A freelancer's gig. Orders copy a package when placed, so revising prices later never
    changes an order already placed."""

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
        check_text(title, "title", max_length=MAX_TITLE)
        return cls(
            gig_id=gig_id,
            freelancer_id=actor.id,
            title=title,
            packages=_validated_packages(packages),
            actor=actor,
            timestamp=timestamp,
        )

    def revise_packages(
        self, packages: Sequence[Package], actor: Actor, timestamp: datetime
    ) -> None:
        """Replace the gig's packages (new prices apply to orders placed from now on).

        Raises:
            Forbidden: the actor is not the gig's freelancer.
            ValidationFailed: as for ``create``.
        """
        if actor.id != self.freelancer_id:
            raise Forbidden("only the gig's freelancer may revise its packages")
        self._packages_revised(_validated_packages(packages), actor, timestamp)

    @event("PackagesRevised")
    def _packages_revised(
        self, packages: tuple[Package, ...], actor: Actor, timestamp: datetime
    ) -> None:
        self.packages = {p.package_id: p for p in packages}

    def package(self, package_id: str) -> Package:
        """The package a client is ordering.

        Raises:
            ValidationFailed: the gig has no such package (the gig exists; the input is wrong).
        """
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
