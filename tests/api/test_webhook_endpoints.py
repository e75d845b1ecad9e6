"""``/v1/webhook-endpoints``: admins register, read, change, rotate and delete endpoints, on
both backends; everyone else is refused; bad input is a 422 that stores nothing; in
production an endpoint must be https and reach only public addresses (checked at
registration, and by ``addresses.target`` at each connection)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.delivery.addresses import UnsafeAddress, check_url, is_public, target
from api.http.app import create_app
from ledger.domain.endpoint import WebhookEndpoint
from ledger.settings import load_settings
from tests.api.conftest import Api
from tests.conftest import FakeClock

ADMIN = ("admin-1", "admin")
URL = "http://127.0.0.1:9/hooks"


def register(api: Api, **body: Any) -> Any:
    return api.client.post(
        "/v1/webhook-endpoints",
        json={"url": URL, "events": ["order.paid"], **body},
        headers=api.as_(*ADMIN),
    )


def after(api: Api, response: Any) -> dict[str, str]:
    return {**api.as_(*ADMIN), **api.after(response)}


def test_an_admin_registers_reads_changes_rotates_and_deletes(api: Api) -> None:
    created = register(api, description="Search index")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["order.paid"]
    assert (body["enabled"], body["secretGeneration"], body["createdBy"]) == (True, 1, "admin-1")
    path = created.headers["Location"]
    shown = api.client.get(path, headers=after(api, created))
    assert shown.status_code == 200
    assert "secret" not in shown.json()  # shown once, at registration
    assert shown.json() == {k: v for k, v in body.items() if k != "secret"}
    listed = api.client.get("/v1/webhook-endpoints", headers=after(api, created)).json()
    assert [item["id"] for item in listed["data"]] == [body["id"]]

    changed = api.client.patch(
        path, json={"events": ["*"], "enabled": False}, headers=api.as_(*ADMIN)
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["events"], changed.json()["enabled"]) == (["*"], False)
    rotated = api.client.post(f"{path}/rotate-secret", headers=api.as_(*ADMIN))
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != body["secret"]
    assert rotated.json()["previousSecretUntil"] is not None

    deleted = api.client.delete(path, headers=api.as_(*ADMIN))
    assert deleted.status_code == 204
    assert api.client.get(path, headers=after(api, deleted)).status_code == 404
    assert api.client.delete(path, headers=api.as_(*ADMIN)).status_code == 404  # gone
    listed = api.client.get("/v1/webhook-endpoints", headers=after(api, deleted)).json()
    assert listed["data"] == []


def test_the_endpoint_is_event_sourced_with_who_did_what(api: Api) -> None:
    created = register(api)
    endpoint_id = created.json()["id"]
    api.client.patch(
        f"/v1/webhook-endpoints/{endpoint_id}", json={"url": URL + "/v2"}, headers=api.as_(*ADMIN)
    )
    api.client.delete(f"/v1/webhook-endpoints/{endpoint_id}", headers=api.as_("admin-2", "admin"))
    events = api.app.state.ledger.repository.event_store.get(UUID(endpoint_id))
    story = [(type(e).__name__, e.actor.id) for e in events]
    assert story == [
        ("EndpointRegistered", "admin-1"),
        ("EndpointChanged", "admin-1"),
        ("EndpointDeleted", "admin-2"),
    ]
    assert all("secret" not in vars(e) for e in events)  # no secret is ever in the log


@pytest.mark.parametrize("role", ["user", "support", "auditor"])
def test_everyone_but_admins_is_refused(api: Api, role: str) -> None:
    created = register(api)
    path = created.headers["Location"]
    headers = api.as_("someone", role)
    calls = [
        api.client.post(
            "/v1/webhook-endpoints", json={"url": URL, "events": ["*"]}, headers=headers
        ),
        api.client.get("/v1/webhook-endpoints", headers=headers),
        api.client.get(path, headers=headers),
        api.client.patch(path, json={"enabled": False}, headers=headers),
        api.client.delete(path, headers=headers),
        api.client.post(f"{path}/rotate-secret", headers=headers),
        api.client.get(f"{path}/deliveries", headers=headers),
    ]
    assert [call.status_code for call in calls] == [403] * len(calls)
    assert api.client.get("/v1/webhook-endpoints", headers=api.as_(*ADMIN)).status_code == 200
    assert api.client.get("/v1/webhook-endpoints").status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": []}, "events"),
        ({"events": ["order.shipped"]}, "events"),
        ({"events": ["*", "order.paid"]}, "events"),
        ({"events": "order.paid"}, "events"),
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "http://user:pw@example.com/hook"}, "url"),
        ({"url": "http://example.com/hook#x"}, "url"),
        ({"url": "http://example.com:99999/hook"}, "url"),
        ({"url": "x" * 3000}, "url"),
        ({"url": "https://example.com/a\u0000b"}, "url"),
        ({"url": "https://example.com/\u0001"}, "url"),
        ({"url": "https://example.com/caf\u00e9"}, "url"),
        ({"url": "https://example.com/a b"}, "url"),
        ({"description": "two\nlines"}, "description"),
        ({"description": "d" * 501}, "description"),
        ({"secret": "mine"}, "secret"),
    ],
)
def test_bad_input_is_422_and_stores_nothing(api: Api, body: dict[str, Any], field: str) -> None:
    before = api.app.state.ledger.recorder.max_notification_id()
    refused = register(api, **body)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert field in str(refused.json()["errors"])
    assert api.app.state.ledger.recorder.max_notification_id() == before


def test_an_unknown_or_malformed_endpoint_is_404(api: Api) -> None:
    for path in (
        "/v1/webhook-endpoints/4d9f7a52-5c4b-4c51-9e59-000000000000",
        "/v1/webhook-endpoints/x",
    ):
        assert api.client.get(path, headers=api.as_(*ADMIN)).status_code == 404
        assert (
            api.client.patch(path, json={"enabled": True}, headers=api.as_(*ADMIN)).status_code
            == 404
        )
    retry = "/v1/webhook-deliveries/4d9f7a52-5c4b-4c51-9e59-000000000000/retry"
    assert api.client.post(retry, headers=api.as_(*ADMIN)).status_code == 404


def test_the_metrics_show_the_deliveries(api: Api, clock: FakeClock) -> None:
    api.app.state.dispatcher.stop()  # nothing is sent: the delivery stays queued
    register(api, events=["order.placed"])
    placed = api.client.post(
        "/v1/orders", json={"gigId": api.gig()["id"], "packageId": "basic"},
        headers=api.as_("client-1"),
    )  # fmt: skip
    api.app.state.runner.wait_for(int(placed.headers["X-Ledger-Position"]), 10)
    clock.advance(seconds=90)
    text = api.client.get("/metrics").text
    assert "ledger_webhook_queue_depth 1.0" in text
    assert 'ledger_webhook_deliveries{status="pending"} 1.0' in text
    assert "ledger_webhook_oldest_undelivered_seconds 90.0" in text
    for name in (
        "ledger_webhook_deliveries{",
        "ledger_webhook_attempts_total{",
        "ledger_webhook_queue_depth",
        "ledger_webhook_oldest_undelivered_seconds",
    ):
        assert name in text, name


def production(tmp_path: Path, database_url: str) -> Any:
    return load_settings(
        LEDGER_ENV="production",
        LEDGER_DATABASE_URL=database_url,
        LEDGER_VAR_DIR=str(tmp_path / "var"),
        LEDGER_AUTH_SECRET="s" * 40,
        LEDGER_WEBHOOK_KEY="w" * 40,
        LEDGER_GATEWAY="youcanpay",
        YOUCANPAY_PRIVATE_KEY="pri_sandbox_0123456789abcdef",
        YOUCANPAY_PUBLIC_KEY="pub_sandbox_0123456789abcdef",
        _env_file=None,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/ledger",  # not https
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://no-such-host.invalid/hook",
    ],
)
def test_in_production_an_endpoint_must_be_https_and_public(
    tmp_path: Path, database_url: str, clock: FakeClock, url: str
) -> None:
    app = create_app(production(tmp_path, database_url), clock=clock)
    with TestClient(app) as client:
        token = app.state.auth.issue("admin-1", ["admin"])
        refused = client.post(
            "/v1/webhook-endpoints",
            json={"url": url, "events": ["*"]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["field"] == "url"


def test_in_production_a_public_https_endpoint_is_registered(
    tmp_path: Path, database_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, **_: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))
        ],
    )
    app = create_app(production(tmp_path, database_url), clock=clock)
    with TestClient(app) as client:
        token = app.state.auth.issue("admin-1", ["admin"])
        accepted = client.post(
            "/v1/webhook-endpoints",
            json={"url": "https://hooks.example.com/ledger", "events": ["*"]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert accepted.status_code == 201, accepted.text


def test_in_production_the_address_is_checked_again_and_pinned_at_each_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = iter(["93.184.216.34", "127.0.0.1"])  # a public answer, then a rebinding one

    def resolve(host: str, port: int, **_: Any) -> list[Any]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert check_url("https://hooks.example.com/ledger", production=True)
    with pytest.raises(UnsafeAddress, match="not a public address"):
        target("https://hooks.example.com/ledger", production=True)


def test_a_connection_goes_to_the_checked_address_with_the_hosts_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, **_: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))
        ],
    )
    pinned = target("https://hooks.example.com:8443/a?b=1", production=True)
    assert (pinned.url, pinned.host, pinned.pinned) == (
        "https://93.184.216.34:8443/a?b=1", "hooks.example.com", True,
    )  # fmt: skip
    assert target(URL, production=False).url == URL  # development: as given


def test_what_counts_as_public() -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address("93.184.216.34"))
    assert is_public(ipaddress.ip_address("2606:2800:220:1::1"))
    for private in ("127.0.0.1", "10.0.0.1", "172.16.0.1", "169.254.169.254", "224.0.0.1",
                    "::1", "fe80::1", "::ffff:10.0.0.1", "100.64.0.1", "240.0.0.1",
                    "fec0::1", "2002:a00:1::1", "64:ff9b::a00:1",
                    "2001:0:4136:e378:8000:63bf:3fff:fdd2"):  # fmt: skip
        assert not is_public(ipaddress.ip_address(private)), private


def test_without_a_webhook_key_in_production_nothing_can_be_registered(
    tmp_path: Path, database_url: str, clock: FakeClock
) -> None:
    settings = production(tmp_path, database_url).model_copy(update={"webhook_key": None})
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        token = app.state.auth.issue("admin-1", ["admin"])
        refused = client.post(
            "/v1/webhook-endpoints",
            json={"url": "https://hooks.example.com/x", "events": ["*"]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert refused.status_code == 409 and refused.json()["code"] == "webhooks_not_configured"


def test_the_domain_refuses_a_second_deletion_and_orders_the_subscription() -> None:
    from datetime import UTC, datetime

    from ledger.actors import Actor
    from ledger.errors import InvalidTransition

    actor, now = Actor("admin-1", "admin"), datetime(2026, 1, 1, tzinfo=UTC)
    endpoint = WebhookEndpoint.register(
        UUID(int=1), URL, ["order.paid", "order.placed", "order.paid"], None, actor, now
    )
    assert endpoint.events == ["order.paid", "order.placed"]
    endpoint.change(actor, now, events=["order.placed", "order.paid"])
    assert endpoint.version == 1  # the same subscription: nothing recorded
    endpoint.delete(actor, now)
    with pytest.raises(InvalidTransition):
        endpoint.delete(actor, now)
