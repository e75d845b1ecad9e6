"""Copying a store's events up to a moment into a temporary SQLite store (``as_of``):
bytes and notification ids unchanged, each event judged by its own time, read as cheaply as
is exact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Notification
from eventsourcing.sqlite import SQLiteApplicationRecorder

from ledger.service import LedgerApp
from projections.log import log_batches
from projections.runner import no_gc_pauses

_TIMESTAMP_PREFIX = b'{"timestamp":{"_type_":"datetime_iso","_data_":"'


@dataclass(frozen=True)
class Copied:
    events: int
    position: int
    head: int
    later: int


Row = tuple[int, str, int, str, bytes]
"""A stored event as the SQLite events table holds it: notification id, aggregate id,
version, topic, state."""


def copy_until(
    app: LedgerApp,
    target: LedgerApp,
    moment: datetime,
    progress: Callable[[int, int], None] | None = None,
    head: int | None = None,
    also: Callable[[list[Row]], None] | None = None,
) -> Copied:
    """Copy ``app``'s events of time ``moment`` or earlier (up to ``head``, by default the
    head now) into ``target``, bytes and notification ids unchanged, in log order (the
    rules are the module's). Each batch kept is also handed to ``also``;
    ``progress(position, head)`` after each batch."""
    insert = inserter(target)
    event_time = event_time_reader(app)
    if head is None:
        head = app.recorder.max_notification_id() or 0
    cut: set[Any] = set()
    events, last, later = 0, 0, 0
    with no_gc_pauses():
        for batch in log_batches(app.recorder, head):
            kept = []
            for stored in batch:
                if stored.originator_id in cut or event_time(stored) > moment:
                    cut.add(stored.originator_id)
                else:
                    kept.append(stored)
            later += len(batch) - len(kept)
            if kept:
                if not events:
                    _check_decodes(app, target, kept[0])
                rows = [
                    (n.id, _stored_id(n.originator_id), n.originator_version, n.topic, n.state)
                    for n in kept
                ]
                insert(rows)
                events += len(kept)
                last = kept[-1].id
            if progress is not None:
                progress(batch[-1].id, head)
            if kept and also is not None:
                also(rows)
    if progress is not None:
        progress(head, head)
    return Copied(events, last, head, later)


def inserter(target: LedgerApp) -> Callable[[list[Row]], None]:
    """Inserts rows into ``target``'s events table in one transaction, each with its own
    notification id (the SQLite recorder's is the table's ``rowid``)."""
    recorder = target.recorder
    if not isinstance(recorder, SQLiteApplicationRecorder):
        raise TypeError("the replay's stores are SQLite")
    datastore = recorder.datastore
    statement = (
        f"INSERT INTO {recorder.events_table_name}"
        " (rowid, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)"
    )

    def insert(rows: list[Row]) -> None:
        with datastore.transaction(commit=True) as cursor:
            cursor.executemany(statement, rows)

    return insert


def _stored_id(originator_id: UUID | str) -> str:
    """As the SQLite recorder stores an aggregate id (``SQLiteAggregateRecorder``)."""
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


def _check_decodes(app: LedgerApp, target: LedgerApp, stored: Notification) -> None:
    """The temporary store reads the source's bytes as the source does (a cipher key or
    compressor that differed would only show later, in the middle of the projections)."""
    try:
        copy, original = target.mapper.to_domain_event(stored), app.mapper.to_domain_event(stored)
    except Exception as error:
        raise RuntimeError(f"the temporary store cannot decode the events: {error}") from error
    if type(copy) is not type(original) or vars(copy).keys() != vars(original).keys():
        raise RuntimeError("the temporary store decodes the events differently")


def event_time_reader(app: LedgerApp) -> Callable[[Notification], datetime]:
    """The time of a stored event, read as cheaply as is exact.

    Decoding a whole event (every nested value through the transcoder's hooks, then the
    event object) costs several times what the copy itself does; the time alone is the
    first field of the JSON the library's transcoder writes, so when the bytes are plain
    JSON it is sliced out and parsed as the transcoder would (``datetime_iso`` is
    ``datetime.fromisoformat``). Anything else -- compressed or encrypted bytes, another
    transcoder, another field order -- is decoded in full.
    """
    mapper = app.mapper
    decode = mapper.to_domain_event
    plain = (
        type(mapper.transcoder) is JSONTranscoder
        and mapper.compressor is None
        and mapper.cipher is None
    )
    prefix, size = _TIMESTAMP_PREFIX, len(_TIMESTAMP_PREFIX)
    parse = datetime.fromisoformat

    def decoded(stored: Notification) -> datetime:
        moment: datetime = getattr(decode(stored), "timestamp")  # noqa: B009 (any event type)
        return moment

    def event_time(stored: Notification) -> datetime:
        state = stored.state
        if plain and state.startswith(prefix):
            end = state.find(b'"', size)
            if end > 0:
                return parse(state[size:end].decode())
        return decoded(stored)

    return event_time


def no_syncs(target: LedgerApp) -> None:
    """Let the temporary store's commits skip ``fsync`` (a crash loses nothing of value: it
    is deleted anyway). Set on the connection the replay uses (it runs in one thread, so
    the pool hands the same one back); any other would only be slower, not different."""
    recorder = target.recorder
    assert isinstance(recorder, SQLiteApplicationRecorder)
    with recorder.datastore.get_connection(commit=True) as connection:
        connection.cursor().execute("PRAGMA synchronous = OFF")
