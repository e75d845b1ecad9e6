"""Reading the whole notification log in batches, for passes over all of it (exports, the
as-of replay's copy)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from eventsourcing.persistence import ApplicationRecorder, Notification

BATCH = 10_000


def log_batches(
    recorder: ApplicationRecorder, head: int, batch: int = BATCH
) -> Iterator[Sequence[Notification]]:
    """The log up to ``head``, ``batch`` events at a time, oldest first. The next batch is
    read in a thread while the caller works on this one: the database and the driver
    (which lets go of the GIL while it waits) work meanwhile."""

    def read(start: int) -> Sequence[Notification]:
        return recorder.select_notifications(
            start=start, limit=batch, stop=head, inclusive_of_start=False
        )

    if head <= 0:
        return
    with ThreadPoolExecutor(1, thread_name_prefix="ledger-log") as reader:
        pending = reader.submit(read, 0)
        while True:
            rows = pending.result()
            if not rows:
                return
            more = len(rows) == batch and rows[-1].id < head
            if more:
                pending = reader.submit(read, rows[-1].id)
            yield rows
            if not more:
                return
