"""The in-memory key cache: age limit, size bound, and no stale value after a change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fedcomments.keycache import KeyCache

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_entries_expire_after_ttl() -> None:
    """Given a value stored at T0 with a 60 s TTL, then it is served at T0+59 s and gone
    at T0+60 s."""
    cache: KeyCache[str] = KeyCache(ttl=timedelta(seconds=60))
    cache.put("k", "v", T0, 0)
    assert cache.get("k", T0 + timedelta(seconds=59), 0) == "v"
    assert cache.get("k", T0 + timedelta(seconds=60), 0) is None
    assert len(cache) == 0


def test_entry_from_the_future_is_not_served() -> None:
    """Given a value stored at T0, when the clock reads earlier than T0, then it is not
    served (a clock set back must not stretch an entry's life)."""
    cache: KeyCache[str] = KeyCache()
    cache.put("k", "v", T0, 0)
    assert cache.get("k", T0 - timedelta(seconds=1), 0) is None


def test_least_recently_used_is_evicted() -> None:
    """Given a cache of 2, when a, b are stored, a is read, then c is stored, then b (the
    least recently used) is evicted and a, c remain."""
    cache: KeyCache[int] = KeyCache(size=2)
    cache.put("a", 1, T0, 0)
    cache.put("b", 2, T0, 0)
    assert cache.get("a", T0, 0) == 1
    cache.put("c", 3, T0, 0)
    assert (cache.get("a", T0, 0), cache.get("b", T0, 0), cache.get("c", T0, 0)) == (1, None, 3)


def test_newer_version_drops_older_values() -> None:
    """Given a value stored at version 0, when version 1 is asked for, then it is not
    served; a value read at version 0 and stored after that is dropped; one read at
    version 1 is kept."""
    cache: KeyCache[str] = KeyCache()
    cache.put("k", "v0", T0, 0)
    assert cache.get("k", T0, 1) is None
    cache.put("k", "stale", T0, 0)
    assert cache.get("k", T0, 1) is None
    cache.put("k", "fresh", T0, 1)
    assert cache.get("k", T0, 1) == "fresh"
