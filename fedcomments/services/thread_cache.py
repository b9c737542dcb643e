"""A small in-process cache of rendered threads and the two checks that keep it exact.

SQLite's `PRAGMA data_version` changes whenever another connection commits (our writer
connection, or another process such as the CLI): while it holds, nothing changed at all.
When it moved, the post's `thread_version` (kept by triggers) tells whether this thread
did; deliveries and other posts' comments then cost one small query, not a rebuild.
Threads are filed by post, so every spelling of a post's address shares one rendering.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
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
    stamp: int
    value: V
    #: What it costs to keep (the serialised bytes and the objects behind them).
    size: int = 0


class ThreadCache(Generic[V]):
    """Rendered threads by post id, and which post each request key names (both LRU,
    threads also within a memory budget).

    Keys are what requests name the post by (an id, a permalink with or without its slash
    or a #fragment): many keys share one rendered thread.
    """

    def __init__(self, size: int = 512, keys: int = 8192, max_bytes: int = 64 << 20) -> None:
        self.size = size
        self.keys = keys
        self.max_bytes = max_bytes
        self.version = DataVersion()
        self._bytes = 0
        self._posts: OrderedDict[str, int] = OrderedDict()
        self._entries: OrderedDict[int, Entry[V]] = OrderedDict()
        self._building: dict[int, tuple[int, asyncio.Future[V]]] = {}

    def post_of(self, key: str) -> int | None:
        return self._posts.get(key)

    def remember(self, key: str, post_id: int) -> None:
        self._posts[key] = post_id
        self._posts.move_to_end(key)
        while len(self._posts) > self.keys:
            self._posts.popitem(last=False)

    def get(self, post_id: int) -> Entry[V] | None:
        hit = self._entries.get(post_id)
        if hit is not None:
            self._entries.move_to_end(post_id)
        return hit

    def put(self, post_id: int, entry: Entry[V]) -> None:
        old = self._entries.get(post_id)
        if old is not None and old.stamp > entry.stamp:
            return  # a slower rendering of an older state finished last
        if entry.size > self.max_bytes:
            return
        if old is not None:
            self._bytes -= old.size
        self._entries[post_id] = entry
        self._entries.move_to_end(post_id)
        self._bytes += entry.size
        while len(self._entries) > self.size or self._bytes > self.max_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.size

    async def build_once(self, post_id: int, stamp: int, build: Callable[[], Awaitable[V]],
                         stale: V | None = None) -> V:
        """One rendering per post at a time.

        Requests that saw the same stamp share it. While an older state is still being
        rendered, a request that has a previous rendering gets that one (a busy thread
        that changes every second is then rendered back to back, never in a pile-up);
        the next request after it starts the newer one.
        """
        running = self._building.get(post_id)
        if running is not None:
            running_stamp, future = running
            if running_stamp == stamp:
                return await asyncio.shield(future)
            if stale is not None:
                return stale
        future = asyncio.ensure_future(build())
        self._building[post_id] = (stamp, future)

        def done(_: object) -> None:
            if self._building.get(post_id, (None, None))[1] is future:
                del self._building[post_id]

        future.add_done_callback(done)
        return await asyncio.shield(future)
