"""Gig commands: freelancers open gigs and revise their packages."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID, uuid4

from ledger import access
from ledger.actors import Caller
from ledger.domain.gig import Gig
from ledger.domain.values import Package
from ledger.service.base import Done, LedgerBase


class GigCommands(LedgerBase):
    """The gig catalogue's write side."""

    def create_gig(
        self, caller: Caller, title: str, packages: Sequence[Package], gig_id: UUID | None = None
    ) -> Done[Gig]:
        """Open a gig owned by the caller.

        Raises:
            Forbidden: the caller may not create (an auditor).
            ValidationFailed: bad title or packages.
            Conflict: ``gig_id`` is taken.
        """
        actor = access.require_creator(caller, "freelancer")
        new_id = gig_id or uuid4()

        def decide() -> list[Gig]:
            return [Gig.create(new_id, title, packages, actor, self.clock())]

        return self._run(decide, creates=new_id)

    def revise_gig(self, caller: Caller, gig_id: UUID, packages: Sequence[Package]) -> Done[Gig]:
        """Replace a gig's packages; orders already placed keep theirs.

        Raises:
            NotFound, Forbidden (not the owner), ValidationFailed.
        """

        def decide() -> list[Gig]:
            gig = self._gig(gig_id)
            gig.revise_packages(packages, caller.acting_as("freelancer"), self.clock())
            return [gig]

        return self._run(decide)

    def get_gig(self, gig_id: UUID) -> Gig:
        """Raises: NotFound."""
        return self._gig(gig_id)
