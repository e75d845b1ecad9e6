"""The audit page: verify the chain now, the digest to keep, a kept digest checked, and the
whole ledger as of a moment (what ``ledger audit verify|digest`` and ``ledger replay --as-of``
compute, with the same functions).

Verifying a long log takes a while, so its answer is streamed: the template is rendered as
the verification goes (Jinja's ``generate``), a progress line per batch of events, then the
outcome, with no script. The last verification this process made is kept for the overview
(``LAST_VERIFICATION`` on the app's state).
"""

from __future__ import annotations

import logging
import pathlib
import queue
import re
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.console.routing import PREFIX, ConsoleRoute, StaffDep, checked_form, render, templates
from ledger.errors import NotFound, ValidationFailed
from projections.as_of.replay import replay_as_of
from projections.audit.verify import (
    Verification,
    chain_head,
    stored_rows,
    verify_chain,
    verify_digest,
)

router = APIRouter(prefix=f"{PREFIX}/audit", route_class=ConsoleRoute, include_in_schema=False)
log = logging.getLogger("api.console")
DIGEST = re.compile(r"^\s*(\d{1,18}):([0-9a-fA-F]{64})\s*$")


@router.get("", response_class=HTMLResponse)
def audit(request: Request, staff: StaffDep) -> Response:
    position, digest = chain_head(request.app.state.read_models.db)
    return render(request, "audit.html", head=f"{position}:{digest}", position=position)


@router.post("/verify")
async def verify(request: Request, staff: StaffDep) -> Response:
    """Recompute the chain from the raw events, streaming the progress and the outcome."""
    await checked_form(request, staff)
    state, session = request.app.state, request.state.console_session
    updates = _verifying(state, session.subject)
    page = templates.get_template("verify.html").generate(
        session=session, request=request, updates=updates
    )
    return StreamingResponse(page, media_type="text/html; charset=utf-8")


def _verifying(state: Any, who: str) -> Iterator[dict[str, Any]]:
    """``verify_chain`` in a thread of its own: a ``{"done", "total"}`` per batch, then
    ``{"result": Verification}`` (kept as the app's last verification)."""
    updates: queue.Queue[dict[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            result = verify_chain(
                state.ledger,
                state.read_models.db,
                lambda done, total: updates.put({"done": done, "total": total}),
            )
            state.last_verification = {"at": state.clock(), "by": who, "result": result}
            updates.put({"result": result})
        except Exception as error:  # the page says so; the log has the traceback
            log.exception("verifying the audit chain failed")
            updates.put({"failed": f"{type(error).__name__}: {error}"})

    threading.Thread(target=run, name="console-verify", daemon=True).start()
    while True:
        update = updates.get()
        yield update
        if "result" in update or "failed" in update:
            return


@router.get("/event/{position}", response_class=HTMLResponse)
def event(
    request: Request, staff: StaffDep, position: Annotated[int, Path(ge=1, le=2**62)]
) -> Response:
    """The raw event at ``position`` (a mismatch may not even decode): its stream, version
    and topic, and a search for the order it belongs to."""
    state = request.app.state
    rows = [
        row
        for batch in stored_rows(state.ledger, state.read_models.db, position - 1, position)
        for row in batch
        if row[0] == position
    ]
    if not rows:
        raise NotFound(f"no event at position {position}")
    _, stream, version, topic, state_bytes = rows[0]
    return render(
        request,
        "event.html",
        position=position,
        stream=str(UUID(str(stream))),
        version=version,
        topic=topic,
        size=len(state_bytes),
    )


@router.post("/digest", response_class=HTMLResponse)
async def digest(request: Request, staff: StaffDep) -> Response:
    """A digest kept outside the system (``POSITION:HASH``) checked against the raw log."""
    form = await checked_form(request, staff)
    found = DIGEST.match(form.get("digest", ""))
    if found is None:
        raise ValidationFailed("a digest is POSITION:HASH (64 hex digits)", field="digest")
    position, expected = int(found.group(1)), found.group(2)
    state = request.app.state
    result: Verification = await run_in_threadpool(  # rehashes the log: off the event loop
        verify_digest, state.ledger, state.read_models.db, position, expected
    )
    head = chain_head(state.read_models.db)
    return render(
        request,
        "audit.html",
        head=f"{head[0]}:{head[1]}",
        position=head[0],
        checked=result,
        digest=f"{position}:{expected.lower()}",
    )


@router.get("/as-of", response_class=HTMLResponse)
def as_of(
    request: Request,
    staff: StaffDep,
    moment: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """The orders, payments and trial balance as they were at ``moment`` (UTC), replayed."""
    when = _moment(moment)
    with tempfile.TemporaryDirectory(prefix="ledger-as-of-") as workdir:
        summary = replay_as_of(request.app.state.ledger, when, pathlib.Path(workdir))
    position, head = chain_head(request.app.state.read_models.db)
    return render(
        request,
        "audit.html",
        head=f"{position}:{head}",
        position=position,
        summary=summary,
        moment=moment,
    )


def _moment(text: str) -> datetime:
    """A ``datetime-local`` input's value (``2026-01-05T10:00``), read as UTC.

    Raises: ValidationFailed.
    """
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed("moment must be a date and time (UTC)", field="moment") from None
