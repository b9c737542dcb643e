"""Queries behind the replies collections: the public comments directly under a post or
under one comment."""

from __future__ import annotations

from dataclasses import dataclass

from fedcomments.store.conn import Conn

_PUBLIC = "status = 'approved' AND visibility IN ('public', 'unlisted')"


@dataclass(frozen=True)
class ReplyRef:
    id: int
    ap_id: str | None


async def children(conn: Conn, *, post_id: int, parent_id: int | None, limit: int,
                   offset: int = 0) -> tuple[int, list[ReplyRef]]:
    """(total, one page) of the public comments answering the post (`parent_id` None)
    or one comment, oldest first."""
    where = f"post_id = ? AND parent_id {'IS NULL' if parent_id is None else '= ?'} AND {_PUBLIC}"
    params: tuple[int, ...] = (post_id,) if parent_id is None else (post_id, parent_id)
    row = await conn.fetchone(f"SELECT COUNT(*) FROM comments WHERE {where}", params)
    total = int(row[0]) if row else 0
    rows = await conn.fetchall(
        f"SELECT id, ap_id FROM comments WHERE {where} ORDER BY published_at, id "
        "LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return total, [ReplyRef(int(r["id"]), r["ap_id"]) for r in rows]
