"""Signing in and out of the console.

``/console/login?ticket=…`` (the link ``ledger console-link`` prints) redeems the ticket and
sets the session cookie. It answers a page that moves on to the console by itself rather than
a redirect: a ``SameSite=Strict`` cookie set while following a link from another site (a
mail, a chat) is not sent on a redirect of that same navigation, but it is on the page's own
next step. ``/console/sign-in`` says how to get a link; ``POST /console/sign-out`` ends the
session (with the form's CSRF token, so another site cannot sign a person out).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console.routing import (
    COOKIE,
    PREFIX,
    ConsoleRoute,
    SessionDep,
    checked_form,
    render,
    sessions,
)
from api.console.sessions import TicketRefused

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

MAX_TICKET = 2048


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in(request: Request) -> Response:
    return render(request, "sign_in.html")


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, ticket: Annotated[str, Query(max_length=MAX_TICKET)] = "") -> Response:
    """Redeem a one-time link; its second use, a forged or expired one: 403 page. The
    cookie lasts as long as the browser session; the server ends it after ``IDLE`` unused
    (a ``Max-Age`` would end an active session 8 h after sign-in)."""
    try:
        token, session = sessions(request).redeem(ticket)
    except TicketRefused as refused:
        return render(request, "sign_in.html", 403, refused=str(refused))
    request.state.console_session = session
    response = render(request, "signed_in.html")
    response.set_cookie(
        COOKIE,
        token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=sessions(request).secure_cookie,
    )
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: SessionDep) -> Response:
    await checked_form(request, session)
    sessions(request).end(request.cookies[COOKIE])
    response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response
