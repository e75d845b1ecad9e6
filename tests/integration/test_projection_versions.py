"""A read model whose code changed its tables' shape is rebuilt on start-up, alone.

Simulates a store built by an older release: the payments table without its ``checkout``
column, and recorded as version 1 (or, older still, with no version recorded at all).
"""

from __future__ import annotations

import random

import pytest
from tests.integration.projection_helpers import (
    Placed,
    drive_orders,
    dump,
    head,
    open_gig,
    open_runner,
    tracked,
)

from ledger.actors import Caller
from ledger.service import LedgerApp

OLD_PAYMENTS = """CREATE TABLE payments (id TEXT PRIMARY KEY, position BIGINT NOT NULL,
    order_id TEXT NOT NULL, status TEXT NOT NULL)"""


def some_orders(app: LedgerApp) -> list[Placed]:
    gig = open_gig(app, Caller("freelancer-1"))
    return drive_orders(app, random.Random(7), 12, [gig], [Caller("client-1")])


@pytest.mark.parametrize("recorded", [True, False], ids=["version 1 recorded", "none recorded"])
def test_a_read_model_of_an_older_shape_is_rebuilt_from_the_log(
    stored_app: LedgerApp, recorded: bool
) -> None:
    some_orders(stored_app)
    with open_runner(stored_app) as runner:
        runner.run_once()
        expected = dump(runner)
        with runner.db.transaction() as txn:  # what an older release left behind
            txn.execute("DROP TABLE payments")
            txn.execute(OLD_PAYMENTS)
            txn.execute("INSERT INTO payments VALUES ('stale', 1, 'o', 'pending')")
            if recorded:
                txn.execute("UPDATE projection_versions SET version = 1 WHERE name = 'payments'")
            else:
                txn.execute("DELETE FROM projection_versions")

    with open_runner(stored_app) as upgraded:
        projections = upgraded.projections
        stale = {"payments"} if recorded else {n for n, p in projections.items() if p.version > 1}
        assert "payments" in stale
        assert tracked(upgraded) == {
            name: 0 if name in stale else head(stored_app) for name in projections
        }, "the stale read models start again, the others are kept"
        upgraded.run_once()
        assert dump(upgraded) == expected
        versions = upgraded.db.read("SELECT name, version FROM projection_versions")
        assert {row["name"]: row["version"] for row in versions} == {
            name: projection.version for name, projection in upgraded.projections.items()
        }


def test_an_up_to_date_read_model_is_kept(stored_app: LedgerApp) -> None:
    some_orders(stored_app)
    with open_runner(stored_app) as runner:
        runner.run_once()
        before = dump(runner)
    with open_runner(stored_app) as again:
        assert tracked(again) == dict.fromkeys(again.projections, head(stored_app))
        assert dump(again) == before
