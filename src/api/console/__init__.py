"""The staff console: server-rendered pages under ``/console`` for support and auditors.

Pages are Jinja2 templates with one stylesheet of our own (nothing from another origin, no
script, no build step); they read and act through the same service and read models as the
API, as the signed-in staff member (``sessions``). ``routing`` holds what every page shares,
``signin`` the way in and out (``oidc`` through the identity provider), ``pages`` the pages,
``actions`` and ``acting`` what staff do on an order (previewed, then confirmed).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from api.console import acting, audit, oidc, pages, signin
from api.console.routing import PREFIX, ConsoleRoute
from api.http.problems import ApiError

STYLESHEET = (Path(__file__).parent / "static" / "console.css").read_bytes()

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
for part in (signin, oidc, pages, acting, audit):  # listed, not included: see ``create_app``
    router.routes.extend(part.router.routes)


@router.get(f"{PREFIX}/static/console.css")
def stylesheet() -> Response:
    return Response(STYLESHEET, media_type="text/css")


@router.api_route(f"{PREFIX}/{{rest:path}}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def no_such_page(rest: str) -> Response:
    """Any other path under the console: a 404 page, with the console's headers (last, so
    every page above is matched first)."""
    raise ApiError(404, "There is no such page in the console.")
