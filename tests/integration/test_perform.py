"""Commands performed on an event loop (``LedgerApp.perform``), on SQLite and PostgreSQL.

A command performed decides on the loop when everything it reads is in this process's
cache, and in a thread when it would read the store; its events are written by the writer
while the loop awaits the commit; its answers and errors are those of the same command
called in a thread. Two apps on one database stand for two processes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

import pytest
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import (
    CLIENT,
    FREELANCER,
    PRICE,
    event_names,
    open_gig,
    paid_order,
    placed_order,
)

from ledger import receipts
from ledger.actors import Caller
from ledger.domain.payment import payment_id_for
from ledger.errors import InvalidTransition, NotFound
from ledger.receipts import Receipt
from ledger.service import Done, LedgerApp
from ledger.settings import Settings
from ledger.store import Receipts

T = TypeVar("T")


def perform(app: LedgerApp, command: Callable[[], Done[T]]) -> Done[T]:
    return asyncio.run(app.perform(command))


@contextmanager
def threads_used(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of what ``perform`` sent to a thread (``asyncio.to_thread``)."""
    sent: list[str] = []
    to_thread = asyncio.to_thread

    async def counted(call: Callable[..., Any], *args: Any) -> Any:
        sent.append(getattr(call, "__qualname__", repr(call)))
        return await to_thread(call, *args)

    with monkeypatch.context() as patch:
        patch.setattr(asyncio, "to_thread", counted)
        yield sent


def test_an_order_on_a_cached_gig_is_decided_on_the_loop(
    stored_app: LedgerApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    gig_id = open_gig(stored_app)  # committed here: cached
    loop_thread: list[threading.Thread] = []
    decide_in = stored_app._attempts

    def watched(decide: Any, *rest: Any) -> Any:
        def deciding() -> Any:
            loop_thread.append(threading.current_thread())
            return decide()

        return decide_in(deciding, *rest)

    monkeypatch.setattr(stored_app, "_attempts", watched)
    with threads_used(monkeypatch) as sent:
        done = perform(stored_app, lambda: stored_app.place_order(CLIENT, gig_id, "standard"))
    assert sent == []
    assert loop_thread == [threading.main_thread()]
    assert done.aggregate.total == PRICE
    assert done.position == stored_app.recorder.max_notification_id()
    assert event_names(stored_app, done.aggregate.id) == ["OrderPlaced"]


def test_a_decision_that_would_read_the_store_is_made_in_a_thread(
    stored_app: LedgerApp, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_app(settings, clock) as other:  # another process opened the gig and the order
        order_id = paid_order(other, open_gig(other))
    with threads_used(monkeypatch) as sent:
        done = perform(stored_app, lambda: stored_app.accept_order(FREELANCER, order_id))
    assert len(sent) == 1 and "decide" in sent[0]
    assert done.aggregate.stage == "in_progress"
    with threads_used(monkeypatch) as sent:  # now the order is this process's: in its cache
        delivered = perform(
            stored_app, lambda: stored_app.deliver_order(FREELANCER, order_id, "Here")
        )
    assert sent == []
    assert delivered.aggregate.version == done.aggregate.version + 1


def test_an_order_changed_by_another_process_is_decided_again_on_its_new_state(
    stored_app: LedgerApp, settings: Settings, clock: FakeClock
) -> None:
    """The cached order is stale: the insert refuses the decision taken on it, the cache
    forgets it, and the command is decided again on the order as stored."""
    order_id = paid_order(stored_app, open_gig(stored_app))
    with open_app(settings, clock) as other:
        other.accept_order(FREELANCER, order_id)
    assert stored_app.read_cache.get(order_id).version == 2  # type: ignore[union-attr]
    done = perform(stored_app, lambda: stored_app.deliver_order(FREELANCER, order_id, "Here"))
    assert done.aggregate.version == 4
    names = event_names(stored_app, order_id)  # delivering on v2 would have accepted again
    assert len(names) == 4 and names[-2:] == ["OrderAccepted", "OrderDelivered"]
    assert stored_app.read_cache.get(order_id).version == 4  # type: ignore[union-attr]


def test_a_refused_command_raises_as_it_would_in_a_thread(stored_app: LedgerApp) -> None:
    order_id = placed_order(stored_app, open_gig(stored_app))
    with pytest.raises(InvalidTransition) as performed:
        perform(stored_app, lambda: stored_app.accept_order(FREELANCER, order_id))
    with pytest.raises(InvalidTransition) as called:
        stored_app.accept_order(FREELANCER, order_id)
    assert str(performed.value) == str(called.value)
    with pytest.raises(NotFound):
        perform(stored_app, lambda: stored_app.accept_order(FREELANCER, UUID(int=7)))


def test_a_keyed_command_performed_leaves_its_receipt(stored_app: LedgerApp) -> None:
    gig_id = open_gig(stored_app)
    receipt = Receipt("client-1", "key-1", "hash-1")

    async def keyed() -> Done[Any]:
        with receipts.keyed(receipt):
            return await stored_app.perform(
                lambda: stored_app.place_order(CLIENT, gig_id, "standard")
            )

    done = asyncio.run(keyed())
    assert isinstance(stored_app.recorder, Receipts)
    outcome = stored_app.recorder.receipt_of("client-1", "key-1")
    assert outcome is not None
    assert (outcome.aggregate_id, outcome.position) == (done.aggregate.id, done.position)


def test_without_group_commit_the_caller_records_in_a_thread(
    settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_app(settings.model_copy(update={"group_commit": False}), clock) as app:
        gig_id = open_gig(app)
        with threads_used(monkeypatch) as sent:
            done = perform(app, lambda: app.place_order(CLIENT, gig_id, "standard"))
        assert any("record" in name for name in sent)
        assert event_names(app, done.aggregate.id) == ["OrderPlaced"]


def test_a_command_that_does_not_reach_run_cannot_be_performed(stored_app: LedgerApp) -> None:
    gig = stored_app.get_gig(open_gig(stored_app))
    with pytest.raises(TypeError):
        perform(stored_app, lambda: Done(gig, 0))


def test_a_performance_cancelled_while_it_waits_leaves_nothing_behind(
    stored_app: LedgerApp,
) -> None:
    """The request's task is cancelled while the commit is awaited: the command is still
    recorded (it was handed over), and its steps are closed in the task's own context."""
    gig_id = open_gig(stored_app)
    reached, release = threading.Event(), threading.Event()
    insert = stored_app.writer._insert

    def held(batch: Any) -> Any:
        reached.set()
        assert release.wait(10)
        return insert(batch)

    stored_app.writer._insert = held  # type: ignore[method-assign]

    async def cancelled() -> None:
        task = asyncio.create_task(
            stored_app.perform(lambda: stored_app.place_order(CLIENT, gig_id, "standard"))
        )
        assert await asyncio.to_thread(reached.wait, 10)  # the writer holds its events
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    before = stored_app.recorder.max_notification_id() or 0
    asyncio.run(cancelled())
    release.set()
    stored_app.writer._insert = insert  # type: ignore[method-assign]
    placed = stored_app.place_order(CLIENT, gig_id, "standard")  # after the held one
    assert placed.position == before + 2


@pytest.mark.parametrize("performed", [False, True], ids=["in_a_thread", "performed"])
def test_a_refusal_decided_on_a_remembered_state_is_checked_against_the_store(
    stored_app: LedgerApp, settings: Settings, clock: FakeClock, performed: bool
) -> None:
    """This process remembers the order pending; another confirmed its payment. Accepting
    it is refused on what is remembered, and no insert would check that refusal: it is
    decided again on the order as stored, where it is allowed."""
    order_id = placed_order(stored_app, open_gig(stored_app))
    stored_app.create_payment(CLIENT, order_id, "credit_card")
    with open_app(settings, clock) as other:
        other.confirm_payment(
            Caller.system("gateway"), payment_id_for(order_id), "txn-1", PRICE, "MAD"
        )
    assert stored_app.read_cache.get(order_id).status == "pending"  # type: ignore[union-attr]
    command = lambda: stored_app.accept_order(FREELANCER, order_id)  # noqa: E731
    done = perform(stored_app, command) if performed else command()
    assert done.aggregate.stage == "in_progress"
    assert event_names(stored_app, order_id) == [
        "OrderPlaced",
        "OrderPaymentConfirmed",
        "OrderAccepted",
    ]
