"""Delivery jobs: enqueued inside the caller's transaction, claimed with a lease."""

from __future__ import annotations

from datetime import datetime

from fedcomments.blocklist import host_of
from fedcomments.store.db import Conn
from fedcomments.store.rows import ts


async def enqueue(conn: Conn, *, activity_id: str, inbox: str, body: bytes, now: datetime) -> bool:
    """One job per (activity, inbox); True when it was new."""
    return await conn.rowcount(
        "INSERT OR IGNORE INTO deliveries (activity_id, inbox, host, body, status, "
        "next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
        (activity_id, inbox, host_of(inbox), body, ts(now), ts(now)),
    ) > 0


async def enqueue_many(conn: Conn, *, activity_id: str, inboxes: list[str], body: bytes,
                       now: datetime) -> int:
    count = 0
    for inbox in dict.fromkeys(inboxes):
        count += await enqueue(conn, activity_id=activity_id, inbox=inbox, body=body, now=now)
    return count
