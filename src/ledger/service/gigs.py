"""Gig commands: freelancers open gigs, edit and archive them; staff may archive them too."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID, uuid4

from ledger import access
from ledger.actors import Caller
from ledger.domain.gig import Gig
from ledger.domain.values import Package
from ledger.service.base import Done, LedgerBase, Unchanged

GIG_ARCHIVERS = ("freelancer", "support", "admin")


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

    def revise_gig(
        self,
        caller: Caller,
        gig_id: UUID,
        *,
        title: str | None = None,
        packages: Sequence[Package] | None = None,
    ) -> Done[Gig]:
        """Give a gig a new title, new packages, or both; orders already placed keep the
        package they copied. Only the gig's freelancer edits it.

        Raises:
            NotFound, Forbidden (not the owner), GigArchived, ValidationFailed.
        """

        def decide() -> list[Gig]:
            gig = self._gig(gig_id)
            actor = access.acting_on_gig(caller, gig.freelancer_id, ["freelancer"])
            before = gig.version
            gig.revise(title, packages, actor, self.clock())
            if gig.version == before:
                raise Unchanged(gig)
            return [gig]

        return self._run(decide)

    def archive_gig(self, caller: Caller, gig_id: UUID) -> Done[Gig]:
        """Archive a gig: it takes no new orders (``GigArchived``), and the orders placed
        before go on. Its freelancer, support or an admin (taking a gig down is a staff
        action) archive it; again, nothing more is recorded.

        Raises:
            NotFound, Forbidden.
        """

        def decide() -> list[Gig]:
            gig = self._gig(gig_id)
            actor = access.acting_on_gig(caller, gig.freelancer_id, GIG_ARCHIVERS)
            if gig.archived:
                raise Unchanged(gig)
            gig.archive(actor, self.clock())
            return [gig]

        return self._run(decide)

    def get_gig(self, gig_id: UUID) -> Gig:
        """Raises: NotFound."""
        return self._gig(gig_id)
