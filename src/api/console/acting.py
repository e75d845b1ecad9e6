"""``POST /console/orders/{id}/actions/{name}``: preview an action, then confirm it
(``api.console.actions`` says what each does and why it goes in two steps)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from api.console.actions import ACTIONS, Asked, fields_of, offered, receipt, whole_number
from api.console.routing import PREFIX, ConsoleRoute, StaffDep, checked_form, render
from api.console.sessions import Session
from api.http.problems import ApiError
from api.http.routes.common import parse_id
from api.story import described
from ledger import receipts
from ledger.domain.payment import Payment
from ledger.service import Done, LedgerApp
from projections.read_models import ReadModels

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)
CATCH_UP = 10.0
"""Seconds a page waits for the escrow read model to reach the order (it is usually there)."""


@router.post("/orders/{order_id}/actions/{name}", response_class=HTMLResponse)
async def act(request: Request, order_id: str, name: str, staff: StaffDep) -> Response:
    """The form is read here; the rest blocks (the store, the writer, the gateway, waiting
    for the books), so it runs in the threadpool, with this request's context."""
    form = await checked_form(request, staff)
    return await run_in_threadpool(_act, request, order_id, name, staff, form)


def _act(
    request: Request, order_id: str, name: str, staff: Session, form: dict[str, str]
) -> Response:
    oid = parse_id(order_id, "order")
    action = ACTIONS.get(name)
    if action is None:
        raise ApiError(404, f"no action {name!r}")
    ledger: LedgerApp = request.app.state.ledger
    models: ReadModels = request.app.state.read_models
    request_id = request.state.request_id
    caller = staff.acting(request_id)
    timeline = ledger.order_timeline(caller, oid)
    order, payment = timeline.order, timeline.payment
    version = whole_number(form.get("version", ""), order.version, "version")
    command = action.command(Asked(ledger, caller, order, payment, form, version))
    fields = fields_of(form)
    if form.get("step") != "confirm":
        # A confirmation is checked by the command itself (after its receipt: a second
        # submission is answered from the first run, not refused as no longer possible).
        if action not in offered(caller, order, payment):
            raise ApiError(409, f"{action.title.lower()} is not possible now, or not yours")
        if not _caught_up(request, ledger.recorder.max_notification_id() or 0):
            raise ApiError(503, "the books are catching up with the log; try again in a moment")
        events = ledger.preview(command)
        return render(
            request,
            "action.html",
            action=action,
            order=order,
            events=[_event(event, oid) for event in events],
            journal=models.escrow.preview(events),
            fields={**fields, **_shown(version, payment), "key": uuid4().hex},
            confirmed=False,
        )
    key = form.get("key", "")
    if not key or len(key) > 64:
        raise ApiError(400, "this confirmation has no key: preview the action again")
    with receipts.keyed(receipt(caller, key, name, oid, fields)) as kept:
        done = command()
    story = ledger.order_timeline(caller, oid)
    if kept.replayed and isinstance(done, Done):  # answered from the first run: its events
        request_id = next(
            (e.actor.request_id for e in story.entries if e.position == done.position), None
        )
    recorded = [e for e in story.entries if request_id and e.actor.request_id == request_id]
    end = max((e.position for e in recorded), default=0)
    books_ready = _caught_up(request, end)
    postings = models.escrow.entries_of_order(str(oid)) if books_ready else {}
    return render(
        request,
        "action.html",
        action=action,
        order=story.order,
        events=[_event(e.event, oid, e.position) for e in recorded],
        journal=[postings[e.position] for e in recorded if e.position in postings],
        books_ready=books_ready,
        fields=fields,
        confirmed=True,
        replayed=kept.replayed,
    )


def _shown(version: int, payment: Payment | None) -> dict[str, str]:
    """The versions a preview was decided on, which its confirmation must still find."""
    shown = {"version": str(version)}
    if payment is not None:
        shown["payment_version"] = str(payment.version)
    return shown


def _event(event: Any, order_id: UUID, position: int | None = None) -> dict[str, Any]:
    return {
        "kind": type(event).__name__,
        "words": described(event),
        "aggregate": "order" if event.originator_id == order_id else "payment",
        "position": position,
    }


def _caught_up(request: Request, position: int) -> bool:
    """Whether the escrow read model reached ``position`` within ``CATCH_UP`` seconds:
    previews start from its holds, answers show the postings made."""
    runner = request.app.state.runner
    return bool(runner.wait_for(position, timeout=CATCH_UP, names=("escrow",)))
