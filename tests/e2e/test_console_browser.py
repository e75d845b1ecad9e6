"""The staff console in a real headless Chromium, against ``ledger serve`` with ``ledger
demo``'s data (what ``make run`` serves): support signs in with a one-time link, finds the
disputed order by its transaction id, reads its story and resolves it as a split after
checking the preview, then sees the order and the books change; an auditor reads everything
and is offered no action; a link opened twice signs nobody in the second time. Every page's
screenshot is written under the test's temporary directory (the order page's is also kept in
``test-artifacts/``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.e2e.conftest import ledger
from tests.e2e.test_checkout_browser import ARTIFACTS, chromium, free_port, head
from tests.identity_provider import (
    AUDIENCE,
    CLIENT_ID,
    CLIENT_SECRET,
    ROLE_MAP,
    ROLES_CLAIM,
    running,
)


def shot(page: Page, directory: Path, name: str) -> Path:
    path = directory / f"console-{name}.png"
    page.screenshot(path=path, full_page=True)
    return path


def test_support_and_an_auditor_in_the_console(serve, tmp_path: Path) -> None:
    executable = chromium()
    port = free_port()
    database_url = f"sqlite:///{tmp_path}/var/ledger.db"
    server = serve(port, LEDGER_DATABASE_URL=database_url)
    env = {**server.env, "LEDGER_DATABASE_URL": database_url}
    ledger(tmp_path, env, "demo", "--port", str(port))

    def link(role: str) -> str:
        return ledger(
            tmp_path,
            env,
            "console-link",
            "--sub",
            f"ana-{role}",
            "--role",
            role,
            "--port",
            str(port),
        )

    support_link = link("support")
    assert support_link.startswith(f"{server.url}/console/login?ticket=")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(f"{server.url}/console")
            page.wait_for_url(f"{server.url}/console/sign-in")
            assert "ledger console-link" in page.inner_text("main")
            shot(page, tmp_path, "sign-in")

            page.goto(support_link)
            page.wait_for_url(f"{server.url}/console")
            assert "ana-support · support" in page.inner_text("header")
            assert "Orders now" in page.inner_text("main")
            shot(page, tmp_path, "overview")

            page.click("text=Orders")
            page.fill("input[name=q]", "tx-demo-3")
            page.click("button:has-text('Search')")
            rows = page.locator("table.grid tbody tr")
            assert rows.count() == 1
            assert "in_dispute" in rows.first.inner_text()
            shot(page, tmp_path, "orders")

            rows.first.locator("a").click()
            page.wait_for_selector("ol.timeline")
            story = page.inner_text("ol.timeline")
            for words in (
                "OrderPlaced",
                "PaymentSucceeded",
                "OrderDelivered",
                "DisputeOpened",
                "Only one of the three variants was delivered",
                "liabilities:escrow",
            ):
                assert words in story, words
            assert "in_dispute" in page.inner_text("dl.facts")
            order_shot = shot(page, tmp_path, "order")
            order_url = page.url
            page.click("text=the order right after this >> nth=0")
            assert "As it was at version 1" in page.inner_text("main")

            # A forged POST (the session's cookie, no CSRF token) is 403 and stores nothing.
            before = head(database_url, tmp_path / "var")
            forged = page.context.request.post(
                order_url + "/actions/resolve",
                form={"step": "confirm", "outcome": "release", "key": "f" * 32},
            )
            assert forged.status == 403
            assert head(database_url, tmp_path / "var") == before

            # Resolve the dispute as a split, after checking the preview.
            page.goto(order_url)
            page.click("summary:has-text('Resolve the dispute')")
            page.select_option("select[name=outcome]", "split")
            page.fill("input[name=refund]", "300")
            page.click("button:has-text('Preview')")
            preview = page.inner_text("main")
            for words in (
                "Nothing is recorded yet",
                "DisputeResolved",
                "RefundRecorded",
                "300.00 MAD back to the client",
                "480.00 MAD to the freelancer",
                "120.00 MAD fee",
            ):
                assert words in preview, words
            shot(page, tmp_path, "preview")
            page.click("button:has-text('Confirm')")
            page.wait_for_selector("text=Recorded.")
            assert "completed · closed" in page.inner_text("main")
            shot(page, tmp_path, "recorded")
            page.goto(order_url)
            assert "dispute resolved: split" in page.inner_text("dl.facts")
            assert "Resolve the dispute" not in page.inner_text("main")
            page.click("text=Books")
            assert "refund to the client: dispute_split" in page.inner_text("main")

            # Opened a second time, the link signs nobody in.
            other = browser.new_context().new_page()
            other.goto(support_link)
            assert "used already" in other.inner_text("main")
            other.goto(f"{server.url}/console")
            other.wait_for_url(f"{server.url}/console/sign-in")

            # Signing out ends the session.
            page.click("button:has-text('Sign out')")
            page.wait_for_url(f"{server.url}/console/sign-in")

            auditor = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
            auditor.goto(link("auditor"))
            auditor.wait_for_url(f"{server.url}/console")
            auditor.click("text=Books")
            assert "every entry balances" in auditor.inner_text("main")
            assert "assets:gateway" in auditor.inner_text("main")
            auditor.goto(order_url)
            assert "OrderPlaced" in auditor.inner_text("ol.timeline")
            assert "Actions" not in auditor.inner_text("main")  # an auditor reads only
            auditor.click("text=Audit")
            auditor.click("button:has-text('Verify the chain now')")
            auditor.wait_for_selector("text=The chain holds")
            shot(auditor, tmp_path, "verified-phone")
            auditor.goto(f"{server.url}/console")
            assert "the chain holds" in auditor.inner_text("main")
            auditor.goto(f"{server.url}/console/audit")
            auditor.fill("input[name=moment]", "2099-01-01T00:00:00")
            auditor.click("button:has-text('Replay')")
            assert "the books balanced then" in auditor.inner_text("main")
            shot(auditor, tmp_path, "audit-phone")
            shot(auditor, tmp_path, "books-phone")
        finally:
            browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(order_shot, ARTIFACTS / "console-order.png")


def test_support_signs_in_through_the_identity_provider(serve, tmp_path: Path) -> None:
    """``ledger serve`` with no shared secret, taking the loopback provider's tokens: its
    API accepts the provider's access token, and support signs in to the console through
    the provider's own page (the code flow with PKCE) in Chromium."""
    executable = chromium()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running() as provider:
        provider.users["ana"] = ["ledger-support"]
        provider.redirect_uris.add(f"{base}/console/callback")
        server = serve(
            port,
            LEDGER_DATABASE_URL=f"sqlite:///{tmp_path}/var/ledger.db",
            LEDGER_PUBLIC_URL=base,
            LEDGER_AUTH_ISSUER=provider.url,
            LEDGER_AUTH_AUDIENCE=AUDIENCE,
            LEDGER_AUTH_ROLES_CLAIM=ROLES_CLAIM,
            LEDGER_AUTH_ROLE_MAP=ROLE_MAP,
            LEDGER_CONSOLE_CLIENT_ID=CLIENT_ID,
            LEDGER_CONSOLE_CLIENT_SECRET=CLIENT_SECRET,
        )
        bearer = {"Authorization": f"Bearer {provider.token('ana', ['ledger-support'])}"}
        assert httpx.get(f"{server.url}/v1/orders", headers=bearer).status_code == 200
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
            try:
                page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
                page.goto(f"{server.url}/console")
                page.wait_for_url(f"{server.url}/console/sign-in")
                assert "ledger console-link" not in page.inner_text("main")
                shot(page, tmp_path, "sign-in-provider")
                page.click("text=Sign in with your organisation's account")
                page.wait_for_selector("text=Sign in to the test provider")
                page.fill("input[name=username]", "ana")
                page.click("button:has-text('Sign in')")
                page.wait_for_url(f"{server.url}/console")
                assert "ana · support" in page.inner_text("header")
                assert "Orders now" in page.inner_text("main")
                signed_in = shot(page, tmp_path, "provider-signed-in")
                # Signing out ends the console's session (the provider's own is its business).
                page.click("button:has-text('Sign out')")
                page.wait_for_url(f"{server.url}/console/sign-in")
            finally:
                browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(signed_in, ARTIFACTS / "console-provider-sign-in.png")
