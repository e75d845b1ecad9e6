"""``/v1/gigs``: freelancers publish gigs; everyone signed in browses them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from api.http import schemas
from api.http.deps import CallerDep, LedgerDep, NewId, ReadModelsDep, fresh
from api.http.routes.common import Cursor, ExactJSONRoute, Limit, parse_id, tag
from ledger.domain.values import Package
from ledger.errors import NotFound
from projections.gigs.projection import gig_row
from projections.read_models import gig_view

router = APIRouter(prefix="/v1/gigs", tags=["gigs"], route_class=ExactJSONRoute)
Fresh = Depends(fresh("gigs"))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=schemas.Gig)
def create_gig(
    body: schemas.GigIn,
    caller: CallerDep,
    ledger: LedgerDep,
    new_id: NewId,
    response: Response,
) -> dict[str, Any]:
    """Publish a gig with one to three packages; the caller becomes its freelancer."""
    packages = [
        Package(p.package_id, p.price, p.delivery_days, p.revisions, p.description)
        for p in body.packages
    ]
    done = ledger.create_gig(caller, body.title, packages, new_id)
    tag(response, None, done.position)
    return gig_view(gig_row(done.aggregate))


@router.get("", response_model=schemas.Page[schemas.Gig], dependencies=[Fresh])
def list_gigs(
    _: CallerDep,
    models: ReadModelsDep,
    freelancer_id: Annotated[str | None, Query(alias="freelancerId", max_length=255)] = None,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    """Every gig (or one freelancer's), newest first."""
    page = models.gigs(freelancer_id=freelancer_id, limit=limit, starting_after=starting_after)
    return page.as_api()


@router.get("/{gig_id}", response_model=schemas.Gig, dependencies=[Fresh])
def get_gig(gig_id: str, _: CallerDep, models: ReadModelsDep) -> dict[str, Any]:
    gig = models.gig(str(parse_id(gig_id, "gig")))
    if gig is None:
        raise NotFound(f"gig {gig_id} not found")
    return gig
