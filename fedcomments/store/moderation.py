"""Queries for the owner's moderation views: comment listings with their post, reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fedcomments.model import Comment
from fedcomments.names import handle
from fedcomments.paging import Key
from fedcomments.store.actors import ACTOR_COLUMNS
from fedcomments.store.comments import COMMENT_COLUMNS, comment_from_row
from fedcomments.store.conn import Conn
from fedcomments.store.paging import after, split
from fedcomments.store.rows import dt_required, loads

#: --status filter → SQL condition. Private (followers-only, direct) comments are listed
#: apart whatever their moderation status: they can never be shown publicly.
STATUS_FILTERS: dict[str, str] = {
    "pending": "c.status = 'pending' AND c.visibility IN ('public', 'unlisted')",
    "approved": "c.status = 'approved' AND c.visibility IN ('public', 'unlisted')",
    "rejected": "c.status = 'rejected' AND c.visibility IN ('public', 'unlisted')",
    "private": "c.status != 'deleted' AND c.visibility IN ('followers', 'direct')",
    "all": "c.status != 'deleted'",
}


@dataclass(frozen=True)
class ListedComment:
    comment: Comment
    post_slug: str
    #: What the spam service said ("spam", "ham", "unknown", "queued"), if it was asked.
    spam: str | None = None


async def list_comments(conn: Conn, *, status: str, post_id: int | None, limit: int,
                        key: Key | None = None) -> tuple[list[ListedComment], Key | None]:
    """Newest first, after `key` (published, id) when given; `status` is a key of
    STATUS_FILTERS. Returns the page and the key of its last row when more follow."""
    where = [STATUS_FILTERS[status]]
    params: list[object] = []
    if post_id is not None:
        where.append("c.post_id = ?")
        params.append(post_id)
    if key is not None:
        where.append(after(["c.published_at", "c.id"], descending=True))
        params.extend(key)
    rows = await conn.fetchall(
        f"SELECT {COMMENT_COLUMNS}, {ACTOR_COLUMNS}, p.slug AS p_slug FROM comments c "
        "JOIN posts p ON p.id = c.post_id LEFT JOIN actors a ON a.id = c.actor_id "
        f"WHERE {' AND '.join(where)} ORDER BY c.published_at DESC, c.id DESC LIMIT ?",
        (*params, limit + 1),
    )
    return split(rows, limit, lambda r: ListedComment(comment_from_row(r), r["p_slug"]),
                 lambda r: (r["published_at"], r["id"]))


async def existing_comment_ids(conn: Conn, ids: list[int]) -> set[int]:
    marks = ", ".join("?" for _ in ids) or "NULL"
    rows = await conn.fetchall(f"SELECT id FROM comments WHERE id IN ({marks})", ids)
    return {int(r[0]) for r in rows}


async def reply_count(conn: Conn, comment_id: int) -> int:
    row = await conn.fetchone("SELECT COUNT(*) FROM comments WHERE parent_id = ?", (comment_id,))
    return int(row[0]) if row else 0


async def reaction_counts(conn: Conn, comment_id: int) -> dict[str, int]:
    rows = await conn.fetchall(
        "SELECT type, COUNT(*) FROM reactions WHERE comment_id = ? GROUP BY type ORDER BY type",
        (comment_id,))
    return {r[0]: int(r[1]) for r in rows}


async def post_slug(conn: Conn, post_id: int) -> str | None:
    row = await conn.fetchone("SELECT slug FROM posts WHERE id = ?", (post_id,))
    return row[0] if row else None


@dataclass(frozen=True)
class Report:
    id: int
    ap_id: str | None
    actor_ap_id: str | None
    actor_handle: str | None
    content: str
    object_ids: tuple[str, ...]
    created_at: datetime


async def list_reports(conn: Conn, *, limit: int = 1000, key: Key | None = None
                       ) -> tuple[list[Report], Key | None]:
    """Newest first, after `key` (received, id) when given."""
    where, params = ("WHERE " + after(["r.created_at", "r.id"], True), key) if key else ("", ())
    rows = await conn.fetchall(
        "SELECT r.id, r.ap_id, a.ap_id, a.username, a.domain, r.content, r.object_ids, "
        f"r.created_at FROM reports r LEFT JOIN actors a ON a.id = r.actor_id {where} "
        "ORDER BY r.created_at DESC, r.id DESC LIMIT ?", (*params, limit + 1))
    return split(rows, limit, lambda r: Report(
        id=r[0], ap_id=r[1], actor_ap_id=r[2], actor_handle=handle(r[3], r[4]) or r[2],
        content=r[5], object_ids=tuple(loads(r[6], [])), created_at=dt_required(r[7])),
        lambda r: (r[7], r[0]))
