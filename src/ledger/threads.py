"""A thread of its own fed through a queue: what the writers that gather concurrent work
into one transaction share (group commit's ``GroupCommit``, the idempotency keys'
``KeyWriter``).

It starts with the first item handed to it, so a process that never writes starts no
thread; ``close`` refuses further items, queues the stop sign (``None``) behind what was
handed over, and waits for the thread to take it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Generic, TypeVar

from eventsourcing.persistence import OperationalError

T = TypeVar("T")


class Fed(Generic[T]):
    """The thread ``run`` (named ``name``), reading ``queue`` until it meets ``None``."""

    def __init__(self, name: str, run: Callable[[], None], closed: str) -> None:
        """``closed``: the message of the ``OperationalError`` an item handed over after
        ``close`` raises (callers answer it as the store's failure: 503)."""
        self.queue: SimpleQueue[T | None] = SimpleQueue()
        self._name, self._run, self._closed_message = name, run, closed
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def put(self, item: T) -> None:
        """Hand ``item`` to the thread (starting it).

        Raises: OperationalError, once closed.
        """
        with self._lock:
            self.check_open()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self.queue.put(item)

    def check_open(self) -> None:
        """Raises: OperationalError, once closed."""
        if self._closed:
            raise OperationalError(self._closed_message)

    def here(self) -> bool:
        """Whether the caller runs in the thread itself."""
        return threading.current_thread() is self._thread

    def close(self) -> None:
        """Refuse further items; let the thread take what was handed over, then stop."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            self.queue.put(None)
            if thread is not threading.current_thread():
                thread.join()
