"""A commit whose acknowledgement was lost is answered as what it was: a success.

``LostAck`` wraps the store's ``insert_events`` so that the transaction commits and the
caller then sees the store fail, as when the connection dies after COMMIT reached the
database: ``"after"`` raises ``OperationalError`` (no retry), ``"retried"`` retries as the
library's ``@retry`` does, so that the second attempt meets the first one's rows
(``IntegrityError``), and ``"partly"`` commits only the command's first event before
failing (a store that holds some of what the command sent: its outcome cannot be told).
Every test runs on SQLite and PostgreSQL, with group commit on and off. Nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import OperationalError, StoredEvent
from eventsourcing.utils import retry
from tests.conftest import FakeClock, open_app
from tests.integration.helpers import (
    CLIENT,
    FREELANCER,
    GATEWAY,
    PRICE,
    event_names,
    max_position,
    open_gig,
    paid_order,
    placed_order,
)

from ledger.domain.payment import payment_id_for
from ledger.errors import Conflict, OutcomeUnknown
from ledger.receipts import Receipt, keyed
from ledger.service import Done, LedgerApp
from ledger.settings import load_settings
from ledger.store import Receipts


class LostAck:
    """The next insert (once armed) commits, then the store answers with a failure."""

    def __init__(self, app: LedgerApp, monkeypatch: pytest.MonkeyPatch) -> None:
        self.mode: str | None = None
        self.hits = 0
        self.tries = 0
        real = app.recorder.insert_events

        def committed_then_lost(stored: list[StoredEvent], **kwargs: Any) -> Any:
            self.tries += 1
            if self.mode is None or self.tries > 1:  # not armed, or the driver's retry
                return real(stored, **kwargs)
            self.hits += 1
            if self.mode == "partly":
                real(stored[:1])  # one event of the command, without its receipt
            else:
                real(stored, **kwargs)  # committed...
            raise OperationalError("server closed the connection unexpectedly")  # ...unheard

        retried = retry(OperationalError, max_attempts=2)(committed_then_lost)

        def insert_events(stored: list[StoredEvent], **kwargs: Any) -> Any:
            self.tries = 0
            try:
                if self.mode == "retried":
                    return retried(stored, **kwargs)
                return committed_then_lost(stored, **kwargs)
            finally:
                self.mode = None  # one fault per arming

        monkeypatch.setattr(app.recorder, "insert_events", insert_events)

    def arm(self, mode: str) -> None:
        self.mode = mode


@pytest.fixture(params=["group", "inline"])
def app(
    request: pytest.FixtureRequest, database_url: str, tmp_path: Path, clock: FakeClock
) -> Iterator[LedgerApp]:
    settings = load_settings(
        LEDGER_DATABASE_URL=database_url,
        LEDGER_VAR_DIR=str(tmp_path / "var"),
        LEDGER_GROUP_COMMIT="true" if request.param == "group" else "false",
        _env_file=None,
    )
    with open_app(settings, clock) as ledger:
        yield ledger


@pytest.fixture
def fault(app: LedgerApp, monkeypatch: pytest.MonkeyPatch) -> LostAck:
    return LostAck(app, monkeypatch)


def run(command: Callable[[], Done[Any]], receipt: Receipt | None) -> Done[Any]:
    """``command`` unkeyed, or keyed as the HTTP edge runs it."""
    if receipt is None:
        return command()
    with keyed(receipt):
        return command()


def receipt_for(key: str | None) -> Receipt | None:
    return None if key is None else Receipt(CLIENT.id, key, f"hash-of-{key}")


def assert_answer_is_stored(app: LedgerApp, done: Done[Any]) -> None:
    """The position answered is that of the event that left the aggregate at the version
    answered, as stored."""
    [note] = app.recorder.select_notifications(done.position, 1)
    assert note.id == done.position
    assert (note.originator_id, note.originator_version) == (
        done.aggregate.id,
        done.aggregate.version,
    )


@pytest.mark.parametrize("key", [None, "place-1"], ids=["unkeyed", "keyed"])
@pytest.mark.parametrize("mode", ["after", "retried"])
def test_a_new_order_whose_commit_was_not_acknowledged_is_answered_as_placed(
    app: LedgerApp, fault: LostAck, mode: str, key: str | None
) -> None:
    gig = open_gig(app)
    before = max_position(app)
    heard: list[int] = []
    app.on_saved(heard.append)
    receipt = receipt_for(key)
    order_id = uuid4()
    fault.arm(mode)
    done = run(lambda: app.place_order(CLIENT, gig, "standard", order_id=order_id), receipt)
    assert fault.hits == 1
    assert done.aggregate.id == order_id
    assert event_names(app, order_id) == ["OrderPlaced"]  # stored once
    assert max_position(app) == before + 1  # and nothing else
    assert done.position == before + 1
    assert_answer_is_stored(app, done)
    assert heard[-1] == done.position  # what follows a commit ran for it
    if receipt is not None:
        assert not receipt.replayed  # acknowledged, not answered from its receipt
        assert isinstance(app.recorder, Receipts)
        outcome = app.recorder.receipt_of(CLIENT.id, key or "")
        assert outcome is not None and outcome.position == done.position


@pytest.mark.parametrize("key", [None, "accept-1"], ids=["unkeyed", "keyed"])
@pytest.mark.parametrize("mode", ["after", "retried"])
def test_a_change_whose_commit_was_not_acknowledged_is_answered_as_made(
    app: LedgerApp, fault: LostAck, mode: str, key: str | None
) -> None:
    order_id = paid_order(app, open_gig(app))
    before = max_position(app)
    receipt = receipt_for(key)
    fault.arm(mode)
    done = run(lambda: app.accept_order(FREELANCER, order_id), receipt)
    assert fault.hits == 1
    assert done.aggregate.id == order_id and done.aggregate.stage == "in_progress"
    assert event_names(app, order_id).count("OrderAccepted") == 1
    assert max_position(app) == before + 1 == done.position
    assert_answer_is_stored(app, done)
    # The cache holds what was stored: the next command decides on it.
    app.deliver_order(FREELANCER, order_id, "Here it is")
    assert event_names(app, order_id)[-2:] == ["OrderAccepted", "OrderDelivered"]


@pytest.mark.parametrize("key", [None, "confirm-1"], ids=["unkeyed", "keyed"])
def test_a_command_found_stored_in_part_answers_outcome_unknown(
    app: LedgerApp, fault: LostAck, key: str | None
) -> None:
    order_id = placed_order(app, open_gig(app))
    app.create_payment(CLIENT, order_id, "credit_card")
    payment_id = payment_id_for(order_id)
    before = max_position(app)
    fault.arm("partly")
    with pytest.raises(OutcomeUnknown) as raised:
        run(
            lambda: app.confirm_payment(GATEWAY, payment_id, f"txn-{order_id}", PRICE, "MAD"),
            receipt_for(key),
        )
    assert raised.value.code == "outcome_unknown"
    assert max_position(app) == before + 1  # only what the fault committed


@pytest.mark.parametrize("mode", ["after", "retried"])
def test_a_store_that_cannot_be_read_after_the_failure_answers_outcome_unknown(
    app: LedgerApp, fault: LostAck, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gig = open_gig(app)

    def unreadable(*_: Any, **__: Any) -> Any:
        raise OperationalError("the database went away")

    monkeypatch.setattr(app.recorder, "events_at", unreadable)
    fault.arm(mode)
    with pytest.raises(OutcomeUnknown):
        app.place_order(CLIENT, gig, "standard", order_id=uuid4())


def test_a_store_failure_before_the_commit_is_still_not_recorded(
    app: LedgerApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing stored: the failure is the store's (503 ``not_ready``), not unknown."""
    gig = open_gig(app)
    before = max_position(app)

    def down(*_: Any, **__: Any) -> Any:
        raise OperationalError("connection refused")

    monkeypatch.setattr(app.recorder, "insert_events", down)
    with pytest.raises(OperationalError):
        app.place_order(CLIENT, gig, "standard", order_id=uuid4())
    assert max_position(app) == before


def test_a_create_whose_id_holds_other_events_is_still_a_conflict(app: LedgerApp) -> None:
    gig = open_gig(app)
    order_id: UUID = placed_order(app, gig)
    with pytest.raises(Conflict):
        app.place_order(CLIENT, gig, "standard", order_id=order_id)
