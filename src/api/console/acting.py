"""``POST /console/orders/{id}/actions/{name}``: preview an action, then confirm it
(``api.console.actions`` says what each does and why it goes in two steps)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from api.console.actions import ACTIONS, Asked, fields_of, offered, receipt
from api.console.routing import PREFIX, ConsoleRoute, StaffDep, checked_form, render
from api.http.problems import ApiError
from api.http.routes.common import parse_id
from api.story import described
from ledger import receipts
from ledger.errors import ValidationFailed
from ledger.service import LedgerApp
from projections.read_models import ReadModels

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
CATCH_UP = 10.0
"""Seconds a page waits for the escrow read model to reach the order (it is usually there)."""


@router.post("/orders/{order_id}/actions/{name}", response_class=HTMLResponse)
async def act(request: Request, order_id: str, name: str, staff: StaffDep) -> Response:
    form = await checked_form(request, staff)
    oid = parse_id(order_id, "order")
    action = ACTIONS.get(name)
    if action is None:
        raise ApiError(404, f"no action {name!r}")
    ledger: LedgerApp = request.app.state.ledger
    models: ReadModels = request.app.state.read_models
    caller = staff.acting(request.state.request_id)
    timeline = ledger.order_timeline(caller, oid)
    order, payment = timeline.order, timeline.payment
    version = _version(form.get("version", ""), order.version)
    command = action.command(Asked(ledger, caller, order, payment, form, version))
    fields = fields_of(action, form)
    if form.get("step") != "confirm":
        # A confirmation is checked by the command itself (after its receipt: a second
        # submission is answered from the first run, not refused as no longer possible).
        if action not in offered(caller, order, payment):
            raise ApiError(409, f"{action.title.lower()} is not possible now, or not yours")
        _caught_up(request, ledger)
        events = ledger.preview(command)
        return render(
            request,
            "action.html",
            action=action,
            order=order,
            events=[_event(event, oid) for event in events],
            journal=models.escrow.preview(events),
            fields={**fields, "version": str(version), "key": uuid4().hex},
            confirmed=False,
        )
    key = form.get("key", "")
    if not key or len(key) > 64:
        raise ApiError(400, "this confirmation has no key: preview the action again")
    before = ledger.recorder.max_notification_id() or 0
    with receipts.keyed(receipt(caller, key, name, oid, fields)) as kept:
        done: Any = command()
    recorded = ledger.order_timeline(caller, oid, after=before if not kept.replayed else 0)
    positions = {entry.position for entry in recorded.entries if entry.position <= done.position}
    if kept.replayed:  # answered from the first run: show what that run recorded
        positions = {max(positions)} if positions else set()
    _caught_up(request, ledger, done.position)
    postings = models.escrow.entries_of_order(str(oid))
    return render(
        request,
        "action.html",
        action=action,
        order=recorded.order,
        events=[
            _event(e.event, oid, e.position) for e in recorded.entries if e.position in positions
        ],
        journal=[postings[p] for p in sorted(positions) if p in postings],
        fields=fields,
        confirmed=True,
        replayed=kept.replayed,
    )


def _version(text: str, current: int) -> int:
    """The order version a form was shown with (the current one for a first preview).

    Raises: ValidationFailed.
    """
    if not text:
        return current
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed("version must be a whole number", field="version")
    return int(text)


def _event(event: Any, order_id: UUID, position: int | None = None) -> dict[str, Any]:
    return {
        "kind": type(event).__name__,
        "words": described(event),
        "aggregate": "order" if event.originator_id == order_id else "payment",
        "position": position,
    }


def _caught_up(request: Request, ledger: LedgerApp, position: int | None = None) -> None:
    """Wait (bounded) for the read models to reach ``position`` (the head when ``None``):
    previews start from the escrow holds, answers show the postings made."""
    target = position if position is not None else ledger.recorder.max_notification_id() or 0
    if not request.app.state.runner.wait_for(target, timeout=CATCH_UP):
        raise ApiError(503, "the books are catching up with the log; try again in a moment")
