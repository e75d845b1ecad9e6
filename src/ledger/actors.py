"""Who asks (a ``Caller``) and who acted (an ``Actor``, written into every event).

A caller is an authenticated identity with its roles; the application service decides, per
command, in which capacity the caller acts on an aggregate (client, freelancer, support …)
and records that as the event's actor. The gateway and the clock are callers too, but only
the process itself can make them: no token can carry those roles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

UserRole = Literal["user", "support", "auditor", "admin"]
SystemRole = Literal["gateway", "clock"]

USER_ROLES: Final[frozenset[str]] = frozenset({"user", "support", "auditor", "admin"})
STAFF_READERS: Final[frozenset[str]] = frozenset({"support", "auditor", "admin"})


@dataclass(frozen=True)
class Actor:
    """The identity and capacity in which something was done, kept in every event.

    ``role`` is the capacity on that aggregate: ``client``, ``freelancer``, ``support``,
    ``admin``, ``gateway`` or ``clock``. ``request_id`` ties the event to the HTTP request
    that caused it, when there was one, so support can follow a dispute back to the logs.
    """

    id: str
    role: str
    request_id: str | None = None


@dataclass(frozen=True)
class Caller:
    """An authenticated identity asking the ledger to do or show something."""

    id: str
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"user"}))
    request_id: str | None = None

    @classmethod
    def system(cls, role: SystemRole, request_id: str | None = None) -> Caller:
        """The gateway or the clock: in-process callers that no bearer token can claim."""
        return cls(id=f"system:{role}", roles=frozenset({role}), request_id=request_id)

    def has(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_staff_reader(self) -> bool:
        """Support, auditors and admins read every order and payment."""
        return bool(self.roles & STAFF_READERS)

    def acting_as(self, role: str) -> Actor:
        return Actor(id=self.id, role=role, request_id=self.request_id)
