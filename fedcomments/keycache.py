"""In-memory cache of verified senders' keys: the inbox's hottest read, kept off the database.

Entries live at most `ttl` (by the runtime's clock) and the whole cache is dropped once a
commit of this process has written an actor or a key (the store counts those commits), so
what it serves is never older than the last local change. Another process's changes (a
sibling HTTP worker, the CLI) move the database's change counter, which the runtime
checks twice a second (Runtime.refresh_shared); the TTL bounds everything else.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Generic, TypeVar

V = TypeVar("V")

DEFAULT_TTL = timedelta(seconds=60)
DEFAULT_SIZE = 10_000


class KeyCache(Generic[V]):
    """A bounded least-recently-used map from key id to value, with an age limit, valid for
    one version of the data it copies (the caller passes Database.version of its table)."""

    def __init__(self, *, ttl: timedelta = DEFAULT_TTL, size: int = DEFAULT_SIZE) -> None:
        self.ttl = ttl
        self.size = size
        self._items: OrderedDict[str, tuple[datetime, V]] = OrderedDict()
        self._version = 0

    def _current(self, version: int) -> bool:
        """Drop everything when a newer version shows up; False for an older one."""
        if version > self._version:
            self._items.clear()
            self._version = version
        return version == self._version

    def get(self, key_id: str, now: datetime, version: int) -> V | None:
        found = self._items.get(key_id) if self._current(version) else None
        if found is None:
            return None
        stored_at, value = found
        if not stored_at <= now < stored_at + self.ttl:
            del self._items[key_id]
            return None
        self._items.move_to_end(key_id)
        return value

    def put(self, key_id: str, value: V, now: datetime, version: int) -> None:
        """Keep `value`, read from the database at `version`; dropped if that is old."""
        if not self._current(version):
            return
        self._items[key_id] = (now, value)
        self._items.move_to_end(key_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)
