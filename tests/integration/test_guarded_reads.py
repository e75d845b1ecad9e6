"""Guarded reads: an order decides on a cached gig, and the insert checks it is the latest.

Two apps on one database stand for two processes: one keeps the gig in its cache (it
placed an order), the other revises or archives it. The next order of the first must be
decided on what the second wrote, though nothing told the first's cache: the insert
refuses the order decided on the old version and the command decides again.
"""

from __future__ import annotations

from dataclasses import replace
from uuid import UUID, uuid4

import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import CLIENT, FREELANCER, PACKAGES, PRICE, event_names, open_gig

from ledger.domain.gig import Gig
from ledger.errors import GigArchived
from ledger.service import LedgerApp
from ledger.service.reads import ReadCache
from ledger.settings import Settings

NEW_PRICE = PRICE + 1_000


def new_prices(app: LedgerApp, gig_id: UUID) -> None:
    packages = [replace(package, price=package.price + 1_000) for package in PACKAGES]
    app.revise_gig(FREELANCER, gig_id, packages=packages)


def cached(app: LedgerApp, gig_id: UUID) -> Gig:
    gig = app.read_cache.get(gig_id)
    assert isinstance(gig, Gig), "the gig is not in the app's cache"
    return gig


def test_an_order_after_another_process_revised_the_gig_takes_the_new_price(
    stored_app: LedgerApp, settings: Settings, clock: FakeClock
) -> None:
    gig_id = open_gig(stored_app)
    first = stored_app.place_order(CLIENT, gig_id, "standard").aggregate
    assert first.total == PRICE
    assert cached(stored_app, gig_id).version == 1
    with open_app(settings, clock) as other:
        new_prices(other, gig_id)
    # The cache still holds version 1: only the insert can tell the order it moved on.
    assert cached(stored_app, gig_id).version == 1
    second = stored_app.place_order(CLIENT, gig_id, "standard").aggregate
    assert second.total == NEW_PRICE
    assert cached(stored_app, gig_id).version == 2
    assert event_names(stored_app, second.id) == ["OrderPlaced"]


def test_an_order_after_another_process_archived_the_gig_is_refused(
    stored_app: LedgerApp, settings: Settings, clock: FakeClock
) -> None:
    gig_id = open_gig(stored_app)
    stored_app.place_order(CLIENT, gig_id, "standard")
    with open_app(settings, clock) as other:
        other.archive_gig(FREELANCER, gig_id)
    refused = uuid4()
    with pytest.raises(GigArchived):
        stored_app.place_order(CLIENT, gig_id, "standard", order_id=refused)
    assert refused not in stored_app.repository


def test_this_process_revising_the_gig_replaces_its_cached_copy(memory_app: LedgerApp) -> None:
    gig_id = open_gig(memory_app)
    memory_app.place_order(CLIENT, gig_id, "standard")
    new_prices(memory_app, gig_id)
    assert cached(memory_app, gig_id).version == 2  # replaced on commit, not on the next miss
    assert memory_app.place_order(CLIENT, gig_id, "standard").aggregate.total == NEW_PRICE


def test_the_cache_keeps_the_latest_version_and_at_most_its_size(memory_app: LedgerApp) -> None:
    gigs = [memory_app.get_gig(open_gig(memory_app)) for _ in range(3)]
    cache = ReadCache(size=2)
    for gig in gigs:
        cache.put(gig)
    assert cache.get(gigs[0].id) is None  # the least recently used went first
    assert cache.get(gigs[1].id) is gigs[1]
    newer = memory_app.get_gig(gigs[1].id)
    memory_app.archive_gig(FREELANCER, newer.id)
    newer = memory_app.get_gig(newer.id)
    cache.put(newer)
    cache.put(gigs[1])  # an older copy never replaces a newer one
    assert cache.get(newer.id) is newer
    cache.forget([newer.id])
    assert cache.get(newer.id) is None
