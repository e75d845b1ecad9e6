"""``ReadModels`` queries on both stores: the filters of each list, newest first by the
position of each item's first event, ``limit`` and ``startingAfter`` paging (a cursor from
another list is refused), validation of bad arguments, ``None`` for unknown ids, gig ratings,
and (PostgreSQL) that the list queries are answered from an index."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.projection_helpers import GATEWAY, PACKAGES, SUPPORT, open_runner

from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.domain.values import CancelReason, Package
from ledger.errors import InvalidCursor, ValidationFailed
from ledger.service import LedgerApp
from ledger.settings import load_settings
from projections.db import Database, Params, Row
from projections.paging import Page
from projections.read_models import ReadModels
from projections.runner import ProjectionRunner

ANA, BEN, CARA, DAN, EVE = (Caller(name) for name in ("ana", "ben", "cara", "dan", "eve"))
PRICE = PACKAGES[0].price  # every order below buys the "basic" package

# The orders, in the order they are placed: key, client, gig. (Ben is a client on Ana's gigs.)
ORDER_PLAN = (
    ("o1", CARA, "ana1"),
    ("o2", DAN, "ben1"),
    ("o3", BEN, "ana2"),
    ("o4", CARA, "ben1"),
    ("o5", DAN, "ana1"),
    ("o6", CARA, "ana1"),
    ("o7", DAN, "ana2"),
    ("o8", BEN, "ana1"),
)
# Payments are opened in another order than the orders were placed: o5, o1, o4, o7, o3, o6.
# Final states — orders: o1 completed (rated 4), o2 pending, o3 processing, o4 cancelled
# (paid, then refunded), o5 cancelled (payment failed), o6 completed (rated 5), o7 pending
# (payment pending), o8 pending. Payments: p5 failed, p1/p4/p3/p6 success, p7 pending.

ORDER_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({}, ["o8", "o7", "o6", "o5", "o4", "o3", "o2", "o1"]),
    ({"status": "pending"}, ["o8", "o7", "o2"]),
    ({"status": "processing"}, ["o3"]),
    ({"status": "completed"}, ["o6", "o1"]),
    ({"status": "cancelled"}, ["o5", "o4"]),
    ({"client_id": "cara"}, ["o6", "o4", "o1"]),
    ({"client_id": "ben"}, ["o8", "o3"]),
    ({"client_id": "ana"}, []),
    ({"freelancer_id": "ana"}, ["o8", "o7", "o6", "o5", "o3", "o1"]),
    ({"freelancer_id": "ben"}, ["o4", "o2"]),
    ({"freelancer_id": "eve"}, []),
    ({"party_id": "ben"}, ["o8", "o4", "o3", "o2"]),
    ({"party_id": "dan"}, ["o7", "o5", "o2"]),
    ({"party_id": "nobody"}, []),
    ({"status": "pending", "client_id": "dan"}, ["o7", "o2"]),
    ({"status": "cancelled", "freelancer_id": "ana"}, ["o5"]),
    ({"client_id": "dan", "freelancer_id": "ben"}, ["o2"]),
    ({"party_id": "ben", "freelancer_id": "ana"}, ["o8", "o3"]),
    ({"party_id": "ben", "status": "pending"}, ["o8", "o2"]),
    ({"party_id": "ben", "client_id": "cara"}, ["o4"]),
    ({"status": "completed", "client_id": "dan"}, []),
]
PAYMENT_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({}, ["p6", "p3", "p7", "p4", "p1", "p5"]),
    ({"status": "pending"}, ["p7"]),
    ({"status": "success"}, ["p6", "p3", "p4", "p1"]),
    ({"status": "failed"}, ["p5"]),
    ({"order_id": "o1"}, ["p1"]),
    ({"order_id": "o2"}, []),  # an order without a payment
    ({"transaction_id": "tx-3"}, ["p3"]),
    ({"transaction_id": "tx-5"}, ["p5"]),  # a declined payment keeps the gateway's id
    ({"transaction_id": "tx-none"}, []),
    ({"party_id": "ben"}, ["p3", "p4"]),  # client of o3, freelancer of o4
    ({"party_id": "ana"}, ["p6", "p3", "p7", "p1", "p5"]),
    ({"party_id": "dan"}, ["p7", "p5"]),
    ({"status": "success", "party_id": "cara"}, ["p6", "p4", "p1"]),
    ({"status": "success", "order_id": "o5"}, []),
    ({"transaction_id": "tx-1", "party_id": "cara"}, ["p1"]),
    ({"transaction_id": "tx-1", "party_id": "dan"}, []),
]
GIG_CASES: list[tuple[dict[str, str], list[str]]] = [
    ({}, ["eve1", "ana2", "ben1", "ana1"]),
    ({"freelancer_id": "ana"}, ["ana2", "ana1"]),
    ({"freelancer_id": "cara"}, []),
]
CASES = {"orders": ORDER_CASES, "payments": PAYMENT_CASES, "gigs": GIG_CASES}


@dataclass
class World:
    """What ``build_world`` made: each key (``o1``, ``p1``, ``ana1`` …) → the item's id, and
    → the position of the item's first event."""

    ids: dict[str, str] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, item_id: UUID, position: int) -> UUID:
        self.ids[key], self.positions[key] = str(item_id), position
        return item_id

    def key_of(self, item_id: str) -> str:
        return {v: k for k, v in self.ids.items()}[item_id]

    def resolve(self, filters: dict[str, str]) -> dict[str, str]:
        """Filters with ``order_id`` given as an order key (``o1``) turned into its id."""
        return {n: self.ids[v] if n == "order_id" else v for n, v in filters.items()}


def build_world(app: LedgerApp, clock: FakeClock) -> World:
    world = World()
    owners = {"ana1": ANA, "ben1": BEN, "ana2": ANA, "eve1": EVE}
    for key, owner in owners.items():
        done = app.create_gig(owner, f"Gig {key}", PACKAGES)
        world.add(key, done.aggregate.id, done.position)
        clock.advance(minutes=1)
    orders: dict[str, UUID] = {}
    for key, client, gig in ORDER_PLAN:
        clock.advance(minutes=-5)  # createdAt runs backwards: only positions give the order
        done = app.place_order(client, UUID(world.ids[gig]), "basic")
        orders[key] = world.add(key, done.aggregate.id, done.position)
    clients = {key: client for key, client, _ in ORDER_PLAN}
    clock.advance(hours=2)

    def pay(key: str) -> UUID:
        clock.advance(minutes=1)
        done = app.create_payment(clients[key], orders[key], "credit_card")
        return world.add("p" + key[1:], done.aggregate.id, done.position)

    def confirm(key: str) -> None:
        app.confirm_payment(GATEWAY, payment_id_for(orders[key]), f"tx-{key[1:]}", PRICE, "MAD")

    def complete(key: str, freelancer: Caller, rating: int) -> None:
        app.deliver_order(freelancer, orders[key], "Here it is")
        app.complete_order(clients[key], orders[key])
        app.review_order(clients[key], orders[key], rating, "Thanks")

    app.fail_payment(GATEWAY, pay("o5"), "card declined", "tx-5")
    pay("o1")
    pay("o4")
    confirm("o4")
    confirm("o1")
    app.accept_order(ANA, orders["o1"])
    pay("o7")
    app.cancel_order(SUPPORT, orders["o4"], CancelReason.POLICY_VIOLATION, "spam")
    pay("o3")
    confirm("o3")
    complete("o1", ANA, 4)  # the oldest order changes after newer ones: it must stay last
    pay("o6")
    confirm("o6")
    complete("o6", ANA, 5)
    app.revise_gig(BEN, UUID(world.ids["ben1"]), packages=[Package("premium", 90_000, 9, 3, "All")])
    for kind in "op":  # the expected lists below rely on this order of first events
        made = [k for k in world.positions if k[0] == kind]
        placed = [f"{kind}{i}" for i in (range(1, 9) if kind == "o" else (5, 1, 4, 7, 3, 6))]
        assert sorted(made, key=world.positions.__getitem__) == placed
    return world


@pytest.fixture
def runner(stored_app: LedgerApp) -> Iterator[ProjectionRunner]:
    with open_runner(stored_app, poll_interval=3600) as runner:
        yield runner


@pytest.fixture
def models(runner: ProjectionRunner) -> ReadModels:
    return ReadModels(runner.db)


@pytest.fixture
def world(stored_app: LedgerApp, runner: ProjectionRunner, clock: FakeClock) -> World:
    world = build_world(stored_app, clock)
    runner.run_once()
    return world


def query(models: ReadModels, name: str, **arguments: Any) -> Page:
    return getattr(models, name).page(**arguments)  # type: ignore[no-any-return]


def keys(world: World, page: Page) -> list[str]:
    return [world.key_of(item["id"]) for item in page.data]


def walk(
    models: ReadModels, name: str, limit: int, filters: dict[str, str]
) -> list[tuple[list[str], bool]]:
    """Every page of a list, following ``startingAfter`` from each page's last item."""
    pages: list[tuple[list[str], bool]] = []
    cursor = None
    for _ in range(50):
        page = query(models, name, limit=limit, starting_after=cursor, **filters)
        ids = [item["id"] for item in page.data]
        pages.append((ids, page.has_more))
        if not page.has_more:
            return pages
        assert ids, "a page with more to come must not be empty"
        cursor = ids[-1]
    raise AssertionError("paging never ended")


# -- filters and order ----------------------------------------------------------------------


def test_filters_and_combinations_newest_first(models: ReadModels, world: World) -> None:
    for name, cases in CASES.items():
        for filters, expected in cases:
            page = query(models, name, limit=100, **world.resolve(filters))
            assert (keys(world, page), page.has_more) == (expected, False), (name, filters)


def test_list_items_are_the_single_item_views(models: ReadModels, world: World) -> None:
    orders, payments, gigs = models.orders.page(), models.payments.page(), models.gigs.page()
    assert orders.data == [models.orders.get(item["id"]) for item in orders.data]
    assert payments.data == [models.payments.get(item["id"]) for item in payments.data]
    assert gigs.data == [models.gigs.get(item["id"]) for item in gigs.data]
    o4 = orders.data[keys(world, orders).index("o4")]
    assert (o4["status"], o4["stage"], o4["userId"], o4["freelancerId"]) == (
        "cancelled", "closed", "cara", "ben")  # fmt: skip
    p4 = payments.data[keys(world, payments).index("p4")]
    assert (p4["status"], p4["transactionId"], p4["orderId"]) == (
        "success", "tx-4", world.ids["o4"])  # fmt: skip
    assert p4["refundedAmount"] == p4["amount"] == Decimal(PRICE) / 100


def test_page_as_api(models: ReadModels, world: World) -> None:
    first = models.orders.page(limit=2)
    assert first.as_api() == {"data": first.data, "hasMore": True}
    assert keys(world, first) == ["o8", "o7"]
    assert models.orders.page(client_id="ana").as_api() == {"data": [], "hasMore": False}
    whole = models.gigs.page(limit=4).as_api()
    assert list(whole) == ["data", "hasMore"] and whole["hasMore"] is False
    assert len(whole["data"]) == 4
    assert Page([{"id": "x"}], True).as_api() == {"data": [{"id": "x"}], "hasMore": True}


def test_empty_lists_then_default_limit_of_twenty(
    stored_app: LedgerApp, runner: ProjectionRunner
) -> None:
    models = ReadModels(runner.db)
    for name in CASES:
        page = query(models, name)
        assert (page.data, page.has_more) == ([], False), name
    gig = stored_app.create_gig(ANA, "Logo", PACKAGES).aggregate.id
    placed = [stored_app.place_order(CARA, gig, "basic").aggregate.id for _ in range(21)]
    runner.run_once()
    page = models.orders.page()
    assert [item["id"] for item in page.data] == [str(i) for i in reversed(placed[1:])]
    assert page.has_more is True


# -- paging ---------------------------------------------------------------------------------

WALKS: dict[str, list[tuple[dict[str, str], int]]] = {
    "orders": [
        ({}, 1),
        ({}, 3),
        ({}, 4),  # the last page is full: hasMore must still end false, with no empty page
        ({}, 8),
        ({}, 100),
        ({"party_id": "ben"}, 3),
        ({"freelancer_id": "ana"}, 2),
        ({"status": "pending", "client_id": "dan"}, 1),
    ],
    "payments": [
        ({}, 1),
        ({}, 4),
        ({}, 6),
        ({"status": "success"}, 3),
        ({"party_id": "ana"}, 2),
    ],
    "gigs": [({}, 1), ({}, 3), ({"freelancer_id": "ana"}, 1)],
}


def test_paging_walks_each_list_exactly_once(models: ReadModels, world: World) -> None:
    for name, walks in WALKS.items():
        for filters, limit in walks:
            expected = next(e for f, e in CASES[name] if f == filters)
            pages = walk(models, name, limit, world.resolve(filters))
            walked = [world.key_of(i) for ids, _ in pages for i in ids]
            sizes = [len(ids) for ids, _ in pages]
            more = [has_more for _, has_more in pages]
            full, rest = divmod(len(expected), limit)
            case = (name, filters, limit)
            assert walked == expected, case
            assert sizes == [limit] * full + ([rest] if rest else []), case
            assert more == [True] * (len(pages) - 1) + [False], case


INVALID_CURSORS: dict[str, list[tuple[dict[str, str], str]]] = {
    "orders": [
        ({"client_id": "cara"}, "o2"),  # Dan's order
        ({"freelancer_id": "ben"}, "o1"),
        ({"party_id": "ben"}, "o1"),
        ({"status": "pending"}, "o3"),
        ({"status": "pending", "client_id": "dan"}, "o8"),  # pending, but Ben's
        ({}, "p1"),  # a payment's id
        ({}, "ana1"),  # a gig's id
        ({}, "unknown"),
        ({}, ""),
    ],
    "payments": [
        ({"status": "pending"}, "p1"),
        ({"party_id": "dan"}, "p3"),
        ({"transaction_id": "tx-3"}, "p6"),
        ({"order_id": "o1"}, "p3"),
        ({}, "o1"),  # the order's id, not its payment's
        ({}, "unknown"),
    ],
    "gigs": [({"freelancer_id": "ana"}, "ben1"), ({}, "o1"), ({}, "unknown")],
}


def test_cursor_outside_the_filtered_list_is_refused(models: ReadModels, world: World) -> None:
    for name, cases in INVALID_CURSORS.items():
        for filters, cursor in cases:
            cursor_id = str(uuid4()) if cursor == "unknown" else world.ids.get(cursor, cursor)
            with pytest.raises(InvalidCursor) as raised:
                query(models, name, starting_after=cursor_id, **world.resolve(filters))
            error = (raised.value.code, raised.value.field)
            assert error == ("invalid_cursor", "startingAfter"), (name, filters, cursor)


def test_cursor_inside_the_filtered_list_continues_after_it(
    models: ReadModels, world: World
) -> None:
    after_o6 = models.orders.page(client_id="cara", starting_after=world.ids["o6"], limit=1)
    assert (keys(world, after_o6), after_o6.has_more) == (["o4"], True)
    after_p4 = models.payments.page(status="success", starting_after=world.ids["p4"])
    assert (keys(world, after_p4), after_p4.has_more) == (["p1"], False)
    after_ana2 = models.gigs.page(freelancer_id="ana", starting_after=world.ids["ana2"])
    assert (keys(world, after_ana2), after_ana2.has_more) == (["ana1"], False)
    for name, cases in CASES.items():  # after the oldest item: an empty last page
        page = query(models, name, starting_after=world.ids[cases[0][1][-1]])
        assert (page.data, page.has_more) == ([], False), name


# -- validation -----------------------------------------------------------------------------

BAD_STATUSES = [("orders", "shipped"), ("orders", "success"), ("payments", "processing"),
                ("payments", "refunded")]  # fmt: skip


def test_bad_limit_or_status_is_refused(models: ReadModels) -> None:
    for name in CASES:
        for limit in (0, -1, 101, True, False):
            with pytest.raises(ValidationFailed) as raised:
                query(models, name, limit=limit)
            error = (type(raised.value), raised.value.field)
            assert error == (ValidationFailed, "limit"), (name, limit)
        for limit in (1, 100):
            assert query(models, name, limit=limit).data == [], (name, limit)
    for name, status in BAD_STATUSES:
        with pytest.raises(ValidationFailed) as raised:
            query(models, name, status=status)
        assert (type(raised.value), raised.value.field) == (ValidationFailed, "status"), status


# -- single items ---------------------------------------------------------------------------


def test_unknown_ids_give_none(models: ReadModels, world: World) -> None:
    unknown, ids = str(uuid4()), world.ids
    assert models.orders.get(ids["o1"]) is not None and models.payments.get(ids["p1"]) is not None
    assert models.gigs.get(ids["ana1"]) is not None
    assert models.payments.of_order(ids["o1"]) == models.payments.get(ids["p1"])
    assert models.orders.get(unknown) is None and models.orders.get(ids["p1"]) is None
    assert models.payments.get(unknown) is None and models.payments.get(ids["o1"]) is None
    assert models.gigs.get(unknown) is None and models.gigs.get(ids["o1"]) is None
    assert models.payments.of_order(unknown) is None
    assert models.payments.of_order(ids["o2"]) is None  # an order without a payment
    assert models.payments.of_order(ids["p1"]) is None
    # A known order always has its OrderPlaced entry: an unknown one has no history at all.
    events = [entry["event"] for entry in models.orders.history(ids["o3"])]
    assert events == ["OrderPlaced", "OrderPaymentConfirmed"]
    assert models.orders.history(unknown) == [] and models.orders.history(ids["p3"]) == []


# -- ratings --------------------------------------------------------------------------------


def test_gig_rating_from_reviews_across_runs(
    stored_app: LedgerApp, runner: ProjectionRunner, models: ReadModels, world: World
) -> None:
    ana1, ana2 = (models.gigs.get(world.ids[key]) for key in ("ana1", "ana2"))
    assert ana1 is not None and ana2 is not None
    assert ana1["rating"] == {"average": 4.5, "count": 2}  # 4 and 5, in the gig's own batch
    assert ana2["rating"] == {"average": None, "count": 0}
    order = stored_app.place_order(DAN, UUID(world.ids["ana1"]), "basic").aggregate.id
    stored_app.create_payment(DAN, order, "cashplus")
    stored_app.confirm_payment(GATEWAY, payment_id_for(order), "tx-9", PRICE, "MAD")
    stored_app.deliver_order(ANA, order, "Done")
    stored_app.complete_order(DAN, order)
    stored_app.review_order(DAN, order, 4)
    runner.run_once()
    view = models.gigs.get(world.ids["ana1"])
    assert view is not None and view["rating"] == {"average": 4.33, "count": 3}
    assert models.gigs.page(freelancer_id="ana").data[1] == view


# -- indexes (PostgreSQL) -------------------------------------------------------------------


class Recorder:
    """A ``Database`` stand-in that remembers every statement the queries send."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.statements: list[tuple[str, dict[str, Any]]] = []

    def read(self, sql: str, params: Params | None = None) -> list[Row]:
        self.statements.append((sql, dict(params or {})))
        return self.db.read(sql, params)


FILL = {
    "orders": """INSERT INTO orders (id, position, user_id, gig_id, package_id, freelancer_id,
        status, stage, total_amount, currency, package, revisions_used, requirements, due_at,
        created_at, updated_at, version, state)
        SELECT 'order-' || g, g, 'client-' || mod(g, 50), 'gig-' || mod(g, 40), 'basic',
            'freelancer-' || mod(g, 40),
            (ARRAY['pending', 'processing', 'completed', 'cancelled'])[1 + mod(g, 4)],
            'closed', 10000, 'MAD', '{"package_id": "basic", "price": 10000,
            "delivery_days": 3, "revisions": 1, "description": "A logo"}', 0, NULL, NULL,
            '2026-01-05T09:00:00Z', '2026-01-05T09:00:00Z', 1, repeat('x', 400)
        FROM generate_series(1, 4000) AS g""",
    "payments": """INSERT INTO payments (id, position, order_id, client_id, freelancer_id,
        status, amount, currency, payment_method, transaction_id, failure_reason,
        refunded_amount, refunds, created_at, updated_at, version, state)
        SELECT 'payment-' || g, g, 'order-' || g, 'client-' || mod(g, 50),
            'freelancer-' || mod(g, 40), (ARRAY['pending', 'success', 'failed'])[1 + mod(g, 3)],
            10000, 'MAD', 'credit_card', 'tx-' || g, NULL, 0, '[]', '2026-01-05T09:00:00Z',
            '2026-01-05T09:00:00Z', 2, repeat('x', 400)
        FROM generate_series(1, 4000) AS g""",
}
INDEXED = {
    "orders": [
        {},
        {"status": "pending"},
        {"client_id": "client-7"},
        {"freelancer_id": "freelancer-3"},
        {"party_id": "client-7"},
        {"status": "completed", "client_id": "client-6"},
    ],
    "payments": [
        {},
        {"status": "failed"},
        {"order_id": "order-77"},
        {"transaction_id": "tx-99"},
        {"party_id": "client-7"},
    ],
}


@pytest.mark.postgres
def test_list_queries_use_an_index_on_postgres(
    postgres_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    """With a few thousand analysed rows, every statement of the list queries (first page,
    cursor look-up, next page) is planned on an index; without one it would be a Seq Scan."""
    settings = load_settings(
        LEDGER_DATABASE_URL=postgres_url, LEDGER_VAR_DIR=str(tmp_path), _env_file=None
    )
    with open_app(settings, clock) as app, open_runner(app) as runner:
        with runner.db.transaction() as txn:
            for table, fill in FILL.items():
                txn.execute(fill)
                txn.execute(f"ANALYZE {table}")
        recorder = Recorder(runner.db)
        models = ReadModels(recorder)  # type: ignore[arg-type]
        for table, cases in INDEXED.items():
            for filters in cases:
                first = query(models, table, limit=5, **filters)
                assert first.data, f"the fill must match {filters}"
                query(models, table, limit=5, starting_after=first.data[-1]["id"], **filters)
        assert len(recorder.statements) == 3 * sum(map(len, INDEXED.values()))
        for sql, params in recorder.statements:
            table = re.findall(r"FROM (\w+)", sql)[0]
            used = re.compile(
                rf"(Index Scan|Index Only Scan)( Backward)? using \w+ on {table}\b"
                rf"|Bitmap Index Scan on {table}_"
            )
            rows = runner.db.read(f"EXPLAIN {sql}", params)
            plan = "\n".join(row["QUERY PLAN"] for row in rows)
            assert "Seq Scan" not in plan and used.search(plan), f"{sql}\n{plan}"
