"""What every console page shares: its headers, its templates, who is asking, and the CSRF
check of its forms.

Every answer of a console route carries ``CONSOLE_HEADERS`` (``ConsoleRoute``), an error
included, which is rendered as a page rather than as problem+json: the reader is a person in a
browser. Who is asking comes from the session cookie alone (``staff``): no cookie or an
ended session is sent to the sign-in page, a signed-in ``user`` gets a 403 page.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from api.console.sessions import ConsoleSessions, Session, csrf_matches
from api.http.problems import STORE_ERRORS, ApiError, field_errors, status_of, summary
from api.story import card, mad
from ledger.errors import LedgerError

COOKIE: Final = "ledger_console"
PREFIX: Final = "/console"
CONSOLE_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
"""Only this origin's own stylesheet and script, no framing, no Referer to other sites, and
no copy of a page kept by the browser or a proxy (pages show money and personal ids)."""

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.filters["centimes"] = mad
"""An amount in integer centimes (the aggregates' own) as MAD."""
templates.env.filters["mad"] = "{:,} MAD".format
"""An amount already in MAD (``Decimal``, as the read models' views give it)."""
templates.env.filters["card"] = card
"""A payment's card as the story writes it (``visa ending 4242``)."""


class SignInNeeded(Exception):
    """No live session: the page answers with a redirect to the sign-in page."""


class NotStaff(Exception):
    """Signed in without a staff role."""


def render(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """The template ``name`` answered with ``code``, with ``context``, the session and the
    request."""
    context.setdefault("session", getattr(request.state, "console_session", None))
    return templates.TemplateResponse(request, name, context, status_code=code)


class ConsoleRoute(APIRoute):
    """Console pages: ``CONSOLE_HEADERS`` on every answer, errors as pages."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def as_page(request: Request) -> Response:
            try:
                response = await handle(request)
            except SignInNeeded:
                response = RedirectResponse(f"{PREFIX}/sign-in", status_code=303)
            except NotStaff:
                response = error_page(
                    request, 403, "The console is for support, auditors and admins."
                )
            except LedgerError as error:
                response = error_page(request, status_of(error), error.detail)
            except ApiError as error:
                response = error_page(request, error.status, error.detail)
            except HTTPException as error:  # Starlette's own: a malformed form body
                response = error_page(request, error.status_code, str(error.detail))
            except RequestValidationError as error:
                detail = summary(field_errors(error.errors()))
                response = error_page(request, 422, detail)
            except STORE_ERRORS:
                response = error_page(request, 503, "The database is not answering; try again.")
            response.headers.update(CONSOLE_HEADERS)
            return response

        return as_page


def signed_in(request: Request, token: str, session: Session) -> HTMLResponse:
    """The page a sign-in ends on, setting the session's cookie. It moves on to the console
    by itself rather than by a redirect: a ``SameSite=Strict`` cookie set during a
    navigation that began on another site (a mail, a chat, the provider) is not sent on that
    navigation's redirects, but it is on the page's own next step. The cookie lasts as long
    as the browser session; the server ends it after ``IDLE`` unused (a ``Max-Age`` would end
    an active session 8 h after sign-in)."""
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


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    return render(request, "error.html", status, status=status, detail=detail)


def sessions(request: Request) -> ConsoleSessions:
    found: ConsoleSessions = request.app.state.console
    return found


def _signed_in(request: Request) -> Session:
    session = sessions(request).session(request.cookies.get(COOKIE))
    if session is None:
        raise SignInNeeded
    request.state.console_session = session
    return session


def _staff(session: Annotated[Session, Depends(_signed_in)]) -> Session:
    if not session.is_staff:
        raise NotStaff
    return session


SessionDep = Annotated[Session, Depends(_signed_in)]
"""Whoever is signed in (to sign out)."""
StaffDep = Annotated[Session, Depends(_staff)]
"""The signed-in staff member a page is for."""


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """The posted form's fields, once its CSRF token is the session's.

    Raises: ApiError 403, and nothing is done.
    """
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if not csrf_matches(session, fields.get("csrf")):
        raise ApiError(403, "This form has expired or did not come from the console: reload it.")
    return fields
