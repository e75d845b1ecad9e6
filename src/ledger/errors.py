"""Every error a command or query of the ledger can raise, in one tree.

    LedgerError
     ├── NotFound             the thing does not exist, or is not the caller's to see
     ├── Forbidden            the caller may see it but may not do this
     ├── InvalidTransition    not allowed in the aggregate's current status or stage
     ├── Conflict             clashes with what is already stored
     │    ├── VersionMismatch the caller's expected version is not the current one
     │    └── AlreadyApplied  this gateway notification already had its effect
     ├── Busy                 the aggregate changed too often while the command ran; retry
     ├── OutcomeUnknown       the store failed around the commit and cannot say if it held
     └── ValidationFailed     a value is malformed or out of range
          └── InvalidCursor   a page cursor that names no item of the list

Only the edges (``api``) translate these into HTTP answers; the domain never speaks HTTP.
Each error has a stable machine ``code`` that the API returns as the problem's ``code``.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger raises on purpose."""

    code = "ledger_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(LedgerError):
    """Unknown id, or an id the caller has no right to know exists."""

    code = "not_found"


class Forbidden(LedgerError):
    """The caller can see the resource but this action is not theirs to take."""

    code = "forbidden"


class InvalidTransition(LedgerError):
    """The command is not allowed in the aggregate's current status or stage."""

    code = "invalid_transition"


class Conflict(LedgerError):
    """The command clashes with stored state (a second payment, a lost race)."""

    code = "conflict"


class VersionMismatch(Conflict):
    """The caller expected another version of the aggregate (``If-Match``)."""

    code = "version_mismatch"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected version {expected}, but the current version is {actual}")
        self.expected = expected
        self.actual = actual


class AlreadyApplied(Conflict):
    """A gateway notification (webhook id) that was already recorded: no second effect."""

    code = "already_applied"


class GigArchived(Conflict):
    """The gig is archived: it takes no new orders and no edits (orders placed go on)."""

    code = "gig_archived"


class Busy(LedgerError):
    """Lost the race for one aggregate every time: nothing was stored; try again."""

    code = "busy"


class OutcomeUnknown(LedgerError):
    """The store failed around the command's commit (its acknowledgement was lost) and what
    it holds cannot tell whether the command was recorded: the store could not be read, or
    it holds some of the command's events and not others. Retry under the same
    ``Idempotency-Key`` (answered from the receipt if it was recorded), or read the
    resource before acting again without one."""

    code = "outcome_unknown"


class ValidationFailed(LedgerError):
    """A value given to the ledger is malformed or out of range.

    ``field`` names the offending input where there is one, so the API can point at it.
    """

    code = "validation_failed"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.field = field


class InvalidCursor(ValidationFailed):
    """``startingAfter`` names no item of the list being paged."""

    code = "invalid_cursor"

    def __init__(self, cursor: str) -> None:
        super().__init__(
            f"startingAfter {cursor!r} is not an item of this list", field="startingAfter"
        )
