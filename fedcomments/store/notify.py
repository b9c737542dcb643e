"""Rows behind word of new comments: readers' addresses and what they subscribed to,
one-click links already used, and comments waiting for the owner's digest."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt, ts


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    confirm_sent_at: datetime | None
    confirmed_at: datetime | None
    unsubscribed_at: datetime | None


def _subscriber(r: sqlite3.Row) -> Subscriber:
    return Subscriber(id=r["id"], email=r["email"], confirm_sent_at=dt(r["confirm_sent_at"]),
                      confirmed_at=dt(r["confirmed_at"]),
                      unsubscribed_at=dt(r["unsubscribed_at"]))


async def subscriber_for(conn: Conn, email: str, now: datetime) -> Subscriber:
    """The subscriber row of an address, created on first sight."""
    await conn.execute("INSERT OR IGNORE INTO subscribers (email, created_at) VALUES (?, ?)",
                       (email, ts(now)))
    row = await conn.fetchone("SELECT * FROM subscribers WHERE email = ?", (email,))
    assert row is not None
    return _subscriber(row)


async def subscribe(conn: Conn, comment_id: int, subscriber_id: int, now: datetime) -> None:
    await conn.execute(
        "INSERT OR REPLACE INTO subscriptions (comment_id, subscriber_id, created_at) "
        "VALUES (?, ?, ?)", (comment_id, subscriber_id, ts(now)))


async def confirmations_since(conn: Conn, subscriber_id: int, since: datetime) -> int:
    """How many confirmation requests went to the address since `since`."""
    row = await conn.fetchone(
        "SELECT COUNT(*) FROM subscriptions WHERE subscriber_id = ? AND confirm_sent_at >= ?",
        (subscriber_id, ts(since)))
    return int(row[0]) if row else 0


async def confirmation_sent(conn: Conn, subscriber_id: int, comment_id: int,
                            now: datetime) -> None:
    await conn.execute("UPDATE subscribers SET confirm_sent_at = ? WHERE id = ?",
                       (ts(now), subscriber_id))
    await conn.execute("UPDATE subscriptions SET confirm_sent_at = ? WHERE comment_id = ?",
                       (ts(now), comment_id))


async def confirm(conn: Conn, subscriber_id: int, comment_id: int, now: datetime
                  ) -> bool | None:
    """Confirm the address's subscription to replies to `comment_id`; False when it was
    confirmed already, None when there is no such subscription (any more)."""
    row = await conn.fetchone(
        "SELECT confirmed_at FROM subscriptions WHERE comment_id = ? AND subscriber_id = ?",
        (comment_id, subscriber_id))
    if row is None:
        return None
    if row[0] is not None:
        return False
    await conn.execute("UPDATE subscriptions SET confirmed_at = ? WHERE comment_id = ?",
                       (ts(now), comment_id))
    await conn.execute(
        "UPDATE subscribers SET confirmed_at = COALESCE(confirmed_at, ?), "
        "unsubscribed_at = NULL WHERE id = ?", (ts(now), subscriber_id))
    return True


async def unsubscribe(conn: Conn, subscriber_id: int, now: datetime) -> bool:
    """Forget every subscription of the address; a new one must be confirmed again."""
    await conn.execute("DELETE FROM subscriptions WHERE subscriber_id = ?", (subscriber_id,))
    return await conn.rowcount(
        "UPDATE subscribers SET confirmed_at = NULL, unsubscribed_at = ? "
        "WHERE id = ? AND unsubscribed_at IS NULL", (ts(now), subscriber_id)) > 0


async def confirmed_subscriber(conn: Conn, comment_id: int) -> Subscriber | None:
    """Who asked to hear of replies to this comment, and confirmed it."""
    row = await conn.fetchone(
        "SELECT s.* FROM subscriptions x JOIN subscribers s ON s.id = x.subscriber_id "
        "WHERE x.comment_id = ? AND x.confirmed_at IS NOT NULL", (comment_id,))
    return _subscriber(row) if row else None


# --- one-click links -------------------------------------------------------------------


async def use_link(conn: Conn, nonce: str, now: datetime, expires_at: datetime) -> bool:
    """Spend a link's nonce; False when it was spent before."""
    return await conn.rowcount(
        "INSERT OR IGNORE INTO used_links (nonce, used_at, expires_at) VALUES (?, ?, ?)",
        (nonce, ts(now), ts(expires_at))) > 0


async def link_used(conn: Conn, nonce: str) -> bool:
    row = await conn.fetchone("SELECT 1 FROM used_links WHERE nonce = ?", (nonce,))
    return row is not None


async def prune_links(conn: Conn, now: datetime) -> int:
    """Spent links past their expiry can no longer be replayed: forget them."""
    return await conn.rowcount("DELETE FROM used_links WHERE expires_at < ?", (ts(now),))


# --- the digest ------------------------------------------------------------------------


async def add_digest_item(conn: Conn, comment_id: int, now: datetime) -> None:
    await conn.execute(
        "INSERT OR IGNORE INTO digest_items (comment_id, created_at) VALUES (?, ?)",
        (comment_id, ts(now)))


async def oldest_digest_item(conn: Conn) -> datetime | None:
    row = await conn.fetchone("SELECT MIN(created_at) FROM digest_items")
    return dt(row[0]) if row else None


async def take_digest_items(conn: Conn) -> list[int]:
    """Every comment waiting for the digest, oldest first; the list is emptied."""
    rows = await conn.fetchall(
        "DELETE FROM digest_items RETURNING comment_id, created_at")
    return [int(r[0]) for r in sorted(rows, key=lambda r: (r[1], r[0]))]
