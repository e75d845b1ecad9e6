"""``/checkout/{payment}/success|error``: where the gateway sends the client's browser back
after its hosted checkout (the return URLs every payment opens with), whichever gateway took
the payment. The pages say only how it went: the payment itself is recorded by the
gateway's webhook, never by a browser arriving here.
"""

from __future__ import annotations

import html
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api.http.routes.common import parse_id

router = APIRouter(tags=["checkout"])


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
