"""The console's reading pages: overview, orders, one order's story, and the books.

Each reads what the API reads, as the signed-in staff member (``Session.caller``), so the
API's access rules apply unchanged: the timeline from the events (``order_timeline``), an
earlier version by replay (``get_order``), lists and books from the read models.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api.console.actions import offered
from api.console.routing import PREFIX, ConsoleRoute, StaffDep, render
from api.http.routes.common import parse_id
from api.story import described, mad
from ledger.clock import iso
from ledger.domain.values import OrderStatus, Stage
from ledger.errors import ValidationFailed
from projections.escrow.queries import JOURNAL_COLUMNS, journal_rows
from projections.read_models import ReadModels

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

DAYS = 30
PAGE = 25
MAX_QUERY = 255


def _models(request: Request) -> ReadModels:
    models: ReadModels = request.app.state.read_models
    return models


@router.get("", response_class=HTMLResponse)
@router.get("/", response_class=HTMLResponse)
def overview(request: Request, staff: StaffDep) -> Response:
    """Orders by status and stage, the last 30 days drawn, the projections' lag, and the
    audit chain's last verification by this process (``api.console.audit``)."""
    models = _models(request)
    today = request.app.state.clock().astimezone(UTC).date()
    days = [today - timedelta(days=back) for back in range(DAYS - 1, -1, -1)]
    since = str(days[0])  # sorts before every timestamp of that day
    placed = models.orders.placed_per_day(since)
    flows = models.escrow.flows_per_day(since)
    money = {"Paid volume": "paid", "Fees": "fees", "Refunds": "refunded"}
    charts = [("Orders placed", chart([placed.get(str(day), 0) for day in days]))]
    charts += [
        (title, chart([flows.get(str(day), {}).get(key, 0) for day in days], money=True))
        for title, key in money.items()
    ]
    counts = models.orders.counts()
    return render(
        request,
        "overview.html",
        counts=sorted(counts.items()),
        total=sum(counts.values()),
        charts=charts,
        first_day=str(days[0]),
        last_day=str(days[-1]),
        projections=request.app.state.runner.status(),
        verification=getattr(request.app.state, "last_verification", None),
    )


def chart(
    values: list[int], width: int = 300, height: int = 80, *, money: bool = False
) -> dict[str, Any]:
    """Bars of ``values`` (a count, or with ``money`` centimes) scaled into a ``width`` by
    ``height`` SVG box."""
    highest = max(values) or 1
    step = width / len(values)
    bars: list[dict[str, Any]] = [
        {
            "x": round(index * step + 1, 1),
            "width": round(step - 2, 1),
            "height": round(value / highest * (height - 4), 1) if value else 0,
            "value": value,
        }
        for index, value in enumerate(values)
    ]
    for bar in bars:
        bar["y"] = round(height - bar["height"], 1)
    shown = mad if money else "{:,}".format
    for bar in bars:
        bar["label"] = shown(bar["value"])
    return {
        "bars": bars,
        "width": width,
        "height": height,
        "top": shown(max(values)),
        "sum": shown(sum(values)),
    }


@router.get("/orders", response_class=HTMLResponse)
def orders(
    request: Request,
    staff: StaffDep,
    q: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    status: Annotated[str, Query(max_length=32)] = "",
    stage: Annotated[str, Query(max_length=32)] = "",
    placed_from: Annotated[str, Query(max_length=10, pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = "",
    placed_to: Annotated[str, Query(max_length=10, pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = "",
    after: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """Orders by any id they answer to, status, stage and the days they were placed in."""
    start, end = _day(placed_from, "placed_from"), _day(placed_to, "placed_to")
    found = _models(request).orders.page(
        matching=q.strip() or None,
        status=status or None,
        stage=stage or None,
        placed_from=iso(start),
        placed_before=iso(end + timedelta(days=1)) if end else None,
        limit=PAGE,
        starting_after=after or None,
    )
    query = {"q": q, "status": status, "stage": stage}
    query |= {"placed_from": placed_from, "placed_to": placed_to}
    return render(
        request,
        "orders.html",
        orders=found.data,
        has_more=found.has_more,
        query=query,
        statuses=[str(s) for s in OrderStatus],
        stages=[str(s) for s in Stage],
    )


def _day(value: str, field: str) -> datetime | None:
    """The UTC midnight starting ``value`` (``YYYY-MM-DD``), ``None`` when empty.

    Raises: ValidationFailed.
    """
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{field} must be a day (YYYY-MM-DD)", field=field) from None
    if not 1970 <= day.year <= 9000:  # the day after must exist too
        raise ValidationFailed(f"{field} must be a day from 1970 to 9000", field=field)
    return datetime.combine(day, time(), UTC)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
def order(
    request: Request,
    order_id: str,
    staff: StaffDep,
    version: Annotated[int | None, Query(ge=1, le=2**31)] = None,
) -> Response:
    """The order's header, its timeline with the postings each event caused, and with
    ``version`` the order as it was right after that version."""
    oid = parse_id(order_id, "order")
    ledger = request.app.state.ledger
    timeline = ledger.order_timeline(staff.caller, oid)
    as_of = ledger.get_order(staff.caller, oid, version) if version is not None else None
    postings = _models(request).escrow.entries_of_order(str(oid))
    steps = [
        {
            "entry": entry,
            "words": described(entry.event),
            "order_version": entry.event.originator_version
            if entry.event.originator_id == oid
            else None,
            "journal": postings.get(entry.position),
        }
        for entry in timeline.entries
    ]
    return render(
        request,
        "order.html",
        order=timeline.order,
        payment=timeline.payment,
        steps=steps,
        as_of=as_of,
        actions=offered(staff.caller, timeline.order, timeline.payment),
    )


@router.get("/books", response_class=HTMLResponse)
def books(
    request: Request,
    staff: StaffDep,
    account: Annotated[str, Query(max_length=MAX_QUERY)] = "",
    order_id: Annotated[str, Query(max_length=64)] = "",
    after: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The trial balance, every account, and the journal filtered by account and order."""
    escrow = _models(request).escrow
    journal = escrow.entries(
        account=account or None,
        order_id=order_id or None,
        limit=PAGE,
        starting_after=after or None,
    )
    return render(
        request,
        "books.html",
        trial=escrow.trial_balance(),
        unbalanced=escrow.unbalanced_entries(),
        accounts=escrow.accounts(),
        journal=journal.data,
        has_more=journal.has_more,
        query={"account": account, "order_id": order_id},
    )


@router.get("/books/journal.csv")
def journal_csv(request: Request, staff: StaffDep) -> Response:
    """Every journal entry, one row per posting, streamed batch by batch."""
    entries = _models(request).escrow.all_entries()

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(JOURNAL_COLUMNS)
        for entry in entries:
            writer.writerows(journal_rows(entry))
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="journal.csv"'},
    )
