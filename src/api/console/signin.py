"""Signing in and out of the console.

``/console/login?ticket=…`` (the link ``ledger console-link`` prints) redeems the ticket and
sets the session cookie (``routing.signed_in``). ``/console/sign-in`` offers the ways in this
installation has: the identity provider (``oidc``), one-time links, or both.
``POST /console/sign-out`` ends the session (with the form's CSRF token, so another site
cannot sign a person out).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.oidc import provider_sign_in
from api.console.routing import (
    COOKIE,
    PREFIX,
    ConsoleRoute,
    SessionDep,
    checked_form,
    render,
    sessions,
    signed_in,
)
from api.console.sessions import SignInRefused

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

MAX_TICKET = 2048


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request) -> Response:
    return _sign_in_page(request, 200)


def _sign_in_page(request: Request, code: int, refused: str | None = None) -> Response:
    """The ways in this installation offers: the provider, one-time links, or both."""
    return render(
        request,
        "sign_in.html",
        code,
        refused=refused,
        through_provider=provider_sign_in(request) is not None,
        takes_links=sessions(request).takes_links,
    )


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, ticket: Annotated[str, Query(max_length=MAX_TICKET)] = "") -> Response:
    """Redeem a one-time link; its second use, a forged or expired one: 403 page."""
    try:
        token, session = sessions(request).redeem(ticket)
    except SignInRefused as refused:
        return _sign_in_page(request, 403, str(refused))
    return signed_in(request, token, session)


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    await checked_form(request, session)
    sessions(request).end(request.cookies[COOKIE])
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
