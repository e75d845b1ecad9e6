"""The escrow ledger's books (auditors, admins, support read-only) and a freelancer's own
balance. Everything here reads the ``escrow`` read model."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Query

from api.http import schemas
from api.http.deps import CallerDep, ReadModelsDep, StaffReaderDep, fresh
from api.http.routes.common import Cursor, Limit, api_router

router = api_router(prefix="/v1", tags=["ledger"])
Fresh = Depends(fresh("escrow"))
Account = Annotated[str | None, Query(max_length=300)]


@router.get("/ledger/accounts", response_model=schemas.Accounts, dependencies=[Fresh])
def accounts(_: StaffReaderDep, models: ReadModelsDep) -> dict[str, Any]:
    """Every account with its debits, credits and balance, by name."""
    return {"data": models.escrow.accounts()}


@router.get("/ledger/entries", response_model=schemas.Page[schemas.Entry], dependencies=[Fresh])
def entries(
    _: StaffReaderDep,
    models: ReadModelsDep,
    order_id: Annotated[str | None, Query(alias="orderId", max_length=64)] = None,
    account: Account = None,
    limit: Limit = 20,
    starting_after: Cursor = None,
) -> dict[str, Any]:
    """Journal entries with their postings, newest first; filtered by order or account."""
    page = models.escrow.entries(
        order_id=order_id,
        account=account,
        limit=limit,
        starting_after=starting_after,
    )
    return page.as_api()


@router.get("/ledger/trial-balance", response_model=schemas.TrialBalance, dependencies=[Fresh])
def trial_balance(_: StaffReaderDep, models: ReadModelsDep) -> dict[str, Any]:
    """Total debits and credits of the books: ``balanced`` when they are equal."""
    return models.escrow.trial_balance()


@router.get("/me/balance", response_model=schemas.Balance, dependencies=[Fresh])
def my_balance(caller: CallerDep, models: ReadModelsDep) -> dict[str, Any]:
    """The caller's own balance as a freelancer: pending clearance and available."""
    return models.escrow.balance(caller.id)
