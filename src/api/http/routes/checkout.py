"""``/checkout/{payment}/success|error``: where the gateway sends the client's browser back
after its hosted checkout (the return URLs every payment opens with), whichever gateway took
the payment. The pages say only how it went: the payment itself is recorded by the
gateway's webhook, never by a browser arriving here.

``page`` writes these pages (and the sandbox's form); ``PageRoute`` is the route class of both
routers, so every answer they give carries ``PAGE_HEADERS``.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Final, Literal

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from api.http.routes.common import api_router, parse_id

PAGE_HEADERS: Final = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""What every answer of a page route carries: no framing (clickjacking a card form), no
script, images or other origins' anything, a form that posts only here, no MIME sniffing, and
no token leaked to another site in a ``Referer``. The pages' one inline ``<style>`` is all
they load."""


class PageRoute(APIRoute):
    """A route of our own HTML pages: the page, a redirect, and the problem+json of an error
    raised on the way (rendered by the app's own handlers, ``api.http.problems``) all carry
    ``PAGE_HEADERS``. Anything without a handler of its own (a bug) goes on, as elsewhere."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def with_page_headers(request: Request) -> Response:
            try:
                response = await handle(request)
            except Exception as error:
                response = await _problem(request, error)
            response.headers.update(PAGE_HEADERS)
            return response

        return with_page_headers


async def _problem(request: Request, error: Exception) -> Response:
    """The answer the app's exception handler for ``error`` gives; ``error`` raised again
    when the app has none for it but the catch-all's."""
    handlers = request.app.exception_handlers
    own = type(error).__mro__[: type(error).__mro__.index(Exception)]
    kind = next((kind for kind in own if kind in handlers), None)
    if kind is None:  # only Exception's handler, or none: the app treats it as a bug
        raise error
    answer = handlers[kind](request, error)
    response: Response = await answer if inspect.isawaitable(answer) else answer
    return response


router = api_router(tags=["checkout"], route_class=PageRoute)


@router.get("/checkout/{payment_id}/{outcome}", response_class=HTMLResponse)
def checkout_result(payment_id: str, outcome: Literal["success", "error"]) -> HTMLResponse:
    """Where the gateway sends the client back; says only how it went (for any payment id:
    the page reads nothing)."""
    parse_id(payment_id, "payment")
    text = (
        "Payment received. You can close this page."
        if outcome == "success"
        else ("The payment did not go through. You can close this page.")
    )
    return HTMLResponse(page("Payment", f"<p>{html.escape(text)}</p>"))


def page(title: str, body: str) -> str:
    """A small HTML page of our own (the checkout's pages and the sandbox's form)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}
label{{display:block;margin:.6rem 0}}input{{display:block;width:100%;padding:.4rem}}
button{{margin-top:1rem;padding:.6rem 1rem}}.hint{{color:#555;font-size:.9rem}}</style>
</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"""
