"""``/v1/gigs``: freelancers publish, edit and archive gigs; everyone signed in browses them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query, Response, status

from api.http import schemas
from api.http.deps import CallerDep, LedgerDep, NewId, ReadModelsDep, fresh
from api.http.routes.common import Cursor, Limit, api_router, parse_id, tag
from ledger.domain.gig import Gig
from ledger.domain.values import Package
from ledger.errors import NotFound
from ledger.service import Done
from projections.gigs.projection import gig_row
from projections.gigs.queries import gig_view
from projections.read_models import ReadModels

router = api_router(prefix="/v1/gigs", tags=["gigs"])
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
    done = ledger.create_gig(caller, body.title, _packages(body.packages), new_id)
    tag(response, None, done.position)
    return gig_view(gig_row(done.aggregate))


@router.patch("/{gig_id}", response_model=schemas.Gig)
def revise_gig(
    gig_id: str,
    body: schemas.GigPatchIn,
    caller: CallerDep,
    ledger: LedgerDep,
    models: ReadModelsDep,
    response: Response,
) -> dict[str, Any]:
    """The gig's freelancer gives it a new title, new packages, or both. Orders already
    placed keep the package they copied."""
    packages = None if body.packages is None else _packages(body.packages)
    done = ledger.revise_gig(caller, parse_id(gig_id, "gig"), title=body.title, packages=packages)
    return _answer(done, models, response)


@router.post("/{gig_id}/archive", response_model=schemas.Gig)
def archive_gig(
    gig_id: str, caller: CallerDep, ledger: LedgerDep, models: ReadModelsDep, response: Response
) -> dict[str, Any]:
    """No new orders for the gig (``gig_archived``); orders placed before go on. Its
    freelancer, support or an admin archive it; archiving it again changes nothing."""
    done = ledger.archive_gig(caller, parse_id(gig_id, "gig"))
    return _answer(done, models, response)


def _packages(given: list[schemas.PackageIn]) -> list[Package]:
    return [
        Package(p.package_id, p.price, p.delivery_days, p.revisions, p.description) for p in given
    ]


def _answer(done: Done[Gig], models: ReadModels, response: Response) -> dict[str, Any]:
    """The gig as the command left it, with the rating the read model has (reviews are
    events of orders, not of the gig)."""
    gig_id = str(done.aggregate.id)
    tag(response, None, done.position)
    return gig_view({**gig_row(done.aggregate), **models.gigs.rating(gig_id)})


@router.get("", response_model=schemas.Page[schemas.Gig], dependencies=[Fresh])
def list_gigs(
    _: CallerDep,
    models: ReadModelsDep,
    freelancer_id: Annotated[str | None, Query(alias="freelancerId", max_length=255)] = None,
    archived: bool | None = None,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    """Every gig (or one freelancer's; ``archived=false`` keeps the ones taking orders),
    newest first."""
    page = models.gigs.page(
        freelancer_id=freelancer_id,
        archived=archived,
        limit=limit,
        starting_after=starting_after,
    )
    return page.as_api()


@router.get("/{gig_id}", response_model=schemas.Gig, dependencies=[Fresh])
def get_gig(gig_id: str, _: CallerDep, models: ReadModelsDep) -> dict[str, Any]:
    gig = models.gigs.get(str(parse_id(gig_id, "gig")))
    if gig is None:
        raise NotFound(f"gig {gig_id} not found")
    return gig
