"""The order's transition table (docs/architecture.md, "The order's state machine"): every
state by every command.

A step is ``"action:who"``: one command taken by one caller. A state is reached by replaying
steps on a fresh order. In the matrix below a command either leads where the cell says or is
refused with ``InvalidTransition``; a refused command stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from ledger.actors import Actor, Caller
from ledger.domain.order import MAX_CANCELLATION_REQUESTS, PARTIES, Order
from ledger.domain.payment import Payment, payment_id_for
from ledger.domain.values import CancelReason, DisputeOutcome, Package
from ledger.errors import (
    Conflict,
    Forbidden,
    InvalidTransition,
    LedgerError,
    NotFound,
    ValidationFailed,
    VersionMismatch,
)
from ledger.money import CURRENCY, fee_of
from ledger.service import LedgerApp

CALLERS = {
    "client": Caller("client-1"),
    "freelancer": Caller("freelancer-1"),
    "stranger": Caller("stranger-1"),
    **{role: Caller(f"{role}-1", frozenset({role})) for role in ("support", "auditor", "admin")},
    "gateway": Caller.system("gateway"),
    "clock": Caller.system("clock"),
}
CLIENT, FREELANCER, SUPPORT = CALLERS["client"], CALLERS["freelancer"], CALLERS["support"]
PRICE, DELIVERY_DAYS, SPLIT_REFUND = 10_000, 3, 2_500

Action = Callable[[LedgerApp, UUID, Caller], Any]
ACTIONS: dict[str, Action] = {
    "create_payment": lambda a, o, c: a.create_payment(c, o, "credit_card"),
    "confirm_payment": lambda a, o, c: a.confirm_payment(
        c, payment_id_for(o), "tx-1", payment_of(a, o).amount, CURRENCY
    ),
    "fail_payment": lambda a, o, c: a.fail_payment(c, payment_id_for(o), "card declined"),
    "accept_order": lambda a, o, c: a.accept_order(c, o),
    "submit_requirements": lambda a, o, c: a.submit_requirements(c, o, "use blue"),
    "deliver_order": lambda a, o, c: a.deliver_order(c, o, "here it is"),
    "request_revision": lambda a, o, c: a.request_revision(c, o, "bigger"),
    "complete_order": lambda a, o, c: a.complete_order(c, o),
    "request_cancellation": lambda a, o, c: a.request_cancellation(c, o, "changed plans"),
    "withdraw_cancellation": lambda a, o, c: a.withdraw_cancellation(c, o),
    "decline_cancellation": lambda a, o, c: a.decline_cancellation(c, o),
    "accept_cancellation": lambda a, o, c: a.accept_cancellation(c, o),
    "cancel_client_withdrew": lambda a, o, c: a.cancel_order(c, o, CancelReason.CLIENT_WITHDREW),
    "cancel_policy_violation": lambda a, o, c: a.cancel_order(
        c, o, CancelReason.POLICY_VIOLATION, "spam"
    ),
    "open_dispute": lambda a, o, c: a.open_dispute(c, o, "not what I ordered"),
    "resolve_release": lambda a, o, c: a.resolve_dispute(c, o, DisputeOutcome.RELEASE),
    "resolve_refund": lambda a, o, c: a.resolve_dispute(c, o, DisputeOutcome.REFUND),
    "resolve_split": lambda a, o, c: a.resolve_dispute(c, o, DisputeOutcome.SPLIT, SPLIT_REFUND),
    "review_order": lambda a, o, c: a.review_order(c, o, 5, "great"),
}

# The matrix's columns, in groups: payment | the work | cancellation by agreement | direct
# cancellation | dispute | review. "requester" is the party who asked to cancel (the client
# when nobody did) and "other" the other party.
COMMANDS = """
    confirm_payment:gateway fail_payment:gateway |
    accept_order:freelancer submit_requirements:client deliver_order:freelancer
    request_revision:client complete_order:client complete_order:clock |
    request_cancellation:client request_cancellation:freelancer withdraw_cancellation:requester
    decline_cancellation:other accept_cancellation:other |
    cancel_client_withdrew:client cancel_policy_violation:support cancel_policy_violation:admin |
    open_dispute:client open_dispute:freelancer resolve_release:support resolve_refund:support
    resolve_split:support | review_order:client
""".replace("|", " ").split()

_PAID = "create_payment:client confirm_payment:gateway"
_STARTED = f"{_PAID} accept_order:freelancer"
_DELIVERED = f"{_STARTED} deliver_order:freelancer"
_DISPUTED = f"{_STARTED} open_dispute:client"
_ASKED = f"{_STARTED} request_cancellation:client"
STATES = {
    "pending": "create_payment:client",
    "awaiting_acceptance": _PAID,
    "in_progress": _STARTED,
    "delivered": _DELIVERED,
    "revision_requested": f"{_DELIVERED} request_revision:client",
    "cancellation_requested_by_client": _ASKED,
    "cancellation_requested_by_freelancer": f"{_STARTED} request_cancellation:freelancer",
    "in_dispute": _DISPUTED,
    "completed": f"{_DELIVERED} complete_order:client",
    "completed_reviewed": f"{_DELIVERED} complete_order:client review_order:client",
    "completed_by_release": f"{_DISPUTED} resolve_release:support",
    "completed_by_split": f"{_DISPUTED} resolve_split:support",
    "cancelled_client_withdrew": "create_payment:client cancel_client_withdrew:client",
    "cancelled_payment_failed": "create_payment:client fail_payment:gateway",
    "cancelled_mutual_agreement": f"{_ASKED} accept_cancellation:freelancer",
    "cancelled_policy_violation": f"{_STARTED} cancel_policy_violation:support",
    "cancelled_policy_unpaid": "create_payment:client cancel_policy_violation:admin",
    "cancelled_dispute_refund": f"{_DISPUTED} resolve_refund:support",
}
SETUPS = {**STATES, "placed": "", "withdrawn_unpaid": "cancel_client_withdrew:client"}

# "." invalid transition; "=" accepted, status and stage unchanged; otherwise the new stage.
OUTCOMES = {
    "A": ("processing", "awaiting_acceptance"),
    "I": ("processing", "in_progress"),
    "D": ("processing", "delivered"),
    "R": ("processing", "revision_requested"),
    "Q": ("processing", "cancellation_requested"),
    "S": ("processing", "in_dispute"),
    "C": ("completed", "closed"),
    "X": ("cancelled", "closed"),
}
MATRIX = """
    pending                               A X | . . . . . . | . . . . . | X X X | . . . . . | .
    awaiting_acceptance                   . . | I = D . . . | Q Q . . . | . X X | S S . . . | .
    in_progress                           . . | . = D . . . | Q Q . . . | . X X | S S . . . | .
    delivered                             . . | . = . R C C | Q Q . . . | . X X | S S . . . | .
    revision_requested                    . . | . = D . . . | Q Q . . . | . X X | S S . . . | .
    cancellation_requested_by_client      . . | . = . . . . | . . I I X | . X X | S S . . . | .
    cancellation_requested_by_freelancer  . . | . = . . . . | . . I I X | . X X | S S . . . | .
    in_dispute                            . . | . = . . . . | . . . . . | . X X | . . C X C | .
    completed                             . . | . . . . . . | . . . . . | . . . | . . . . . | =
    completed_reviewed                    . . | . . . . . . | . . . . . | . . . | . . . . . | .
    completed_by_release                  . . | . . . . . . | . . . . . | . . . | . . . . . | =
    completed_by_split                    . . | . . . . . . | . . . . . | . . . | . . . . . | =
    cancelled_client_withdrew             = . | . . . . . . | . . . . . | . . . | . . . . . | .
    cancelled_payment_failed              = . | . . . . . . | . . . . . | . . . | . . . . . | .
    cancelled_mutual_agreement            . . | . . . . . . | . . . . . | . . . | . . . . . | .
    cancelled_policy_violation            . . | . . . . . . | . . . . . | . . . | . . . . . | .
    cancelled_policy_unpaid               = . | . . . . . . | . . . . . | . . . | . . . . . | .
    cancelled_dispute_refund              . . | . . . . . . | . . . . . | . . . | . . . . . | .
"""
EXPECTED = {
    state: dict(zip(COMMANDS, cells, strict=True))
    for state, *cells in (row.replace("|", " ").split() for row in MATRIX.strip().splitlines())
}


# -- helpers ------------------------------------------------------------------------------------


def new_gig(app: LedgerApp, revisions: int = 2, price: int = PRICE) -> UUID:
    package = Package("basic", price, DELIVERY_DAYS, revisions, "One logo")
    return app.create_gig(FREELANCER, "Logo design", [package]).aggregate.id


def order_of(app: LedgerApp, order_id: UUID) -> Order:
    order = app.repository.get(order_id)
    assert isinstance(order, Order)
    return order


def payment_of(app: LedgerApp, order_id: UUID) -> Payment:
    payment = app.repository.get(payment_id_for(order_id))
    assert isinstance(payment, Payment)
    return payment


def step(app: LedgerApp, order_id: UUID, action_by: str) -> Any:
    action, who = action_by.split(":")
    if who in ("requester", "other"):
        asked = order_of(app, order_id).cancellation_by or "client"
        answering = "freelancer" if asked == "client" else "client"
        who = asked if who == "requester" else answering
    return ACTIONS[action](app, order_id, CALLERS[who])


def reach(app: LedgerApp, state: str, revisions: int = 2, price: int = PRICE) -> UUID:
    order_id = app.place_order(CLIENT, new_gig(app, revisions, price), "basic").aggregate.id
    for action_by in SETUPS[state].split():
        step(app, order_id, action_by)
    return order_id


def refused(
    app: LedgerApp, order_id: UUID, error: type[LedgerError], command: Callable[[], Any]
) -> LedgerError:
    """Assert ``command`` raises ``error`` and stores nothing (order version, log end)."""
    before = order_of(app, order_id).version, app.recorder.max_notification_id()
    with pytest.raises(error) as caught:
        command()
    assert (order_of(app, order_id).version, app.recorder.max_notification_id()) == before
    return caught.value


def refused_step(app: LedgerApp, order_id: UUID, error: type[LedgerError], action_by: str) -> Any:
    return refused(app, order_id, error, lambda: step(app, order_id, action_by))


# -- the table ----------------------------------------------------------------------------------


def status_stage_reason(state: str) -> tuple[str, str, str | None]:
    """What a state's name says about the order (e.g. ``cancelled_mutual_agreement``)."""
    head, _, rest = state.partition("_")
    if state == "pending":
        return "pending", "awaiting_payment", None
    if head == "completed":
        return head, "closed", None
    if head == "cancelled":
        return head, "closed", {"policy_unpaid": "policy_violation"}.get(rest, rest)
    return "processing", state.split("_by_")[0], None


@pytest.mark.parametrize("state", STATES)
def test_each_state_is_reached(memory_app: LedgerApp, state: str) -> None:
    order = order_of(memory_app, reach(memory_app, state))
    assert (order.status, order.stage, order.cancel_reason) == status_stage_reason(state)


@pytest.mark.parametrize(("state", "command"), [(s, c) for s in STATES for c in COMMANDS])
def test_transition(memory_app: LedgerApp, state: str, command: str) -> None:
    order_id = reach(memory_app, state)
    before = order_of(memory_app, order_id)
    cell = EXPECTED[state][command]
    if cell == ".":
        refused_step(memory_app, order_id, InvalidTransition, command)
        return
    end_before = memory_app.recorder.max_notification_id() or 0
    done = step(memory_app, order_id, command)
    order = order_of(memory_app, order_id)
    assert (order.status, order.stage) == OUTCOMES.get(cell, (before.status, before.stage))
    assert done.position == memory_app.recorder.max_notification_id() > end_before


@pytest.mark.parametrize(
    "answer", ["withdraw_cancellation:freelancer", "decline_cancellation:client"]
)
@pytest.mark.parametrize("state", ["awaiting_acceptance", "delivered", "revision_requested"])
def test_refused_request_resumes_stage(memory_app: LedgerApp, state: str, answer: str) -> None:
    order_id = reach(memory_app, state)
    step(memory_app, order_id, "request_cancellation:freelancer")
    step(memory_app, order_id, answer)
    assert order_of(memory_app, order_id).stage == state


@pytest.mark.parametrize(
    "answer", ["withdraw_cancellation:requester", "decline_cancellation:other"]
)
def test_cancellation_requests_are_capped(memory_app: LedgerApp, answer: str) -> None:
    """``MAX_CANCELLATION_REQUESTS`` requests in an order's life, by either party and
    whatever became of them; the next is refused and stores nothing, and a dispute is
    still open to both."""
    order_id = reach(memory_app, "in_progress")
    for turn in range(MAX_CANCELLATION_REQUESTS):
        step(memory_app, order_id, f"request_cancellation:{PARTIES[turn % 2]}")
        step(memory_app, order_id, answer)
    assert order_of(memory_app, order_id).cancellation_requests == MAX_CANCELLATION_REQUESTS
    for party in PARTIES:
        error = refused_step(
            memory_app, order_id, InvalidTransition, f"request_cancellation:{party}"
        )
        assert str(error) == (
            f"this order has had {MAX_CANCELLATION_REQUESTS} cancellation requests;"
            " open a dispute instead"
        )
    step(memory_app, order_id, "open_dispute:client")
    assert order_of(memory_app, order_id).stage == "in_dispute"


def test_the_count_survives_replay_and_an_older_state(memory_app: LedgerApp) -> None:
    """The count is rebuilt from the events, and a state kept before it existed (a read
    model's) reads 0."""
    order_id = reach(memory_app, "in_progress")
    step(memory_app, order_id, "request_cancellation:client")
    step(memory_app, order_id, "withdraw_cancellation:client")
    assert order_of(memory_app, order_id).cancellation_requests == 1  # replayed from the store
    older = order_of(memory_app, order_id)
    del older.__dict__["cancellation_requests"]
    assert older.cancellation_requests == 0


# -- who may act ------------------------------------------------------------------------------

# For each state, commands valid there and who alone may take them (stranger: NotFound;
# any other caller: Forbidden).
ACCESS = """
    placed               create_payment=client
    pending              confirm_payment=gateway fail_payment=gateway,clock
    pending              cancel_client_withdrew=client
    awaiting_acceptance  accept_order=freelancer
    in_progress          submit_requirements=client deliver_order=freelancer
    in_progress          request_cancellation=client,freelancer open_dispute=client,freelancer
    in_progress          cancel_policy_violation=support,admin
    delivered            request_revision=client complete_order=client,clock
    cancellation_requested_by_client  withdraw_cancellation=client
    cancellation_requested_by_client  decline_cancellation=freelancer accept_cancellation=freelancer
    in_dispute           resolve_release=support,admin resolve_refund=support,admin
    in_dispute           resolve_split=support,admin
    completed            review_order=client
"""
RULES = {
    action: (state, who.split(","))
    for state, *rules in (row.split() for row in ACCESS.strip().splitlines())
    for action, who in (rule.split("=") for rule in rules)
}
WRONG = [f"{a}:{w}" for a, (_, ok) in RULES.items() for w in CALLERS if w not in ok]
RIGHT = [f"{a}:{w}" for a, (_, ok) in RULES.items() for w in ok]


@pytest.mark.parametrize("action_by", WRONG)
def test_wrong_caller_is_refused(memory_app: LedgerApp, action_by: str) -> None:
    action, who = action_by.split(":")
    order_id = reach(memory_app, RULES[action][0])
    refused_step(memory_app, order_id, NotFound if who == "stranger" else Forbidden, action_by)


@pytest.mark.parametrize("action_by", RIGHT)
def test_right_caller_is_the_actor(memory_app: LedgerApp, action_by: str) -> None:
    action, who = action_by.split(":")
    order_id = reach(memory_app, RULES[action][0])
    done = step(memory_app, order_id, action_by)
    last_event = list(memory_app.events.get(done.aggregate.id))[-1]
    assert last_event.actor == Actor(CALLERS[who].id, who)


@pytest.mark.parametrize("requester", ["client", "freelancer"])
@pytest.mark.parametrize("answer", ["withdraw:other", "decline:requester", "accept:requester"])
def test_who_answers_a_request(memory_app: LedgerApp, requester: str, answer: str) -> None:
    """Only the party who asked withdraws; only the other one declines or accepts."""
    order_id = reach(memory_app, f"cancellation_requested_by_{requester}")
    verb, by = answer.split(":")
    other = "freelancer" if requester == "client" else "client"
    who = requester if by == "requester" else other
    refused_step(memory_app, order_id, Forbidden, f"{verb}_cancellation:{who}")


# -- rules beyond the table ---------------------------------------------------------------------


@pytest.mark.parametrize("revisions", [0, 1])
def test_revisions_run_out(memory_app: LedgerApp, revisions: int) -> None:
    order_id = reach(memory_app, "delivered", revisions)
    for _ in range(revisions):
        step(memory_app, order_id, "request_revision:client")
        step(memory_app, order_id, "deliver_order:freelancer")
    refused_step(memory_app, order_id, InvalidTransition, "request_revision:client")
    assert order_of(memory_app, order_id).revisions_used == revisions


def _refused_field(app: LedgerApp, order_id: UUID, field: str, command: Callable[[], Any]) -> None:
    error = refused(app, order_id, ValidationFailed, command)
    assert isinstance(error, ValidationFailed)
    assert error.field == field


@pytest.mark.parametrize("rating", [0, 6, -1, True, "5", 4.5, None])
def test_rating_is_one_to_five(memory_app: LedgerApp, rating: Any) -> None:
    order_id = reach(memory_app, "completed")
    review = lambda: memory_app.review_order(CLIENT, order_id, rating)  # noqa: E731
    _refused_field(memory_app, order_id, "rating", review)


@pytest.mark.parametrize(
    ("outcome", "refund"),
    [(DisputeOutcome.SPLIT, r) for r in (0, PRICE, None, -1, PRICE + 1, True)]
    + [(DisputeOutcome.RELEASE, 100), (DisputeOutcome.RELEASE, 0), (DisputeOutcome.REFUND, 100)],
)
def test_split_refund_bounds(memory_app: LedgerApp, outcome: DisputeOutcome, refund: Any) -> None:
    order_id = reach(memory_app, "in_dispute")
    resolve = lambda: memory_app.resolve_dispute(SUPPORT, order_id, outcome, refund)  # noqa: E731
    _refused_field(memory_app, order_id, "refundAmount", resolve)


@pytest.mark.parametrize("reason", [CancelReason.MUTUAL_AGREEMENT, CancelReason.DISPUTE_REFUND])
@pytest.mark.parametrize("who", ["client", "support"])
def test_no_direct_agreed_cancel(memory_app: LedgerApp, reason: CancelReason, who: str) -> None:
    """These reasons have their own commands (accept_cancellation, resolve_dispute)."""
    order_id = reach(memory_app, "in_progress")
    cancel = lambda: memory_app.cancel_order(CALLERS[who], order_id, reason)  # noqa: E731
    _refused_field(memory_app, order_id, "reason", cancel)


@pytest.mark.parametrize(
    ("who", "known_gig", "package_id", "error"),
    [
        ("freelancer", True, "basic", Conflict),
        ("client", False, "basic", NotFound),
        ("client", True, "premium", ValidationFailed),
    ],
)
def test_placing_an_order_is_refused(
    memory_app: LedgerApp, who: str, known_gig: bool, package_id: str, error: type[LedgerError]
) -> None:
    gig_id = new_gig(memory_app) if known_gig else uuid4()
    end = memory_app.recorder.max_notification_id()
    with pytest.raises(error):
        memory_app.place_order(CALLERS[who], gig_id, package_id)
    assert memory_app.recorder.max_notification_id() == end


def test_order_keeps_placed_terms(
    memory_app: LedgerApp,
) -> None:
    order_id = reach(memory_app, "placed")
    gig_id = order_of(memory_app, order_id).gig_id
    revised = [Package("basic", 3 * PRICE, 9, 0, "Two logos")]
    memory_app.revise_gig(FREELANCER, gig_id, packages=revised)
    memory_app.fee_rate_bp = 3_000
    placed = next(iter(memory_app.events.get(order_id)))
    assert placed.package == Package("basic", PRICE, DELIVERY_DAYS, 2, "One logo")
    assert placed.fee_rate_bp == 2_000
    for action_by in STATES["completed"].split():
        step(memory_app, order_id, action_by)
    order = order_of(memory_app, order_id)
    assert (order.total, order.package.delivery_days, order.fee) == (PRICE, DELIVERY_DAYS, 2_000)
    assert payment_of(memory_app, order_id).amount == PRICE
    later = memory_app.place_order(CLIENT, gig_id, "basic").aggregate
    assert (later.total, later.fee_rate_bp) == (3 * PRICE, 3_000)


@pytest.mark.parametrize(
    ("who", "error"), [("freelancer", VersionMismatch), ("stranger", NotFound)]
)
def test_stale_expected_version(memory_app: LedgerApp, who: str, error: type[LedgerError]) -> None:
    order_id = reach(memory_app, "awaiting_acceptance")
    version = order_of(memory_app, order_id).version
    caller = CALLERS[who]  # a stranger must not learn that the order exists, nor its version
    accept = lambda: memory_app.accept_order(caller, order_id, expected_version=version - 1)  # noqa: E731
    refused(memory_app, order_id, error, accept)
    done = memory_app.accept_order(FREELANCER, order_id, expected_version=version)
    assert done.aggregate.version == version + 1


STORIES = [
    f"{_PAID} request_cancellation:freelancer decline_cancellation:client accept_order:freelancer"
    " submit_requirements:client deliver_order:freelancer request_revision:client"
    " deliver_order:freelancer open_dispute:freelancer resolve_split:admin",
    f"{_STARTED} deliver_order:freelancer complete_order:clock review_order:client",
    f"{_PAID} request_cancellation:client accept_cancellation:freelancer",
    f"{_PAID} cancel_policy_violation:support",
    "create_payment:client cancel_client_withdrew:client confirm_payment:gateway",
    "create_payment:client fail_payment:clock",
]


@pytest.mark.parametrize("story", STORIES, ids=lambda s: s.rsplit(" ", 1)[-1])
def test_events_record_actor_and_time(memory_app: LedgerApp, clock: Any, story: str) -> None:
    order_id = reach(memory_app, "placed")
    acted = {clock.now: Actor(CLIENT.id, "client")}
    for action_by in story.split():
        clock.advance(hours=1)
        step(memory_app, order_id, action_by)
        who = action_by.split(":")[1]
        acted[clock.now] = Actor(CALLERS[who].id, who)
    payment_id = payment_id_for(order_id)
    events = [*memory_app.events.get(order_id), *memory_app.events.get(payment_id)]
    assert {event.timestamp for event in events} == set(acted)
    for event in events:
        assert event.actor == acted[event.timestamp], type(event).__qualname__


def test_due_date_counts_from_payment(memory_app: LedgerApp, clock: Any) -> None:
    order_id = reach(memory_app, "pending")
    clock.advance(days=2, hours=5)
    step(memory_app, order_id, "confirm_payment:gateway")
    assert order_of(memory_app, order_id).due_at == clock.now + timedelta(days=DELIVERY_DAYS)


@pytest.mark.parametrize(
    ("price", "rate_bp", "fee"),
    [(10_010, 2_500, 2_502), (10_030, 2_500, 2_508), (PRICE, 2_000, 2_000)],
)
def test_completion_fee_and_net(clock: Any, price: int, rate_bp: int, fee: int) -> None:
    app = LedgerApp({"PERSISTENCE_MODULE": "eventsourcing.popo"}, clock=clock, fee_rate_bp=rate_bp)
    order = order_of(app, reach(app, "completed", price=price))
    assert (order.fee, order.net) == (fee, price - fee)
    assert fee == fee_of(price, rate_bp)


@pytest.mark.parametrize(
    ("state", "refunded", "fee"),
    [
        ("cancelled_mutual_agreement", PRICE, 0),
        ("cancelled_policy_violation", PRICE, 0),
        ("cancelled_dispute_refund", PRICE, 0),
        ("completed_by_split", SPLIT_REFUND, fee_of(PRICE - SPLIT_REFUND, 2_000)),
        ("completed_by_release", 0, 2_000),
        ("completed", 0, 2_000),
        ("cancelled_client_withdrew", 0, 0),
        ("cancelled_policy_unpaid", 0, 0),
    ],
)
def test_refunds_on_the_payment(memory_app: LedgerApp, state: str, refunded: int, fee: int) -> None:
    order_id = reach(memory_app, state)
    order, payment = order_of(memory_app, order_id), payment_of(memory_app, order_id)
    assert (payment.refunded, order.refunded, order.fee) == (refunded, refunded, fee)
    assert order.net == order.paid_amount - refunded - fee
    events = memory_app.events.get(payment.id)
    refunds = [e.amount for e in events if type(e).__name__ == "RefundRecorded"]
    assert refunds == ([refunded] if refunded else [])


@pytest.mark.parametrize("state", ["cancelled_client_withdrew", "cancelled_policy_unpaid"])
def test_late_payment_is_refunded(memory_app: LedgerApp, state: str) -> None:
    order_id = reach(memory_app, state)
    order_version = order_of(memory_app, order_id).version
    step(memory_app, order_id, "confirm_payment:gateway")
    payment, order = payment_of(memory_app, order_id), order_of(memory_app, order_id)
    assert (payment.status, payment.transaction_id, payment.refunded) == ("success", "tx-1", PRICE)
    assert (order.status, order.version, order.paid_amount) == ("cancelled", order_version, 0)


@pytest.mark.parametrize("who", ["gateway", "clock"])
def test_failed_payment_cancels(memory_app: LedgerApp, who: str) -> None:
    order_id = reach(memory_app, "pending")
    step(memory_app, order_id, f"fail_payment:{who}")
    payment, order = payment_of(memory_app, order_id), order_of(memory_app, order_id)
    assert (payment.status, payment.failure_reason) == ("failed", "card declined")
    assert (order.status, order.cancel_reason, order.refunded) == ("cancelled", "payment_failed", 0)


@pytest.mark.parametrize(
    ("state", "error"),
    [("pending", Conflict)]
    + [(s, InvalidTransition) for s in ("awaiting_acceptance", "completed", "withdrawn_unpaid")],
)
def test_one_payment_per_order(memory_app: LedgerApp, state: str, error: type[LedgerError]) -> None:
    order_id = reach(memory_app, state)
    refused_step(memory_app, order_id, error, "create_payment:client")


@pytest.mark.parametrize(
    ("amount", "currency"), [(PRICE - 1, CURRENCY), (PRICE + 1, CURRENCY), (PRICE, "EUR")]
)
def test_confirmation_must_match(memory_app: LedgerApp, amount: int, currency: str) -> None:
    order_id = reach(memory_app, "pending")
    gateway, payment_id = CALLERS["gateway"], payment_id_for(order_id)
    confirm = lambda: memory_app.confirm_payment(gateway, payment_id, "tx-1", amount, currency)  # noqa: E731
    refused(memory_app, order_id, Conflict, confirm)
    assert payment_of(memory_app, order_id).status == "pending"
