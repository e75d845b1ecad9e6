"""Who may see and do what: decided once, here, for the API and the CLI alike.

A user is the *client* on orders they placed and the *freelancer* on orders of their gigs;
``support``, ``auditor`` and ``admin`` read everything; support and admin take the staff
actions (policy cancellations, dispute resolutions). Someone with no relation to an order is
told it does not exist, so ids reveal nothing.

Party actions (accepting, delivering, agreeing to cancel, reviewing …) express one party's
own consent, so they stay the parties' own: not even an admin takes them on a party's behalf.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger.actors import Actor, Caller
from ledger.domain.order import Order
from ledger.errors import Forbidden, NotFound

_STAFF_AND_SYSTEM = ("admin", "support", "auditor", "gateway", "clock")
ORDER_CREATORS = frozenset({"user", "admin"})


def relations(caller: Caller, order: Order) -> list[str]:
    """Every capacity in which ``caller`` stands towards ``order``, parties first."""
    found = [role for role in ("client", "freelancer") if order.party_id(role) == caller.id]
    return found + [role for role in _STAFF_AND_SYSTEM if caller.has(role)]


def may_read(caller: Caller, *party_ids: str | None) -> bool:
    """Whether ``caller`` may see a record whose parties are ``party_ids`` (read models
    keep the ids, not the aggregate): staff readers see all, users what they are party to."""
    return caller.is_staff_reader or caller.id in party_ids


def require_visible(caller: Caller, order: Order) -> None:
    """Raises:
    NotFound: the caller has no relation to the order (its existence is not revealed).
    """
    if not relations(caller, order):
        raise NotFound(f"order {order.id} not found")


def acting_on(caller: Caller, order: Order, allowed: Sequence[str]) -> Actor:
    """The capacity in which ``caller`` takes a command that ``allowed`` roles may take.

    Raises:
        NotFound: the caller has no relation to the order.
        Forbidden: the caller sees the order but may not take this command.
    """
    mine = relations(caller, order)
    if not mine:
        raise NotFound(f"order {order.id} not found")
    for role in allowed:
        if role in mine:
            return caller.acting_as(role)
    raise Forbidden(f"only the {' or '.join(allowed)} may do this")


def acting_on_gig(caller: Caller, freelancer_id: str, allowed: Sequence[str]) -> Actor:
    """The capacity in which ``caller`` takes a gig command that ``allowed`` roles may take
    (``freelancer``: the gig's own; staff roles by role). Gigs are public, so a refusal is
    Forbidden, never NotFound.

    Raises:
        Forbidden: the caller is none of them.
    """
    for role in allowed:
        if (caller.id == freelancer_id) if role == "freelancer" else caller.has(role):
            return caller.acting_as(role)
    raise Forbidden(f"only the gig's {' or '.join(allowed)} may do this")


def require_creator(caller: Caller, capacity: str) -> Actor:
    """Placing orders and opening gigs is for users (auditors change nothing); the caller
    then acts in ``capacity`` (``client`` of the new order, ``freelancer`` of the new gig).

    Raises:
        Forbidden: the caller holds none of the roles that may create.
    """
    if not caller.roles & ORDER_CREATORS:
        raise Forbidden("this account may read but not create")
    return caller.acting_as(capacity)


def require_admin(caller: Caller, what: str) -> Actor:
    """``what`` is an admin's to do or see (the webhook endpoints: where the ledger sends
    everything that happens).

    Raises:
        Forbidden: the caller is not an admin.
    """
    if not caller.has("admin"):
        raise Forbidden(f"{what} are for admins")
    return caller.acting_as("admin")
