"""``Recent``: a bounded map of what was used last, for the caches of one process.

The ledger keeps three such maps (the aggregates commands decide on, the versions the writer
wrote, the tokens already verified): each drops its least recently used entry once full. Not
locked: each owner already holds a lock of its own around it.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


class Recent(OrderedDict[K, V]):
    """At most ``size`` entries, the least recently used dropped first."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def use(self, key: K) -> V | None:
        """The entry of ``key``, if kept, which becomes the most recently used."""
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def keep(self, key: K, value: V) -> None:
        """Keep ``value`` under ``key`` as the most recently used, dropping the least."""
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
