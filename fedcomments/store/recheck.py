"""Queries behind the recheck of stored remote replies: which are due, and when next.

The schedule lives in `comment_checks`, apart from `comments`, so that a check which
changes nothing leaves the thread's stamp and its rendered fragments alone. Replies get
their first check from `schedule_new`, run by each pass, not by the inbox's writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt, dt_required, ts

_SELECT = ("SELECT c.id, c.ap_id, c.created_at, k.checked_at FROM comments c "
           "LEFT JOIN comment_checks k ON k.comment_id = c.id ")
_CHECKABLE = "c.origin = 'remote' AND c.status != 'deleted' AND c.ap_id IS NOT NULL"


@dataclass(frozen=True)
class Due:
    id: int
    ap_id: str
    created_at: datetime
    checked_at: datetime | None


def _due(r: Any) -> Due:
    return Due(int(r[0]), str(r[1]), dt_required(r[2]), dt(r[3]))


async def schedule_new(conn: Conn) -> int:
    """Give the remote replies stored since the last call their first check, an hour
    after they were stored. Comment ids only grow past the highest one scheduled (a
    deleted one's id may be reused, and is then new too)."""
    return await conn.rowcount(
        "INSERT OR IGNORE INTO comment_checks (comment_id, next_check_at) "
        "SELECT id, strftime('%Y-%m-%dT%H:%M:%fZ', created_at, '+1 hour') FROM comments "
        "WHERE id > (SELECT COALESCE(MAX(comment_id), 0) FROM comment_checks) "
        "AND origin = 'remote' AND status != 'deleted' AND ap_id IS NOT NULL")


async def due(conn: Conn, now: datetime, *, limit: int) -> list[Due]:
    """Remote replies whose next check has come, the most recently stored first (the
    schedule checks young replies often, so they are the ones most likely to change)."""
    rows = await conn.fetchall(
        f"{_SELECT}WHERE k.next_check_at <= ? AND {_CHECKABLE} "
        "ORDER BY c.created_at DESC, c.id DESC LIMIT ?", (ts(now), limit))
    return [_due(r) for r in rows]


async def selected(conn: Conn, *, comment_ids: list[int] | None = None,
                   post_id: int | None = None, limit: int) -> list[Due]:
    """Remote replies to recheck now: these ids, or a post's, or all (newest first)."""
    where: list[str] = [_CHECKABLE]
    params: list[object] = []
    if comment_ids is not None:
        where.append("c.id IN (SELECT value FROM json_each(?))")
        params.append("[" + ",".join(str(int(i)) for i in comment_ids) + "]")
    if post_id is not None:
        where.append("c.post_id = ?")
        params.append(post_id)
    rows = await conn.fetchall(
        f"{_SELECT}WHERE {' AND '.join(where)} ORDER BY c.created_at DESC, c.id DESC LIMIT ?",
        (*params, limit))
    return [_due(r) for r in rows]


async def schedule(conn: Conn, comment_id: int, *, checked_at: datetime | None,
                   next_at: datetime) -> None:
    """Record a check (`checked_at`; None after a failed try: only the next one is set)."""
    await conn.execute(
        "INSERT INTO comment_checks (comment_id, checked_at, next_check_at) "
        "SELECT ?, ?, ? WHERE EXISTS (SELECT 1 FROM comments WHERE id = ?) "
        "ON CONFLICT (comment_id) DO UPDATE SET "
        "checked_at = COALESCE(excluded.checked_at, checked_at), "
        "next_check_at = excluded.next_check_at",
        (comment_id, ts(checked_at), ts(next_at), comment_id))
