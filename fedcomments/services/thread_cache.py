"""A small in-process cache of rendered threads and the two checks that keep it exact.

SQLite's `PRAGMA data_version` changes whenever another connection commits (our writer
connection, or another process such as the CLI): while it holds, nothing changed at all.
When it moved, the post's `thread_version` (kept by triggers) tells whether this thread
did; deliveries and other posts' comments then cost one small query, not a rebuild.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from fedcomments.store.db import Database

V = TypeVar("V")


class DataVersion:
    """`PRAGMA data_version`, read at most once at a time.

    A caller joins a read only if it started after the caller arrived; otherwise it waits
    for the next one. So a commit that finished before a request began is always seen,
    while a burst of concurrent requests shares one or two queries.
    """

    def __init__(self) -> None:
        self._started = 0
        self._generation = 0
        self._task: asyncio.Future[int] | None = None

    async def read(self, db: Database) -> int:
        arrived = self._started
        while True:
            task = self._task
            if task is not None and self._generation > arrived:
                return await asyncio.shield(task)
            if task is None or task.done():
                self._started += 1
                self._generation = self._started
                self._task = asyncio.ensure_future(db.data_version())
                return await asyncio.shield(self._task)
            await asyncio.wait([task])


@dataclass
class Entry(Generic[V]):
    """A rendered thread, with the database version and the post's thread stamp it saw."""

    version: int
    post_id: int
    stamp: int
    value: V


class ThreadCache(Generic[V]):
    """Rendered threads by request key, least recently used first out."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self.version = DataVersion()
        self._entries: OrderedDict[str, Entry[V]] = OrderedDict()

    def get(self, key: str) -> Entry[V] | None:
        hit = self._entries.get(key)
        if hit is not None:
            self._entries.move_to_end(key)
        return hit

    def put(self, key: str, entry: Entry[V]) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
