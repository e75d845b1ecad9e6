"""Group commit: concurrent commands share transactions, and a batch never fails an innocent one.

The writer is made deterministic rather than waited for. ``Probe`` counts the commands handed
to an app's writer and can hold the writer inside its next transaction: a first command is
recorded and held there, the commands under test are queued one after the other (each one
counted before the next is started, so their order in the queue is known), and the writer
is released only then. With ``LEDGER_BATCH_WAIT_MS=0`` it gathers exactly what is queued,
so the sizes of the transactions it writes (``writer.batch_sizes``) are known in advance.
``Fault`` makes the store refuse a transaction from inside it, after its events (and
receipts) were inserted, so that only the rollback keeps them out. Nothing here sleeps.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from queue import SimpleQueue
from threading import Condition, Event, current_thread
from typing import Any
from uuid import UUID, uuid4

import eventsourcing.utils
import pytest
from eventsourcing.domain import EventSourcingError
from eventsourcing.persistence import (
    DataError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import (
    CLIENT,
    FREELANCER,
    GATEWAY,
    PACKAGES,
    PRICE,
    event_names,
    max_position,
    open_gig,
    paid_order,
    placed_order,
    race,
    stored_events,
)

from ledger.bootstrap import build_ledger
from ledger.domain.payment import payment_id_for
from ledger.errors import Conflict, InvalidTransition
from ledger.receipts import Receipt, ReceiptEntry, keyed
from ledger.service import Done, LedgerApp
from ledger.service.commit import Batching, Pending
from ledger.settings import Settings, load_settings

TIMEOUT = 30
"""Seconds any wait may last before the test fails instead of hanging."""
PLACED = ["OrderPlaced"]
PAID = ["OrderPlaced", "OrderPaymentConfirmed"]

Command = Callable[[], Done[Any]]


# -- instruments ------------------------------------------------------------------------------


class _CountingQueue(SimpleQueue[Pending | None]):
    """The writer's queue, telling the probe of each command (and the stop sign) put in."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self._probe = probe

    def put(self, item: Pending | None, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        self._probe.was_put(item)


@dataclass(eq=False)
class Hold:
    """The writer held inside the transaction of ``batch`` until ``released``."""

    reached: Event = field(default_factory=Event)
    released: Event = field(default_factory=Event)
    batch: list[Pending] = field(default_factory=list)


class Probe:
    """Counts what is handed to ``app``'s writer, and holds the writer on demand.

    Installed before the app's first command (the writer thread reads the queue it finds).
    """

    made: list[Probe] = []  # noqa: RUF012
    """The probes of the running test (``pool`` abandons what they left unanswered)."""

    def __init__(self, app: LedgerApp) -> None:
        self.app = app
        self.queued = 0
        self.handed: list[Pending] = []
        self.stop_sign = Event()
        self._changed = Condition()
        self._armed: deque[Hold] = deque()
        self._holds: list[Hold] = []
        app.writer._fed.queue = _CountingQueue(self)
        insert = app.writer._insert

        def held_insert(batch: Any) -> Any:
            if self._armed:
                hold = self._armed.popleft()
                hold.batch = list(batch)
                hold.reached.set()
                assert hold.released.wait(TIMEOUT), "the writer was never released"
            return insert(batch)

        app.writer._insert = held_insert
        Probe.made.append(self)

    def was_put(self, item: Pending | None) -> None:
        with self._changed:
            if item is None:
                self.stop_sign.set()
            else:
                self.queued += 1
                self.handed.append(item)
            self._changed.notify_all()

    def arm(self) -> Hold:
        """Hold the writer in the next transaction it starts (after those already armed)."""
        hold = Hold()
        self._holds.append(hold)
        self._armed.append(hold)
        return hold

    def abandon(self) -> None:
        """Release the writer, and fail the commands it never answered, so that a test
        that went wrong fails rather than leaves its callers waiting forever."""
        self._armed.clear()
        for hold in self._holds:
            hold.released.set()
        for pending in self.handed:
            with suppress(InvalidStateError):  # answered meanwhile
                pending.outcome.set_exception(RuntimeError("the writer never answered"))

    @contextmanager
    def held(self, pool: ThreadPoolExecutor, first: Command) -> Iterator[Future[Done[Any]]]:
        """Run ``first`` and hold the writer inside its transaction until the block ends:
        commands queued meanwhile are all gathered into the next one."""
        hold = self.arm()
        future = pool.submit(first)
        try:
            assert hold.reached.wait(TIMEOUT), "the first command never reached the store"
            yield future
        finally:
            hold.released.set()

    def queue(self, pool: ThreadPoolExecutor, command: Command) -> Future[Done[Any]]:
        """Run ``command`` in a thread of ``pool``; return once it is queued for the writer
        (or done: refused before saving)."""
        with self._changed:
            target = self.queued + 1
        future = pool.submit(command)

        def wake(_: Future[Done[Any]]) -> None:
            with self._changed:
                self._changed.notify_all()

        future.add_done_callback(wake)
        with self._changed:
            assert self._changed.wait_for(
                lambda: self.queued >= target or future.done(), TIMEOUT
            ), "the command was never handed to the writer"
        return future


class Fault:
    """Makes the store refuse every transaction that holds an event of ``trigger``: on
    SQLite from inside the transaction once its events and receipts are inserted, on
    PostgreSQL in place of its one statement.

    ``store=True``: a failure of the store itself (``OperationalError``; on PostgreSQL
    ``query_canceled`` raised by the server, which the library retries, here without its
    pauses). ``store=False``: a value the store refuses (``DataError``; on PostgreSQL
    ``invalid_parameter_value``). On PostgreSQL the error is raised by the server.
    """

    def __init__(
        self, app: LedgerApp, monkeypatch: pytest.MonkeyPatch, trigger: UUID, *, store: bool
    ) -> None:
        self.trigger = trigger
        self.hits = 0
        self.armed = True
        recorder = app.recorder
        if isinstance(recorder, PostgresApplicationRecorder):
            code = "57014" if store else "22023"
            self.refuse = f"DO $$ BEGIN RAISE EXCEPTION 'refused' USING ERRCODE = '{code}'; END $$"
            faults: list[Fault] | None = getattr(recorder, "faults", None)
            if faults is None:  # the first fault: the faults are checked in their order
                faults, record = [], recorder._record  # type: ignore[attr-defined]

                def refused(curs: Any, stored: list[StoredEvent], parameters: list[Any]) -> Any:
                    for fault in faults:
                        if fault._hit(stored):
                            curs.execute(fault.refuse)  # in place of the one insert statement
                    return record(curs, stored, parameters)

                monkeypatch.setattr(recorder, "_record", refused)
                monkeypatch.setattr(recorder, "faults", faults, raising=False)
            faults.append(self)
            monkeypatch.setattr(eventsourcing.utils, "sleep", lambda _: None)
        else:
            error = OperationalError if store else DataError
            insert_events = recorder._insert_events  # type: ignore[attr-defined]

            def insert(cursor: Any, stored: list[StoredEvent], **kwargs: Any) -> Any:
                positions = insert_events(cursor, stored, **kwargs)
                if self._hit(stored):
                    raise error("refused")
                return positions

            monkeypatch.setattr(recorder, "_insert_events", insert)

    def _hit(self, stored: list[StoredEvent]) -> bool:
        if self.armed and any(event.originator_id == self.trigger for event in stored):
            self.hits += 1
            return True
        return False


# -- fixtures and helpers ---------------------------------------------------------------------


def ledger_settings(database_url: str, tmp_path: Path, **env: str) -> Settings:
    return load_settings(
        LEDGER_DATABASE_URL=database_url,
        LEDGER_VAR_DIR=str(tmp_path / "var"),
        _env_file=None,
        **env,
    )


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> Iterator[LedgerApp]:
    """A batching app (the defaults: group commit on, no wait) on each backend."""
    with open_app(settings, clock) as ledger:
        yield ledger


@pytest.fixture
def probe(app: LedgerApp, pool: ThreadPoolExecutor) -> Probe:
    """The app's writer, instrumented (``pool`` cleans up after it)."""
    return Probe(app)


@pytest.fixture
def gig(app: LedgerApp, probe: Probe) -> UUID:
    return open_gig(app)


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    """Threads for the commands; those the writer left waiting are failed at the end."""
    with ThreadPoolExecutor(max_workers=16) as executor:
        yield executor
        while Probe.made:
            Probe.made.pop().abandon()


def revise(app: LedgerApp, gig: UUID, n: int) -> Done[Any]:
    """A revision of the gig's packages that changes them (the ``n``-th new price): one that
    changed nothing would record nothing."""
    packages = [replace(package, price=package.price + n) for package in PACKAGES]
    return app.revise_gig(FREELANCER, gig, packages=packages)


def blocker(app: LedgerApp) -> Command:
    """A command on an aggregate of its own, to hold the writer with."""
    return partial(app.create_gig, FREELANCER, "Held in the writer", PACKAGES)


def place(app: LedgerApp, gig_id: UUID, order_id: UUID | None = None) -> Command:
    return partial(app.place_order, CLIENT, gig_id, "standard", order_id=order_id)


def under(receipt: Receipt, command: Command) -> Command:
    """``command`` run as a keyed request (in whatever thread runs it)."""

    def run() -> Done[Any]:
        with keyed(receipt):
            return command()

    return run


def request(key: str, *, recheck: bool = False) -> Receipt:
    return Receipt(CLIENT.id, key, f"hash-of-{key}", recheck=recheck)


def answers(futures: list[Future[Done[Any]]]) -> list[Any]:
    """Each command's ``Done``, or the exception it raised."""
    return [future.exception(TIMEOUT) or future.result() for future in futures]


def sizes_since(app: LedgerApp, before: int) -> list[int]:
    """The sizes of the transactions written since there were ``before``."""
    return list(app.writer.batch_sizes)[before:]


def count_inserts(app: LedgerApp) -> list[int]:
    """The size of each batch ``app``'s writer tries to insert from now on, failed or not
    (install after the probe)."""
    tried: list[int] = []
    insert = app.writer._insert

    def counted(batch: list[Pending]) -> Any:
        tried.append(len(batch))
        return insert(batch)

    app.writer._insert = counted
    return tried


def assert_positions(app: LedgerApp, dones: list[Done[Any]]) -> None:
    """Each ``Done`` names the stored position of the event that left its aggregate at the
    version it answers with (the commands checked here change one aggregate each)."""
    for done in dones:
        [note] = app.recorder.select_notifications(done.position, 1)
        assert note.id == done.position
        assert (note.originator_id, note.originator_version) == (
            done.aggregate.id,
            done.aggregate.version,
        )


def assert_contiguous_versions(app: LedgerApp, aggregate_id: UUID) -> None:
    versions = [event.originator_version for event in stored_events(app, aggregate_id)]
    assert versions == list(range(1, len(versions) + 1))


# -- sharing transactions ---------------------------------------------------------------------


def test_concurrent_commands_on_distinct_aggregates_share_one_transaction(
    app: LedgerApp, probe: Probe, gig: UUID, pool: ThreadPoolExecutor
) -> None:
    paid = [paid_order(app, gig) for _ in range(3)]
    before, commands = len(app.writer.batch_sizes), app.writer.commands
    with probe.held(pool, place(app, gig)) as first:
        futures = [probe.queue(pool, place(app, gig)) for _ in range(5)]
        futures += [probe.queue(pool, partial(app.accept_order, FREELANCER, o)) for o in paid]
    dones = answers([first, *futures])
    assert all(isinstance(done, Done) for done in dones), dones
    assert sizes_since(app, before) == [1, 8]
    assert (app.writer.transactions, app.writer.commands) == (before + 2, commands + 9)
    assert_positions(app, dones)
    for done in dones[:6]:
        assert event_names(app, done.aggregate.id) == PLACED
    for order_id in paid:
        assert event_names(app, order_id) == [*PAID, "OrderAccepted"]
    assert len({done.aggregate.id for done in dones}) == 9
    assert max_position(app) == max(done.position for done in dones)


def test_positions_are_those_of_each_commands_own_last_event(
    app: LedgerApp, probe: Probe, gig: UUID, pool: ThreadPoolExecutor
) -> None:
    """Commands of one, two and three events, on one or two aggregates, in one batch."""
    other_gig = open_gig(app)
    to_pay = placed_order(app, gig)
    paying = placed_order(app, gig)
    app.create_payment(CLIENT, paying, "credit_card")
    to_accept = paid_order(app, gig)
    before = len(app.writer.batch_sizes)
    with probe.held(pool, blocker(app)) as first:
        placing = probe.queue(pool, place(app, gig))
        opening = probe.queue(pool, partial(app.create_payment, CLIENT, to_pay, "credit_card"))
        confirming = probe.queue(
            pool,
            partial(app.confirm_payment, GATEWAY, payment_id_for(paying), "txn-1", PRICE, "MAD"),
        )
        accepting = probe.queue(pool, partial(app.accept_order, FREELANCER, to_accept))
        revising = probe.queue(pool, partial(revise, app, other_gig, 1))
    single = [placing, opening, accepting, revising]
    dones = answers([first, *single, confirming])
    assert all(isinstance(done, Done) for done in dones), dones
    assert sizes_since(app, before) == [1, 5]
    assert_positions(app, answers([first, *single]))
    assert [done.aggregate.version for done in answers(single)] == [1, 2, 3, 2]
    # The queue order is the order of the transaction's events.
    in_order = [placing, opening, confirming, accepting, revising]
    positions = [done.position for done in answers(in_order)]
    assert positions == sorted(positions)
    # Settling a payment saves the payment, then its order: the position is the order's.
    confirmed = confirming.result()
    [note] = app.recorder.select_notifications(confirmed.position, 1)
    assert (note.originator_id, note.originator_version) == (paying, 2)
    assert event_names(app, paying) == PAID
    assert confirmed.aggregate.id == payment_id_for(paying)
    assert confirmed.aggregate.status == "success"


def test_a_batch_holds_at_most_the_configured_number_of_aggregates(
    database_url: str, tmp_path: Path, clock: FakeClock, pool: ThreadPoolExecutor
) -> None:
    settings = ledger_settings(
        database_url, tmp_path, LEDGER_BATCH_MAX_AGGREGATES="2", LEDGER_BATCH_WAIT_MS="5"
    )
    with open_app(settings, clock) as app:
        assert app.writer.batching == Batching(enabled=True, max_aggregates=2, max_wait=0.005)
        probe = Probe(app)
        gig = open_gig(app)
        paying = placed_order(app, gig)
        app.create_payment(CLIENT, paying, "credit_card")
        before = len(app.writer.batch_sizes)
        with probe.held(pool, blocker(app)) as first:
            futures = [probe.queue(pool, place(app, gig))]
            futures.append(
                probe.queue(
                    pool,
                    partial(
                        app.confirm_payment, GATEWAY, payment_id_for(paying), "txn", PRICE, "MAD"
                    ),
                )
            )
            futures += [probe.queue(pool, place(app, gig)) for _ in range(3)]
        dones = answers([first, *futures])
        assert all(isinstance(done, Done) for done in dones), dones
        # One order; then the payment and its order (two aggregates) alone; then two, one.
        assert sizes_since(app, before) == [1, 1, 1, 2, 1]
        assert event_names(app, paying) == PAID


# -- conflicts --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meanwhile", "allowed", "expected"),
    [
        pytest.param(
            lambda other, order_id: other.accept_order(FREELANCER, order_id),
            False,
            [*PAID, "OrderAccepted"],
            id="refused on the new state",
        ),
        pytest.param(
            lambda other, order_id: other.submit_requirements(CLIENT, order_id, "Blue, please"),
            True,
            [*PAID, "RequirementsSubmitted", "OrderAccepted"],
            id="allowed on the new state",
        ),
    ],
)
def test_a_command_another_process_made_stale_is_decided_again_and_the_batch_commits(
    app: LedgerApp,
    probe: Probe,
    gig: UUID,
    pool: ThreadPoolExecutor,
    settings: Settings,
    clock: FakeClock,
    meanwhile: Callable[[LedgerApp, UUID], Done[Any]],
    allowed: bool,
    expected: list[str],
) -> None:
    orders = [paid_order(app, gig) for _ in range(4)]
    stale = orders[1]
    before, handed = len(app.writer.batch_sizes), probe.queued
    with open_app(settings, clock) as other, probe.held(pool, blocker(app)) as first:
        futures = [probe.queue(pool, partial(app.accept_order, FREELANCER, o)) for o in orders]
        # Another process writes the order after the batched command decided on it.
        meanwhile(other, stale)
    outcomes = answers([first, *futures])
    stale_outcome = outcomes[2]
    if allowed:
        assert isinstance(stale_outcome, Done), repr(stale_outcome)
        assert stale_outcome.aggregate.version == 4
        assert sizes_since(app, before) == [1, 3, 1]
    else:
        assert type(stale_outcome) is InvalidTransition, repr(stale_outcome)
        assert sizes_since(app, before) == [1, 3]
    # Only the stale command was decided again: the others were handed over once.
    assert probe.queued - handed == 1 + 4 + allowed
    innocent = [outcome for i, outcome in enumerate(outcomes) if i != 2]
    assert all(isinstance(done, Done) for done in innocent), innocent
    assert_positions(app, innocent)
    assert event_names(app, stale) == expected
    for order_id in orders:
        assert_contiguous_versions(app, order_id)
        if order_id != stale:
            assert event_names(app, order_id) == [*PAID, "OrderAccepted"]


def test_the_same_aggregate_twice_in_a_batch_is_never_written_twice(
    app: LedgerApp, probe: Probe, gig: UUID, pool: ThreadPoolExecutor
) -> None:
    accepted, requested, innocent = (paid_order(app, gig) for _ in range(3))
    derived = uuid4()
    before, handed = len(app.writer.batch_sizes), probe.queued
    with probe.held(pool, blocker(app)) as first:
        commands: list[Command] = [
            partial(app.accept_order, FREELANCER, accepted),
            partial(app.accept_order, FREELANCER, accepted),
            place(app, gig, derived),
            place(app, gig, derived),
            partial(app.accept_order, FREELANCER, requested),
            partial(app.submit_requirements, CLIENT, requested, "Blue, please"),
            partial(app.accept_order, FREELANCER, innocent),
        ]
        futures = [probe.queue(pool, command) for command in commands]
        batch = probe.arm()
    # The writer is inside the batch's transaction: the first of each pair is in it, and
    # nobody is answered yet, not even those sent back (they must read what it writes).
    assert batch.reached.wait(TIMEOUT)
    queued = probe.handed[-7:]
    assert batch.batch == [queued[0], queued[2], queued[4], queued[6]]
    assert not any(pending.outcome.done() for pending in queued)
    batch.released.set()
    outcomes = answers([first, *futures])
    first_accept, second_accept, first_place, second_place, accept, submit, other = outcomes[1:]
    # The first of each pair is written with the batch; the second is sent back once the
    # batch committed, and decided again on what it wrote.
    assert isinstance(first_accept, Done), repr(first_accept)
    assert type(second_accept) is InvalidTransition, repr(second_accept)
    assert isinstance(first_place, Done), repr(first_place)
    assert type(second_place) is Conflict, repr(second_place)
    assert isinstance(accept, Done), repr(accept)
    assert isinstance(submit, Done), repr(submit)
    assert isinstance(other, Done), repr(other)
    assert submit.aggregate.version == accept.aggregate.version + 1
    assert sizes_since(app, before) == [1, 4, 1]
    assert probe.queued - handed == 1 + 7 + 1  # the requirements, handed over again
    assert event_names(app, accepted) == [*PAID, "OrderAccepted"]
    assert event_names(app, derived) == PLACED
    assert event_names(app, requested) == [*PAID, "OrderAccepted", "RequirementsSubmitted"]
    assert event_names(app, innocent) == [*PAID, "OrderAccepted"]
    assert_positions(app, [first_accept, first_place, accept, submit, other])


def test_a_burst_of_commands_on_one_aggregate_is_written_in_turn_none_busy(
    app: LedgerApp,
    probe: Probe,
    gig: UUID,
    pool: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Waiting behind a command of the same process is not a race lost: even allowed a
    # single lost race, every command of the burst is done, one per transaction.
    monkeypatch.setattr(app, "max_attempts", 1)
    tried = count_inserts(app)
    before = len(app.writer.batch_sizes)
    with probe.held(pool, blocker(app)) as first:
        futures = [probe.queue(pool, partial(revise, app, gig, n)) for n in range(1, 13)]
    assert isinstance(first.result(TIMEOUT), Done)
    dones = answers(futures)
    assert all(isinstance(done, Done) for done in dones), dones
    assert sorted(done.aggregate.version for done in dones) == list(range(2, 14))
    sizes = sizes_since(app, before)
    assert sizes[0] == 1 and sizes[1] == 1  # the blocker; then one of the twelve, alone
    assert sum(sizes) == 13
    # Commands decided on a version the writer had already replaced were sent back before
    # the store was tried: no transaction failed.
    assert tried == sizes
    assert event_names(app, gig) == ["Created", *["PackagesRevised"] * 12]
    assert_contiguous_versions(app, gig)


# -- failures ---------------------------------------------------------------------------------


def test_a_store_failure_fails_every_command_of_the_batch_and_writes_nothing(
    app: LedgerApp,
    probe: Probe,
    gig: UUID,
    pool: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [uuid4() for _ in range(4)]
    fault = Fault(app, monkeypatch, trigger=ids[0], store=True)
    before = len(app.writer.batch_sizes)
    with probe.held(pool, blocker(app)) as first:
        futures = [
            probe.queue(pool, under(request(f"key-{n}"), place(app, gig, order_id)))
            for n, order_id in enumerate(ids)
        ]
    held = first.result(TIMEOUT)
    for outcome in answers(futures):
        assert type(outcome) is OperationalError, repr(outcome)
    assert fault.hits >= 1
    # Nothing of the batch was written: no event, no receipt, no transaction counted.
    assert max_position(app) == held.position
    assert sizes_since(app, before) == [1]
    assert all(order_id not in app.repository for order_id in ids)
    assert all(app.recorder.receipt_of(CLIENT.id, f"key-{n}") is None for n in range(4))  # type: ignore[attr-defined]

    # The writer goes on: the requests retried (found unrecorded) are done, once each.
    fault.armed = False
    with probe.held(pool, blocker(app)):
        futures = [
            probe.queue(pool, under(request(f"key-{n}", recheck=True), place(app, gig, order_id)))
            for n, order_id in enumerate(ids)
        ]
    dones = answers(futures)
    assert all(isinstance(done, Done) for done in dones), dones
    assert sizes_since(app, before) == [1, 1, 4]
    assert_positions(app, dones)
    assert all(event_names(app, order_id) == PLACED for order_id in ids)


def test_a_store_failure_fails_the_commands_queued_behind_it_at_once(
    app: LedgerApp,
    probe: Probe,
    gig: UUID,
    pool: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doomed, behind = uuid4(), [uuid4() for _ in range(3)]
    fault = Fault(app, monkeypatch, trigger=doomed, store=True)
    tried = count_inserts(app)
    first_hold, doomed_hold = probe.arm(), probe.arm()
    first = pool.submit(blocker(app))
    assert first_hold.reached.wait(TIMEOUT)
    failing = probe.queue(pool, place(app, gig, doomed))
    first_hold.released.set()
    assert doomed_hold.reached.wait(TIMEOUT), "the doomed batch never reached the store"
    queued = [probe.queue(pool, place(app, gig, order_id)) for order_id in behind]
    doomed_hold.released.set()

    assert isinstance(first.result(TIMEOUT), Done)
    for outcome in answers([failing, *queued]):
        assert type(outcome) is OperationalError, repr(outcome)
    # Those queued behind the failure were answered without another try of the store.
    assert tried == [1, 1]
    assert fault.hits >= 1
    assert all(order_id not in app.repository for order_id in [doomed, *behind])

    # The store is back: the writer goes on, and the same commands are done.
    fault.armed = False
    dones = answers([pool.submit(place(app, gig, order_id)) for order_id in [doomed, *behind]])
    assert all(isinstance(done, Done) for done in dones), dones
    assert all(event_names(app, order_id) == PLACED for order_id in [doomed, *behind])


def test_a_store_failure_while_halving_fails_the_other_half_untried(
    app: LedgerApp,
    probe: Probe,
    gig: UUID,
    pool: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down, innocent, poisoned, other = (uuid4() for _ in range(4))
    Fault(app, monkeypatch, trigger=poisoned, store=False)  # makes the writer halve
    Fault(app, monkeypatch, trigger=down, store=True)  # then the store fails in a half
    tried = count_inserts(app)
    with probe.held(pool, blocker(app)):
        futures = [
            probe.queue(pool, place(app, gig, order_id))
            for order_id in (down, innocent, poisoned, other)
        ]
    for outcome in answers(futures):
        assert type(outcome) is OperationalError, repr(outcome)
    assert tried == [1, 4, 2]  # the blocker, the batch, its first half; not the second
    assert all(order_id not in app.repository for order_id in (down, innocent, poisoned, other))


def test_any_other_failure_fails_only_the_command_that_causes_it(
    app: LedgerApp,
    probe: Probe,
    gig: UUID,
    pool: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ids = [uuid4() for _ in range(4)]
    poisoned = ids[2]
    fault = Fault(app, monkeypatch, trigger=poisoned, store=False)
    before = len(app.writer.batch_sizes)
    with probe.held(pool, blocker(app)) as first:
        futures = [
            probe.queue(pool, under(request(f"key-{n}"), place(app, gig, order_id)))
            for n, order_id in enumerate(ids)
        ]
    outcomes = answers([first, *futures])
    assert type(outcomes[3]) is DataError, repr(outcomes[3])
    dones = [outcome for i, outcome in enumerate(outcomes) if i != 3]
    assert all(isinstance(done, Done) for done in dones), dones
    # Halved: [0, 1] commit; [2, 3] fails, halved again: [2] fails alone, [3] commits.
    assert sizes_since(app, before) == [1, 2, 1]
    assert fault.hits == 3  # the batch, its second half, the poisoned command alone
    assert poisoned not in app.repository
    assert app.recorder.receipt_of(CLIENT.id, "key-2") is None  # type: ignore[attr-defined]
    for n, order_id in enumerate(ids):
        if order_id != poisoned:
            assert event_names(app, order_id) == PLACED
            receipt = app.recorder.receipt_of(CLIENT.id, f"key-{n}")  # type: ignore[attr-defined]
            assert receipt is not None
            assert (receipt.aggregate_id, receipt.position) == (order_id, outcomes[n + 1].position)
    assert_positions(app, dones)
    assert max_position(app) == max(done.position for done in dones)


# -- without batching -------------------------------------------------------------------------


def test_without_group_commit_each_command_has_a_transaction_of_its_own(
    database_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    settings = ledger_settings(database_url, tmp_path, LEDGER_GROUP_COMMIT="false")
    with open_app(settings, clock) as app:
        assert not app.writer.batching.enabled
        writers: list[str] = []
        insert = app.writer._insert

        def insert_in_thread(batch: Any) -> Any:
            writers.append(current_thread().name)
            return insert(batch)

        app.writer._insert = insert_in_thread
        gig = open_gig(app)
        paid = paid_order(app, gig)
        outcomes = race(
            *(place(app, gig) for _ in range(6)),
            partial(app.accept_order, FREELANCER, paid),
            partial(app.accept_order, FREELANCER, paid),
        )
        dones = [outcome for outcome in outcomes if isinstance(outcome, Done)]
        assert len(dones) == 7, outcomes
        assert [type(outcome) for outcome in outcomes[6:]].count(InvalidTransition) == 1
        assert set(app.writer.batch_sizes) == {1}
        assert len(app.writer.batch_sizes) == 4 + 7  # gig, order, payment, confirmation
        assert app.writer._fed._thread is None
        assert writers
        assert "ledger-group-commit" not in writers
        assert_positions(app, dones)
        assert event_names(app, paid) == [*PAID, "OrderAccepted"]


# -- closing ----------------------------------------------------------------------------------


def test_close_records_the_queued_commands_then_refuses_new_ones(
    settings: Settings,
    clock: FakeClock,
    pool: ThreadPoolExecutor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = build_ledger(settings, clock)
    probe = Probe(app)
    closing: Future[None] | None = None
    try:
        gig = open_gig(app)
        with probe.held(pool, blocker(app)) as first:
            futures = [probe.queue(pool, place(app, gig)) for _ in range(5)]
            closing = pool.submit(app.close)
            assert probe.stop_sign.wait(TIMEOUT)
            with pytest.raises(OperationalError, match="closed"):
                app.place_order(CLIENT, gig, "standard")
            assert not closing.done()  # waiting for the writer, which still holds the batch
        closing.result(TIMEOUT)
        dones = answers([first, *futures])
        assert all(isinstance(done, Done) for done in dones), dones
        assert list(app.writer.batch_sizes)[-2:] == [1, 5]
        monkeypatch.setattr(eventsourcing.utils, "sleep", lambda _: None)  # no retry pauses
        with pytest.raises(EventSourcingError):  # the store is closed
            app.place_order(CLIENT, gig, "standard")
    finally:
        probe.abandon()
        if closing is None:
            app.close()
    with open_app(settings, clock) as reopened:
        assert max_position(reopened) == max(done.position for done in dones)
        assert_positions(reopened, dones)
        for done in dones[1:]:
            assert event_names(reopened, done.aggregate.id) == PLACED


# -- receipts ---------------------------------------------------------------------------------


def test_each_keyed_command_of_a_batch_leaves_its_own_receipt_which_answers_a_retry(
    app: LedgerApp, probe: Probe, gig: UUID, pool: ThreadPoolExecutor
) -> None:
    pending = placed_order(app, gig)
    paid = paid_order(app, gig)
    keyed_commands: dict[str, Command] = {
        "place": place(app, gig, uuid4()),
        "pay": partial(app.create_payment, CLIENT, pending, "credit_card"),
        "requirements": partial(app.submit_requirements, CLIENT, paid, "Blue, please"),
    }
    before = len(app.writer.batch_sizes)
    with probe.held(pool, blocker(app)) as first:
        futures = {
            key: probe.queue(pool, under(request(key), command))
            for key, command in keyed_commands.items()
        }
        unkeyed = probe.queue(pool, place(app, gig))
    dones = {key: future.result(TIMEOUT) for key, future in futures.items()}
    answers([first, unkeyed])
    assert sizes_since(app, before) == [1, 4]
    assert len({done.position for done in dones.values()}) == 3
    assert_positions(app, list(dones.values()))
    recorder: Any = app.recorder
    for key, done in dones.items():
        receipt = recorder.receipt_of(CLIENT.id, key)
        assert receipt is not None
        assert (receipt.aggregate_id, receipt.version, receipt.position) == (
            done.aggregate.id,
            done.aggregate.version,
            done.position,
        )
        assert receipt.request_hash == f"hash-of-{key}"
    assert recorder.receipt_of(CLIENT.id, "unkeyed") is None

    # The same requests again, after a lost answer: each is answered from its receipt
    # (the payment's is not: see the next test).
    position, batches = max_position(app), list(app.writer.batch_sizes)
    for key in ("place", "requirements"):
        retry = request(key, recheck=True)
        again = under(retry, keyed_commands[key])()
        assert retry.taken
        assert retry.replayed
        assert again.aggregate.id == dones[key].aggregate.id
        assert again.aggregate.version == dones[key].aggregate.version
        assert again.position == dones[key].position
    assert (max_position(app), list(app.writer.batch_sizes)) == (position, batches)
    assert event_names(app, paid) == [*PAID, "RequirementsSubmitted"]


def test_two_commands_of_a_batch_under_one_key_leave_the_later_ones_receipt(
    app: LedgerApp, probe: Probe, gig: UUID, pool: ThreadPoolExecutor
) -> None:
    """The edge never runs two requests of one key at once, but the store does not rely on
    it: the receipts of a transaction are written together (one statement on PostgreSQL), and
    a key named twice keeps the later command's, as writing them one by one would."""
    before = len(app.writer.batch_sizes)
    with probe.held(pool, blocker(app)) as first:
        earlier = probe.queue(pool, under(request("twice"), place(app, gig)))
        later = probe.queue(pool, under(request("twice"), place(app, gig)))
    answers([first])
    done_earlier, done_later = earlier.result(TIMEOUT), later.result(TIMEOUT)
    assert sizes_since(app, before) == [1, 2]
    receipt = app.recorder.receipt_of(CLIENT.id, "twice")  # type: ignore[attr-defined]
    assert receipt is not None
    later_at = (done_later.aggregate.id, done_later.position)
    assert (receipt.aggregate_id, receipt.position) == later_at
    assert done_earlier.aggregate.id != done_later.aggregate.id


def test_a_keyed_command_decided_again_still_leaves_its_receipt(
    app: LedgerApp, probe: Probe, gig: UUID, pool: ThreadPoolExecutor
) -> None:
    """The requirements are sent back (the order is in the batch already) and saved alone."""
    order_id = paid_order(app, gig)
    before = len(app.writer.batch_sizes)
    with probe.held(pool, blocker(app)):
        accepting = probe.queue(
            pool, under(request("accept"), partial(app.accept_order, FREELANCER, order_id))
        )
        requirements = probe.queue(
            pool,
            under(
                request("requirements"),
                partial(app.submit_requirements, CLIENT, order_id, "Blue, please"),
            ),
        )
    accepted, submitted = accepting.result(TIMEOUT), requirements.result(TIMEOUT)
    assert submitted.aggregate.version == accepted.aggregate.version + 1
    assert sizes_since(app, before) == [1, 1, 1]
    recorder: Any = app.recorder
    for key, done in (("accept", accepted), ("requirements", submitted)):
        receipt = recorder.receipt_of(CLIENT.id, key)
        assert receipt is not None, f"no receipt for {key}"
        assert (receipt.version, receipt.position) == (done.aggregate.version, done.position)


def test_a_keyed_payment_retried_after_a_lost_answer_is_answered_from_its_receipt(
    app: LedgerApp, gig: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = placed_order(app, gig)
    pay = partial(app.create_payment, CLIENT, order_id, "credit_card")
    assert app.gateway is not None
    tokenize, checkouts = app.gateway.tokenize, []
    monkeypatch.setattr(
        app.gateway, "tokenize", lambda asked: checkouts.append(asked) or tokenize(asked)
    )
    first = under(request("pay"), pay)()
    position = max_position(app)
    retry = request("pay", recheck=True)
    again = under(retry, pay)()
    assert retry.replayed
    assert len(checkouts) == 1  # the gateway is not asked for a second checkout
    assert (again.aggregate.id, again.aggregate.version, again.position) == (
        first.aggregate.id,
        first.aggregate.version,
        first.position,
    )
    assert max_position(app) == position


def test_a_python_error_while_writing_receipts_writes_nothing(
    app: LedgerApp, gig: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows of the receipts are built before anything is sent (on PostgreSQL the whole
    transaction is one statement; on SQLite the error rolls the transaction back)."""
    position = max_position(app)

    def broken(*_: Any) -> Any:
        raise RuntimeError("a bug while building the receipt's row")

    monkeypatch.setattr(ReceiptEntry, "row", broken)
    with pytest.raises(Exception):  # noqa: B017 - whichever the backend reports
        under(request("broken"), place(app, gig))()
    monkeypatch.undo()
    assert max_position(app) == position
    recorder: Any = app.recorder
    assert recorder.receipt_of(CLIENT.id, "broken") is None
    done = under(request("broken"), place(app, gig))()
    assert done.position == max_position(app) > position  # PostgreSQL may leave a gap


def test_a_failure_after_the_commit_fails_no_command_of_the_batch(
    app: LedgerApp, probe: Probe, gig: UUID, pool: ThreadPoolExecutor
) -> None:
    """What follows a commit (here a listener told of it raises) is not a failure to record:
    every command of the batch gets its ``Done``, and nothing is written twice."""
    paid = [paid_order(app, gig) for _ in range(2)]
    told: list[int] = []

    def broken_listener(position: int) -> None:
        told.append(position)
        raise RuntimeError("a listener's bug")

    app.on_saved(broken_listener)
    with probe.held(pool, place(app, gig)) as first:
        futures = [probe.queue(pool, place(app, gig)) for _ in range(2)]
        futures += [probe.queue(pool, partial(app.accept_order, FREELANCER, o)) for o in paid]
    dones = answers([first, *futures])
    assert all(isinstance(done, Done) for done in dones), dones
    assert told == [dones[0].position, max(done.position for done in dones[1:])]
    assert_positions(app, dones)
    for order_id in paid:
        assert event_names(app, order_id) == [*PAID, "OrderAccepted"]


def test_a_command_issued_by_a_listener_in_the_writers_thread_is_recorded(
    app: LedgerApp, gig: UUID
) -> None:
    """Listeners run in the writer's thread; a command from there is recorded inline instead
    of waiting for the writer, that is for itself."""
    made: list[Any] = []
    finished = Event()

    def listener(_: int) -> None:
        if made:
            return
        made.append(None)
        try:
            made[0] = app.create_gig(FREELANCER, "Made by a listener", PACKAGES)
        except Exception as error:
            made[0] = error
        finally:
            finished.set()

    app.on_saved(listener)
    done = place(app, gig)()
    assert isinstance(done, Done)
    assert finished.wait(TIMEOUT), "the listener's command never came back"
    assert isinstance(made[0], Done), made
    assert made[0].position > done.position
    assert made[0].position == max_position(app)


def test_orders_on_a_gig_another_process_revised_meanwhile_are_decided_again_alone(
    app: LedgerApp,
    probe: Probe,
    gig: UUID,
    pool: ThreadPoolExecutor,
    settings: Settings,
    clock: FakeClock,
) -> None:
    """The orders read the gig from the cache; the insert finds it moved on, and only they
    are sent back, to be decided at the new price; the order on another gig commits."""
    elsewhere = open_gig(app)
    for gig_id in (gig, elsewhere):
        placed_order(app, gig_id)  # both gigs cached
    before = len(app.writer.batch_sizes)
    with open_app(settings, clock) as other, probe.held(pool, blocker(app)) as first:
        futures = [probe.queue(pool, place(app, g)) for g in (gig, gig, elsewhere)]
        revise(other, gig, 7)  # after the orders decided on version 1
    outcomes = answers([first, *futures])
    assert all(isinstance(done, Done) for done in outcomes), outcomes
    totals = [done.aggregate.total for done in outcomes[1:]]
    assert totals == [PRICE + 7, PRICE + 7, PRICE]
    # The batch of three failed its check and the innocent order committed alone, at once;
    # the two sent back were decided again and written after it.
    sizes = sizes_since(app, before)
    assert sizes[:2] == [1, 1]
    assert sum(sizes[2:]) == 2


def test_a_revision_waits_for_the_orders_in_the_batch_that_read_the_gig(
    app: LedgerApp, probe: Probe, gig: UUID, pool: ThreadPoolExecutor
) -> None:
    """Many commands may read one gig in a batch; one writing it is sent back: the orders
    decided on the version before it are written first, at the old price."""
    placed_order(app, gig)
    before = len(app.writer.batch_sizes)
    with probe.held(pool, blocker(app)) as first:
        commands = [place(app, gig), partial(revise, app, gig, 7), place(app, gig)]
        futures = [probe.queue(pool, command) for command in commands]
    outcomes = answers([first, *futures])
    assert all(isinstance(done, Done) for done in outcomes), outcomes
    assert [outcomes[1].aggregate.total, outcomes[3].aggregate.total] == [PRICE, PRICE]
    assert outcomes[2].aggregate.version == 2
    assert sizes_since(app, before) == [1, 2, 1]
