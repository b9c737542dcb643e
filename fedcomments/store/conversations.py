"""Queries behind whole conversations: the items of a post's context collection, where each
remote reply's own conversation can be read (context, replies collection), what those
collections told us, and the replies they list that we do not hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt, ts

_PUBLIC = "status = 'approved' AND visibility IN ('public', 'unlisted')"


@dataclass(frozen=True)
class Item:
    id: int
    ap_id: str | None


async def public_items(conn: Conn, post_id: int) -> list[Item]:
    """Every public comment of a post, oldest first (what its context collection lists)."""
    rows = await conn.fetchall(
        f"SELECT id, ap_id FROM comments WHERE post_id = ? AND {_PUBLIC} "
        "ORDER BY published_at, id", (post_id,))
    return [Item(int(r[0]), r[1]) for r in rows]


async def set_links(conn: Conn, comment_id: int, *, context: str | None,
                    replies_url: str | None, replies_total: int | None) -> None:
    """Where a remote reply's conversation can be read, as its object said."""
    await conn.execute(
        "INSERT INTO comment_links (comment_id, context, replies_url, replies_total) "
        "VALUES (?, ?, ?, ?) ON CONFLICT (comment_id) DO UPDATE SET "
        "context = excluded.context, replies_url = excluded.replies_url, "
        "replies_total = COALESCE(excluded.replies_total, replies_total)",
        (comment_id, context, replies_url, replies_total))


async def set_replies_total(conn: Conn, comment_id: int, total: int) -> None:
    await conn.execute(
        "INSERT INTO comment_links (comment_id, replies_total) VALUES (?, ?) "
        "ON CONFLICT (comment_id) DO UPDATE SET replies_total = excluded.replies_total",
        (comment_id, total))


@dataclass(frozen=True)
class Seed:
    """A stored remote reply as a starting point for finding the ones we lack."""

    comment_id: int
    ap_id: str
    context: str | None
    replies_url: str | None
    replies_total: int | None
    children: int


_SEED = ("SELECT c.id, c.ap_id, l.context, l.replies_url, l.replies_total, "
         "(SELECT COUNT(*) FROM comments k WHERE k.parent_id = c.id) FROM comments c "
         "LEFT JOIN comment_links l ON l.comment_id = c.id")


async def seeds(conn: Conn, post_id: int, *, limit: int) -> list[Seed]:
    """The post's public remote replies, newest first, with how many replies we hold
    below each."""
    rows = await conn.fetchall(
        f"{_SEED} WHERE c.post_id = ? AND c.origin = 'remote' AND c.ap_id IS NOT NULL "
        "AND c.status = 'approved' AND c.visibility IN ('public', 'unlisted') "
        "ORDER BY c.published_at DESC, c.id DESC LIMIT ?",
        (post_id, limit))
    return [Seed(int(r[0]), r[1], r[2], r[3], r[4], int(r[5])) for r in rows]


async def seed_of(conn: Conn, comment_id: int) -> Seed | None:
    row = await conn.fetchone(f"{_SEED} WHERE c.id = ? AND c.ap_id IS NOT NULL",
                              (comment_id,))
    return Seed(int(row[0]), row[1], row[2], row[3], row[4], int(row[5])) if row else None


# --- context collections read -----------------------------------------------------------


async def context_read_at(conn: Conn, url: str) -> datetime | None:
    row = await conn.fetchone("SELECT read_at FROM context_reads WHERE url = ?", (url,))
    return dt(row[0]) if row else None


async def context_read(conn: Conn, url: str, post_id: int, items: int, now: datetime) -> None:
    """A remote context collection was read for a post; `items` replies it lists."""
    await conn.execute(
        "INSERT INTO context_reads (url, post_id, items, read_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (url) DO UPDATE SET post_id = excluded.post_id, items = excluded.items, "
        "read_at = excluded.read_at",
        (url, post_id, items, ts(now)))


# --- replies known elsewhere ------------------------------------------------------------


async def record_gap(conn: Conn, post_id: int, ap_id: str, reason: str, source: str,
                     now: datetime) -> None:
    await conn.execute(
        "INSERT INTO reply_gaps (post_id, ap_id, reason, source, seen_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (post_id, ap_id) DO UPDATE SET "
        "reason = excluded.reason, source = excluded.source, seen_at = excluded.seen_at",
        (post_id, ap_id, reason, source, ts(now)))


async def clear_gap(conn: Conn, post_id: int, ap_id: str) -> None:
    await conn.execute("DELETE FROM reply_gaps WHERE post_id = ? AND ap_id = ?",
                       (post_id, ap_id))


@dataclass(frozen=True)
class Gap:
    ap_id: str
    reason: str
    source: str
    seen_at: datetime


async def gaps(conn: Conn, post_id: int, *, limit: int = 1000) -> list[Gap]:
    """Replies listed elsewhere and not imported, unless held or deleted since."""
    rows = await conn.fetchall(
        "SELECT g.ap_id, g.reason, g.source, g.seen_at FROM reply_gaps g WHERE g.post_id = ? "
        "AND NOT EXISTS (SELECT 1 FROM comments c WHERE c.ap_id = g.ap_id) "
        "AND NOT EXISTS (SELECT 1 FROM tombstones t WHERE t.ap_id = g.ap_id) "
        "ORDER BY g.seen_at, g.ap_id LIMIT ?", (post_id, limit))
    return [Gap(r[0], r[1], r[2], dt(r[3]) or datetime.min) for r in rows]


@dataclass(frozen=True)
class Known:
    """What we hold of a post's conversation and what remote collections say exists."""

    #: Comments held (any origin and audience, deleted placeholders aside).
    held: int
    #: Replies to the post held, plus for each held comment the larger of the replies
    #: its replies collection counted and the replies to it we hold.
    by_replies: int
    #: The most replies one remote context collection of this post listed.
    by_context: int


async def known(conn: Conn, post_id: int) -> Known:
    row = await conn.fetchone(
        "SELECT (SELECT COUNT(*) FROM comments WHERE post_id = ?1 AND status != 'deleted'), "
        "(SELECT COUNT(*) FROM comments WHERE post_id = ?1 AND parent_id IS NULL "
        " AND status != 'deleted') + (SELECT COALESCE(SUM(MAX(COALESCE(l.replies_total, 0), "
        " (SELECT COUNT(*) FROM comments k WHERE k.parent_id = c.id "
        "  AND k.status != 'deleted'))), 0) FROM comments c "
        " LEFT JOIN comment_links l ON l.comment_id = c.id WHERE c.post_id = ?1), "
        "(SELECT COALESCE(MAX(items), 0) FROM context_reads WHERE post_id = ?1)",
        (post_id,))
    assert row is not None
    return Known(int(row[0]), int(row[1]), int(row[2]))
