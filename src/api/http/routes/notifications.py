"""docs/api.md "Notifications and preferences": the caller's own notifications and preferences.

Nothing here takes a user id: every route works on the caller's own inbox, so nobody can
name someone else's. A notification id that is not the caller's is answered 404, exactly
as an unknown one. The list reads the ``notifications`` read model (and honours
``X-Ledger-Min-Position``); the preferences are read from the event store itself, so a
``PATCH`` is seen by the next ``GET`` without waiting.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Response

from api.http import schemas
from api.http.deps import CallerDep, LedgerDep, ReadModelsDep, fresh
from api.http.routes.common import Cursor, Limit, api_router, parse_id, tag
from ledger.clock import iso
from ledger.domain.inbox import Inbox
from ledger.errors import NotFound
from ledger.service import Done

router = api_router(prefix="/v1", tags=["notifications"])
Fresh = Depends(fresh("notifications"))


@router.get(
    "/notifications",
    response_model=schemas.Page[schemas.Notification],
    dependencies=[Fresh],
)
def notifications(
    caller: CallerDep,
    models: ReadModelsDep,
    unread: Annotated[bool | None, Query()] = None,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    """The caller's notifications, newest first; ``unread=true`` keeps the unread ones
    (``unread=false`` the read ones)."""
    page = models.notifications.list(
        caller.id, unread=unread, limit=limit, starting_after=starting_after
    )
    return page.as_api()


@router.post("/notifications/{notification_id}/read", response_model=schemas.Notification)
def mark_read(
    notification_id: str,
    caller: CallerDep,
    ledger: LedgerDep,
    models: ReadModelsDep,
    response: Response,
) -> dict[str, Any]:
    """Mark one of the caller's notifications read (again: 200, nothing more stored).
    Answers the notification with its ``readAt``: the moment it was first marked."""
    wanted = parse_id(notification_id, "notification")
    recipient = models.notifications.recipient_of(str(wanted))
    done = ledger.mark_notification_read(caller, wanted, recipient)  # 404 unless the caller's
    found = models.notifications.one(caller.id, str(wanted))
    if found is None:  # dropped by a rebuild in between: it is back in a moment
        raise NotFound(f"notification {notification_id} not found")
    tag(response, None, done.position)
    return {**found, "readAt": iso(done.aggregate.read_at(wanted))}


@router.get("/me/preferences", response_model=schemas.Preferences)
def preferences(caller: CallerDep, ledger: LedgerDep) -> dict[str, Any]:
    """The caller's notification preferences (defaults until they change one)."""
    return {"orderUpdatesNotifications": ledger.get_preferences(caller).order_updates}


@router.patch("/me/preferences", response_model=schemas.Preferences)
def change_preferences(
    body: schemas.PreferencesIn, caller: CallerDep, ledger: LedgerDep, response: Response
) -> dict[str, Any]:
    """Turn order-update notifications off (none is made for the caller from then on) or
    on again (made again from then on; nothing made while off is made afterwards)."""
    done: Done[Inbox] = ledger.set_preferences(caller, body.order_updates_notifications)
    tag(response, None, done.position)
    return {"orderUpdatesNotifications": done.aggregate.order_updates}
