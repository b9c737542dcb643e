"""The thread cache on its own: one rendering per post at a time, newest wins, bounded."""

from __future__ import annotations

import asyncio

from fedcomments.services.thread_cache import Entry, ThreadCache


async def test_one_rendering_per_post_at_a_time() -> None:
    """Given a rendering of state 1 in progress, a request for state 1 joins it, a request
    for state 2 that has a previous rendering gets that at once, and once state 1 is done
    the next request renders state 2."""
    cache: ThreadCache[str] = ThreadCache()
    started, release = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    async def slow() -> str:
        calls.append("slow")
        started.set()
        await release.wait()
        return "state 1"

    async def fast() -> str:
        calls.append("fast")
        return "state 2"

    first = asyncio.ensure_future(cache.build_once(7, 1, slow))
    await started.wait()
    assert await cache.build_once(7, 2, fast, stale="state 0") == "state 0"
    joined = asyncio.ensure_future(cache.build_once(7, 1, fast))
    release.set()
    assert await first == "state 1" and await joined == "state 1"
    assert calls == ["slow"]
    assert await cache.build_once(7, 2, fast, stale="state 1") == "state 2"
    assert calls == ["slow", "fast"]


def test_newest_state_wins_and_memory_is_bounded() -> None:
    """Given a slow rendering of an older state finishing last, the newer one stays; given
    a byte budget, the least recently used threads go first."""
    cache: ThreadCache[str] = ThreadCache(max_bytes=100)
    cache.put(1, Entry(0, 5, "new", size=10))
    cache.put(1, Entry(0, 4, "old", size=10))
    entry = cache.get(1)
    assert entry is not None and entry.value == "new"
    cache.put(2, Entry(0, 1, "two", size=60))
    cache.get(1)
    cache.put(3, Entry(0, 1, "three", size=60))
    assert cache.get(2) is None and cache.get(1) is not None and cache.get(3) is not None
    cache.put(4, Entry(0, 1, "huge", size=101))
    assert cache.get(4) is None
