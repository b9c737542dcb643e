"""The blog's feeds: their polling state, and which post each of their entries became."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt, dt_required, ts


@dataclass(frozen=True)
class FeedState:
    url: str
    added_at: datetime
    #: The last successful poll; None until the first one (which announces nothing old).
    polled_at: datetime | None
    etag: str | None
    last_modified: str | None
    #: Failed polls in a row.
    failures: int
    last_error: str | None
    next_poll_at: datetime


@dataclass(frozen=True)
class EntryLink:
    post_id: int
    fingerprint: str


_COLUMNS = ("url, added_at, polled_at, etag, last_modified, failures, last_error, "
            "next_poll_at")


async def feed_state(conn: Conn, url: str) -> FeedState | None:
    row = await conn.fetchone(f"SELECT {_COLUMNS} FROM blog_feeds WHERE url = ?", (url,))
    if row is None:
        return None
    return FeedState(row[0], dt_required(row[1]), dt(row[2]), row[3], row[4], int(row[5]),
                     row[6], dt_required(row[7]))


async def add_feed(conn: Conn, url: str, now: datetime) -> None:
    """Remember a feed from the moment it is first seen (a no-op when it is known)."""
    await conn.execute(
        "INSERT OR IGNORE INTO blog_feeds (url, added_at, next_poll_at) VALUES (?, ?, ?)",
        (url, ts(now), ts(now)))


async def polled(conn: Conn, url: str, *, now: datetime, next_poll: datetime,
                 etag: str | None, last_modified: str | None) -> None:
    """A successful poll: new validators, the failure streak ends."""
    await conn.execute(
        "UPDATE blog_feeds SET polled_at = ?, etag = ?, last_modified = ?, failures = 0, "
        "last_error = NULL, next_poll_at = ? WHERE url = ?",
        (ts(now), etag, last_modified, ts(next_poll), url))


async def failed(conn: Conn, url: str, *, error: str, next_poll: datetime) -> None:
    await conn.execute(
        "UPDATE blog_feeds SET failures = failures + 1, last_error = ?, next_poll_at = ? "
        "WHERE url = ?", (error[:1000], ts(next_poll), url))


async def entry_link(conn: Conn, feed_url: str, entry_id: str) -> EntryLink | None:
    row = await conn.fetchone(
        "SELECT post_id, fingerprint FROM feed_entries WHERE feed_url = ? AND entry_id = ?",
        (feed_url, entry_id))
    return EntryLink(int(row[0]), row[1]) if row else None


async def link_entry(conn: Conn, feed_url: str, entry_id: str, post_id: int,
                     fingerprint: str, now: datetime) -> None:
    """Record (or move) which post an entry is, and what the feed said of it."""
    await conn.execute(
        "INSERT INTO feed_entries (feed_url, entry_id, post_id, fingerprint, seen_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (feed_url, entry_id) DO UPDATE SET "
        "post_id = excluded.post_id, fingerprint = excluded.fingerprint, "
        "seen_at = excluded.seen_at",
        (feed_url, entry_id, post_id, fingerprint, ts(now)))
