"""The staff console's pages through the ASGI app, on SQLite and PostgreSQL: signing in with a
one-time link, sessions, CSRF, headers, and what each page shows of real data."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from api.console.routing import COOKIE
from api.console.sessions import issue_ticket
from api.http.auth import signing_key
from ledger.settings import Settings
from tests.api.conftest import Api
from tests.conftest import FakeClock

HEADERS = {
    "content-security-policy": "default-src 'self'",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def ticket(
    api: Api, settings: Settings, clock: FakeClock, role: str = "support", **life: Any
) -> str:
    return issue_ticket(
        signing_key(settings), f"staff-{role}", role, clock(), timedelta(**(life or {"minutes": 5}))
    )


def sign_in(api: Api, settings: Settings, clock: FakeClock, role: str = "support") -> None:
    response = api.client.get(
        "/console/login", params={"ticket": ticket(api, settings, clock, role)}
    )
    assert response.status_code == 200, response.text
    assert 'http-equiv="refresh"' in response.text


def caught_up(api: Api) -> None:
    head = api.app.state.ledger.recorder.max_notification_id() or 0
    assert api.app.state.runner.wait_for(head, timeout=30)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_without_a_session_every_page_goes_to_the_sign_in_page(api: Api) -> None:
    for path in ("/console", "/console/orders", "/console/books", "/console/books/journal.csv"):
        response = api.client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/console/sign-in"
    page = api.client.get("/console/sign-in")
    assert page.status_code == 200
    assert "ledger console-link --sub YOUR_ID --role support" in page.text
    for name, value in HEADERS.items():
        assert value in page.headers[name]


def test_a_link_signs_in_once_with_a_strict_http_only_cookie(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    link = ticket(api, settings, clock)
    first = api.client.get("/console/login", params={"ticket": link})
    assert first.status_code == 200
    cookie = first.headers["set-cookie"]
    assert f"{COOKIE}=" in cookie
    for part in ("HttpOnly", "SameSite=strict", "Path=/console"):
        assert part.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # the public URL is http here
    assert "max-age" not in cookie.lower()  # a browser-session cookie; the server ends it
    assert api.client.get("/console").status_code == 200
    api.client.cookies.clear()
    again = api.client.get("/console/login", params={"ticket": link})
    assert again.status_code == 403
    assert "used already" in again.text
    assert "set-cookie" not in again.headers


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda key, now: issue_ticket("another key", "x", "support", now), "not valid"),
        (lambda key, now: "not-a-ticket", "not valid"),
        (lambda key, now: issue_ticket(key, "x", "support", now - timedelta(minutes=6)), "expired"),
    ],
    ids=["forged", "garbage", "expired"],
)
def test_a_forged_or_expired_link_signs_nobody_in(
    api: Api, settings: Settings, clock: FakeClock, make: Any, words: str
) -> None:
    response = api.client.get(
        "/console/login", params={"ticket": make(signing_key(settings), clock())}
    )
    assert response.status_code == 403
    assert words in response.text
    assert "set-cookie" not in response.headers


def test_a_ticket_is_not_a_bearer_token(api: Api, settings: Settings, clock: FakeClock) -> None:
    response = api.client.get(
        "/v1/orders", headers={"Authorization": f"Bearer {ticket(api, settings, clock)}"}
    )
    assert response.status_code == 401


def test_a_signed_in_user_without_a_staff_role_gets_a_403_page(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    sign_in(api, settings, clock, role="user")
    response = api.client.get("/console/orders")
    assert response.status_code == 403
    assert "support, auditors and admins" in response.text
    assert "Sign out" in response.text  # but may sign out


def test_sign_out_needs_the_csrf_token_and_ends_the_session(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    sign_in(api, settings, clock)
    page = api.client.get("/console")
    forged = api.client.post("/console/sign-out", data={"csrf": "guess"}, follow_redirects=False)
    assert forged.status_code == 403
    assert api.client.get("/console").status_code == 200  # still signed in
    cookie = api.client.cookies[COOKIE]
    out = api.client.post(
        "/console/sign-out", data={"csrf": csrf_of(page.text)}, follow_redirects=False
    )
    assert out.status_code == 303
    api.client.cookies.set(COOKIE, cookie, path="/console")  # a copy of the old cookie
    assert api.client.get("/console", follow_redirects=False).status_code == 303


def test_a_session_idle_for_8_hours_is_over(api: Api, settings: Settings, clock: FakeClock) -> None:
    sign_in(api, settings, clock)
    clock.advance(hours=7, minutes=59)
    assert api.client.get("/console").status_code == 200  # used: idle time starts again
    clock.advance(hours=7, minutes=59)
    assert api.client.get("/console").status_code == 200
    clock.advance(hours=8)
    assert api.client.get("/console", follow_redirects=False).status_code == 303


def _story(api: Api) -> dict[str, Any]:
    """A paid order delivered and disputed, and another only placed."""
    gig = api.gig()
    order = api.paid_order(gig, transaction="tx-console-1")
    ledger, oid = api.app.state.ledger, order["id"]
    from uuid import UUID

    from ledger.actors import Caller

    freelancer, client = Caller("freelancer-1"), Caller("client-1")
    ledger.accept_order(freelancer, UUID(oid))
    ledger.deliver_order(freelancer, UUID(oid), "Here it is")
    ledger.open_dispute(client, UUID(oid), "Not what was asked")
    api.order(gig, client="client-2")
    caught_up(api)
    return order


def test_orders_are_found_by_any_id_they_answer_to(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = _story(api)
    sign_in(api, settings, clock)
    payment_id = api.read(f"/v1/orders/{order['id']}/payment", "client-1")["id"]
    for q in (order["id"], payment_id, "tx-console-1", "client-1", "freelancer-1"):
        page = api.client.get("/console/orders", params={"q": q})
        assert page.status_code == 200
        assert f"/console/orders/{order['id']}" in page.text, q
    assert "client-2" not in api.client.get("/console/orders", params={"q": "tx-console-1"}).text
    disputed = api.client.get("/console/orders", params={"stage": "in_dispute"}).text
    assert order["id"] in disputed and "client-2" not in disputed
    today = clock().date().isoformat()
    placed = api.client.get("/console/orders", params={"placed_from": today, "placed_to": today})
    assert order["id"] in placed.text and "client-2" in placed.text
    tomorrow = (clock() + timedelta(days=1)).date().isoformat()
    later = api.client.get("/console/orders", params={"placed_from": tomorrow})
    assert "No order matches" in later.text


@pytest.mark.parametrize(
    "params",
    [{"status": "lost"}, {"stage": "x"}, {"placed_from": "2026-13-40"}, {"after": "nope"}],
)
def test_a_bad_search_is_a_4xx_page(
    api: Api, settings: Settings, clock: FakeClock, params: dict[str, str]
) -> None:
    sign_in(api, settings, clock)
    response = api.client.get("/console/orders", params=params)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_the_order_page_tells_the_story_with_postings_and_replays_a_version(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = _story(api)
    sign_in(api, settings, clock, role="auditor")
    page = api.client.get(f"/console/orders/{order['id']}")
    assert page.status_code == 200
    text = page.text
    for words in (
        "OrderPlaced",
        "PaymentSucceeded",
        "DisputeOpened",
        "dispute opened: Not what was asked",
        "tx-console-1",
        "liabilities:escrow",
        "client-1",
        "freelancer-1",
    ):
        assert words in text, words
    assert text.index("OrderPlaced") < text.index("DisputeOpened")  # oldest first
    replay = api.client.get(f"/console/orders/{order['id']}", params={"version": 1})
    assert "As it was at version 1" in replay.text
    assert "pending · awaiting_payment" in replay.text
    missing = api.client.get(f"/console/orders/{order['id']}", params={"version": 999})
    assert missing.status_code == 404
    stranger = api.client.get("/console/orders/not-an-id")
    assert stranger.status_code in (404, 422)


def test_the_books_balance_and_the_journal_downloads_as_csv(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = _story(api)
    sign_in(api, settings, clock, role="auditor")
    books = api.client.get("/console/books")
    assert books.status_code == 200
    assert "balanced in total" in books.text and "every entry balances" in books.text
    assert "assets:gateway" in books.text
    filtered = api.client.get("/console/books", params={"order_id": order["id"]})
    assert order["id"][:8] in filtered.text
    download = api.client.get("/console/books/journal.csv")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0][:3] == ["entry_id", "position", "at"]
    assert {row[3] for row in rows[1:]} == {order["id"]}
    assert sum(float(row[-2] or 0) for row in rows[1:]) == sum(float(r[-1] or 0) for r in rows[1:])


def test_the_overview_counts_orders_and_draws_the_last_30_days(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    _story(api)
    sign_in(api, settings, clock)
    page = api.client.get("/console")
    assert page.status_code == 200
    assert "<title>Overview · Gig Ledger</title>" in page.text
    assert "2 in all" in page.text
    assert page.text.count("<svg") == 4
    assert "Orders placed <b>2</b>" in page.text
    assert "Paid volume <b>100.00 MAD</b>" in page.text
    assert "up to date" in page.text


def test_the_printed_link_signs_in(api: Api, settings: Settings, capsys: Any) -> None:
    from api.cli import build_parser, console_link

    args = build_parser().parse_args(["console-link", "--sub", "ana", "--role", "support"])
    assert console_link.run(settings, args) == 0
    link = capsys.readouterr().out.strip()
    parts = urlsplit(link)
    assert parts.path == "/console/login"
    response = api.client.get("/console/login", params=parse_qs(parts.query))
    assert response.status_code == 200
    assert "ana (support)" in response.text


def _order_page(api: Api, order_id: str) -> str:
    page = api.client.get(f"/console/orders/{order_id}")
    assert page.status_code == 200
    return page.text


def _hidden(page: str) -> dict[str, str]:
    """The hidden fields of the page's confirmation form."""
    form = page[page.index('class="confirm"') :]
    return dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_support_previews_a_split_then_confirms_it_once(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = _story(api)  # 100 MAD paid, in dispute
    sign_in(api, settings, clock)
    page = _order_page(api, order["id"])
    assert "Resolve the dispute" in page and "Cancel for a policy violation" in page
    csrf = csrf_of(page)
    head = api.app.state.ledger.recorder.max_notification_id()
    path = f"/console/orders/{order['id']}/actions/resolve"
    form = {"csrf": csrf, "step": "preview", "outcome": "split", "refund": "30.00"}
    preview = api.client.post(path, data=form)
    assert preview.status_code == 200, preview.text
    text = preview.text
    assert "Nothing is recorded yet" in text
    for words in (
        "DisputeResolved",
        "RefundRecorded",
        "30.00 MAD back to the client",
        "56.00 MAD to the freelancer",
        "14.00 MAD fee",
        "liabilities:escrow",
    ):
        assert words in text, words
    assert api.app.state.ledger.recorder.max_notification_id() == head  # nothing stored
    confirm = _hidden(text)
    assert confirm["step"] == "confirm" and confirm["refund"] == "30.00"
    done = api.client.post(path, data=confirm)
    assert done.status_code == 200, done.text
    assert "Recorded." in done.text and "completed · closed" in done.text
    assert "70.00 MAD" in done.text  # released from escrow: 56 + 14
    after = api.app.state.ledger.recorder.max_notification_id()
    assert after > head
    again = api.client.post(path, data=confirm)  # the same form submitted twice
    assert again.status_code == 200
    assert "nothing was done again" in again.text
    assert api.app.state.ledger.recorder.max_notification_id() == after
    story = api.app.state.ledger.order_timeline(
        __import__("ledger.actors", fromlist=["Caller"]).Caller("s", frozenset({"support"})),
        __import__("uuid").UUID(order["id"]),
    )
    resolved = [e for e in story.entries if e.kind == "DisputeResolved"]
    assert len(resolved) == 1
    assert resolved[0].actor.id == "staff-support" and resolved[0].actor.request_id
    caught_up(api)
    assert "every entry balances" in api.client.get("/console/books").text


def test_an_action_without_the_csrf_token_is_403_and_records_nothing(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = _story(api)
    sign_in(api, settings, clock)
    head = api.app.state.ledger.recorder.max_notification_id()
    path = f"/console/orders/{order['id']}/actions/resolve"
    for csrf in (None, "forged"):
        data = {"step": "confirm", "outcome": "release", "key": "k" * 32}
        if csrf:
            data["csrf"] = csrf
        assert api.client.post(path, data=data).status_code == 403
    assert api.app.state.ledger.recorder.max_notification_id() == head


def test_a_confirmation_on_an_order_that_moved_records_nothing(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = _story(api)
    sign_in(api, settings, clock)
    path = f"/console/orders/{order['id']}/actions/cancel"
    csrf = csrf_of(_order_page(api, order["id"]))
    preview = api.client.post(path, data={"csrf": csrf, "step": "preview", "note": "spam"})
    assert "OrderCancelled" in preview.text and "RefundRecorded" in preview.text
    confirm = _hidden(preview.text)
    confirm["version"] = str(int(confirm["version"]) - 1)  # shown an older version
    head = api.app.state.ledger.recorder.max_notification_id()
    refused = api.client.post(path, data=confirm)
    assert refused.status_code in (409, 412)
    assert api.app.state.ledger.recorder.max_notification_id() == head


def test_an_auditor_is_offered_no_action_and_cannot_post_one(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = _story(api)
    sign_in(api, settings, clock, role="auditor")
    page = _order_page(api, order["id"])
    assert "Resolve the dispute" not in page and "Actions" not in page
    data = {"csrf": csrf_of(page), "step": "preview", "outcome": "release"}
    refused = api.client.post(f"/console/orders/{order['id']}/actions/resolve", data=data)
    assert refused.status_code == 409


@pytest.mark.parametrize(
    "data",
    [
        {"outcome": "everything"},
        {"outcome": "split", "refund": "lots"},
        {"outcome": "split", "refund": "1000000"},
        {"outcome": "split", "refund": "0.001"},
        {"outcome": "release", "version": "x"},
    ],
)
def test_a_bad_action_form_is_a_4xx_page_and_records_nothing(
    api: Api, settings: Settings, clock: FakeClock, data: dict[str, str]
) -> None:
    order = _story(api)
    sign_in(api, settings, clock)
    csrf = csrf_of(_order_page(api, order["id"]))
    head = api.app.state.ledger.recorder.max_notification_id()
    response = api.client.post(
        f"/console/orders/{order['id']}/actions/resolve",
        data={"csrf": csrf, "step": "preview", **data},
    )
    assert 400 <= response.status_code < 500, response.text
    assert api.app.state.ledger.recorder.max_notification_id() == head


def test_the_audit_page_verifies_the_chain_and_checks_digests(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    _story(api)
    sign_in(api, settings, clock, role="auditor")
    overview = api.client.get("/console").text
    assert "Not verified since this service started" in overview
    page = api.client.get("/console/audit")
    assert page.status_code == 200
    head = re.search(r'class="digest" readonly value="(\d+:[0-9a-f]{64})"', page.text)
    assert head is not None
    csrf = csrf_of(page.text)
    assert api.client.post("/console/audit/verify", data={"csrf": "x"}).status_code == 403
    verified = api.client.post("/console/audit/verify", data={"csrf": csrf})
    assert verified.status_code == 200
    assert "The chain holds" in verified.text and "checked up to position" in verified.text
    assert "Last verified" in api.client.get("/console").text
    good = api.client.post("/console/audit/digest", data={"csrf": csrf, "digest": head.group(1)})
    assert "nothing changed" in good.text
    position = head.group(1).split(":")[0]
    forged = api.client.post(
        "/console/audit/digest", data={"csrf": csrf, "digest": f"{position}:{'0' * 64}"}
    )
    assert "does not match" in forged.text
    bad = api.client.post("/console/audit/digest", data={"csrf": csrf, "digest": "nonsense"})
    assert bad.status_code == 422
    event = api.client.get(f"/console/audit/event/{position}")
    assert event.status_code == 200 and "/console/orders?q=" in event.text
    assert api.client.get("/console/audit/event/999999").status_code == 404


def test_the_ledger_as_of_a_moment(api: Api, settings: Settings, clock: FakeClock) -> None:
    _story(api)
    sign_in(api, settings, clock, role="auditor")
    later = (clock() + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    page = api.client.get("/console/audit/as-of", params={"moment": later})
    assert page.status_code == 200, page.text
    assert "the books balanced then" in page.text
    assert "assets:gateway" in page.text and "100.00 MAD" in page.text
    before = (clock() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    empty = api.client.get("/console/audit/as-of", params={"moment": before})
    assert "0 events replayed" in empty.text
    assert api.client.get("/console/audit/as-of", params={"moment": "soon"}).status_code == 422


def test_sync_asks_the_gateway_and_previews_what_it_would_record(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    from tests.api.test_sandbox_checkout import CARD, PAID, form_path, open_payment, pay

    gig = api.gig()
    order = api.order(gig)
    paid = pay(api, form_path(open_payment(api, order)), {"cardNumber": PAID, **CARD})
    assert paid.status_code == 303
    caught_up(api)
    sign_in(api, settings, clock)
    page = _order_page(api, order["id"])
    assert "Sync the payment with the gateway" in page
    head = api.app.state.ledger.recorder.max_notification_id()
    path = f"/console/orders/{order['id']}/actions/sync"
    preview = api.client.post(path, data={"csrf": csrf_of(page), "step": "preview"})
    assert preview.status_code == 200, preview.text
    assert "it would change nothing" in preview.text  # the gateway agrees with the ledger
    done = api.client.post(path, data=_hidden(preview.text))
    assert done.status_code == 200
    assert "Nothing to record" in done.text
    assert api.app.state.ledger.recorder.max_notification_id() == head
    unknown = _story(api)  # its transaction is not the sandbox's
    page = _order_page(api, unknown["id"])
    refused = api.client.post(
        f"/console/orders/{unknown['id']}/actions/sync",
        data={"csrf": csrf_of(page), "step": "preview"},
    )
    assert refused.status_code == 404
    assert "the sandbox has no transaction" in refused.text


def _act(api: Api, order_id: str, name: str, **fields: str) -> str:
    """Preview the action ``name`` from the order page, then confirm it: the answer."""
    page = _order_page(api, order_id)
    path = f"/console/orders/{order_id}/actions/{name}"
    preview = api.client.post(path, data={"csrf": csrf_of(page), "step": "preview", **fields})
    assert preview.status_code == 200, preview.text
    done = api.client.post(path, data=_hidden(preview.text))
    assert done.status_code == 200, done.text
    return preview.text + done.text


def test_a_refund_asked_of_the_gateway_is_confirmed_with_its_reference(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    from tests.api.test_refund_requests import ManualRefunds

    ledger = api.app.state.ledger
    ledger.gateway = ManualRefunds(ledger.gateway._key, ledger.public_url)
    order = _story(api)
    sign_in(api, settings, clock)
    cancelled = _act(api, order["id"], "cancel", note="selling stolen artwork")
    assert "OrderCancelled" in cancelled and "RefundRequested" in cancelled
    page = _order_page(api, order["id"])
    assert "asked of the gateway" in page and "Confirm a requested refund" in page
    page = _order_page(api, order["id"])
    path = f"/console/orders/{order['id']}/actions/confirm-refund"
    form = {"csrf": csrf_of(page), "step": "preview", "reference": "yc-ref-76"}
    stale = _hidden(api.client.post(path, data=form).text)
    stale["payment_version"] = str(int(stale["payment_version"]) - 1)  # shown before a change
    assert api.client.post(path, data=stale).status_code in (409, 412)
    confirmed = _act(api, order["id"], "confirm-refund", reference="yc-ref-77")
    assert "RefundConfirmed" in confirmed and "yc-ref-77" in confirmed
    assert "refund to the client" in confirmed and "assets:gateway" in confirmed
    assert "Confirm a requested refund" not in _order_page(api, order["id"])


def test_a_tampered_event_is_named_by_its_position_and_linked(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    from tests.integration.test_append_only import raw_store
    from tests.integration.test_audit_chain import tamper

    _story(api)
    sign_in(api, settings, clock, role="auditor")
    with raw_store(settings, api.app.state.ledger) as raw:
        tamper(raw, "UPDATE {table} SET topic = topic || '!' WHERE {id} = 3")
    csrf = csrf_of(api.client.get("/console/audit").text)
    verified = api.client.post("/console/audit/verify", data={"csrf": csrf})
    assert "The chain is broken at position 3" in verified.text
    assert 'href="/console/audit/event/3"' in verified.text
    event = api.client.get("/console/audit/event/3")
    assert event.status_code == 200 and "!" in event.text  # the changed topic, shown raw
    assert "broken at position 3" in api.client.get("/console").text


def test_a_malformed_query_is_a_422_page_with_the_console_headers(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = _story(api)
    sign_in(api, settings, clock)
    for path, params in (
        (f"/console/orders/{order['id']}", {"version": "abc"}),
        ("/console/orders", {"q": "x" * 300}),
        ("/console/orders", {"placed_to": "9999-12-31"}),
        ("/console/audit/event/0", {}),
        ("/console/audit/as-of", {"moment": "0001-01-01T00:00+14:00"}),
        ("/console/audit/as-of", {"moment": "9999-12-31T23:59-05:00"}),
    ):
        response = api.client.get(path, params=params)
        assert response.status_code == 422, (path, params)
        assert response.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in response.headers["content-security-policy"]
    page = _order_page(api, order["id"])
    path = f"/console/orders/{order['id']}/actions/resolve"
    odd = {"csrf": csrf_of(page), "step": "preview", "outcome": "release", "version": "\u00b2"}
    assert api.client.post(path, data=odd).status_code == 422
    broken = api.client.post(
        path, content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert 400 <= broken.status_code < 500
    assert "default-src 'self'" in broken.headers["content-security-policy"]
    for method in ("GET", "POST"):
        missing = api.client.request(method, "/console/no/such/page")
        assert missing.status_code == 404
        assert "no such page" in missing.text
        assert "default-src 'self'" in missing.headers["content-security-policy"]


def test_the_order_page_shows_how_it_is_paid(
    api: Api, settings: Settings, clock: FakeClock
) -> None:
    order = api.order(api.gig())
    answer = api.client.post(
        f"/v1/orders/{order['id']}/payments",
        json={"paymentMethod": "cashplus"},
        headers=api.as_("client-1"),
    )
    assert answer.status_code == 201, answer.text
    code = answer.json()["cashplus"]["code"]
    card_order = api.order(api.gig())
    card = api.open_payment(card_order)
    paid = api.client.post(
        f"/sandbox/payment-form/{card['checkout']['tokenId']}",
        json={"cardNumber": "4242424242424242", "expiry": "12/30", "cvv": "123",
              "cardHolderName": "A"},
    )  # fmt: skip
    assert paid.json()["status"] == "paid", paid.text
    caught_up(api)
    sign_in(api, settings, clock)
    cash_page = api.client.get(f"/console/orders/{order['id']}").text
    assert "</span> · awaiting_cash_payment" in cash_page
    assert f"CashPlus code <code>{code}</code>" in cash_page
    assert "expires 2026-01-08 09:00 UTC" in cash_page
    assert "CashPaymentAwaited" in cash_page
    assert f"CashPlus code {code} issued" in cash_page
    card_page = api.client.get(f"/console/orders/{card_order['id']}").text
    assert "visa ending 4242" in card_page
    assert "4242424242424242" not in card_page
