"""Aggregate counts for NodeInfo and listings."""

from __future__ import annotations

import json

from fedcomments.store.conn import Conn


async def count_public_comments(conn: Conn) -> int:
    row = await conn.fetchone(
        "SELECT COUNT(*) FROM comments WHERE status = 'approved' "
        "AND visibility IN ('public', 'unlisted')"
    )
    return int(row[0]) if row else 0


async def post_counts(conn: Conn, post_ids: list[int] | None = None
                      ) -> dict[int, dict[str, int]]:
    """Per post (every one, or those of `post_ids`): public/pending/private comments and
    likes/boosts, in two grouped queries."""
    where = "" if post_ids is None else "WHERE post_id IN (SELECT value FROM json_each(?)) "
    params = () if post_ids is None else (json.dumps(post_ids),)
    counts: dict[int, dict[str, int]] = {}

    def slot(post_id: int) -> dict[str, int]:
        return counts.setdefault(post_id, {"comments": 0, "pending": 0, "private": 0,
                                           "likes": 0, "boosts": 0})

    rows = await conn.fetchall(
        "SELECT post_id, "
        "SUM(status = 'approved' AND visibility IN ('public', 'unlisted')), "
        "SUM(status = 'pending' AND visibility IN ('public', 'unlisted')), "
        "SUM(visibility IN ('followers', 'direct') AND status != 'deleted') "
        f"FROM comments {where}GROUP BY post_id", params
    )
    for post_id, public, pending, private in rows:
        entry = slot(post_id)
        entry.update(comments=public or 0, pending=pending or 0, private=private or 0)
    rows = await conn.fetchall(
        "SELECT post_id, SUM(type = 'like'), SUM(type = 'announce') FROM reactions "
        f"{where}GROUP BY post_id", params
    )
    for post_id, likes, boosts in rows:
        slot(post_id).update(likes=likes or 0, boosts=boosts or 0)
    return counts


async def public_comment_counts(conn: Conn, post_ids: list[int]) -> dict[int, int]:
    """Approved public and unlisted comments of some posts (what their threads count)."""
    if not post_ids:
        return {}
    marks = ", ".join("?" * len(post_ids))
    rows = await conn.fetchall(
        f"SELECT post_id, COUNT(*) FROM comments WHERE post_id IN ({marks}) "
        "AND status = 'approved' AND visibility IN ('public', 'unlisted') GROUP BY post_id",
        post_ids)
    return {int(r[0]): int(r[1]) for r in rows}
