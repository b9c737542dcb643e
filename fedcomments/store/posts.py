"""Queries on posts."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from fedcomments.model import Post
from fedcomments.paging import Key
from fedcomments.store.conn import Conn
from fedcomments.store.paging import after, split
from fedcomments.store.rows import dt, dt_required, dumps, loads, ts

_COLUMNS = (
    "id, slug, permalink, ap_id, title, summary, content, tags, image, published_at, "
    "updated_at, created_at, deleted_at, federated_at"
)


def _post(row: sqlite3.Row) -> Post:
    return Post(
        id=row["id"],
        slug=row["slug"],
        permalink=row["permalink"],
        ap_id=row["ap_id"],
        title=row["title"],
        summary=row["summary"],
        content=row["content"],
        tags=tuple(loads(row["tags"], [])),
        image=row["image"],
        published_at=dt_required(row["published_at"]),
        updated_at=dt(row["updated_at"]),
        created_at=dt_required(row["created_at"]),
        deleted_at=dt(row["deleted_at"]),
        federated_at=dt(row["federated_at"]),
    )


async def by_permalink(conn: Conn, permalink: str) -> Post | None:
    row = await conn.fetchone(f"SELECT {_COLUMNS} FROM posts WHERE permalink = ?", (permalink,))
    return _post(row) if row else None


async def by_permalinks(conn: Conn, spellings: tuple[str, ...]) -> Post | None:
    """The post under the first of several spellings of a permalink that exists."""
    for permalink in spellings:
        found = await by_permalink(conn, permalink)
        if found is not None:
            return found
    return None


async def by_slug(conn: Conn, slug: str) -> Post | None:
    row = await conn.fetchone(f"SELECT {_COLUMNS} FROM posts WHERE slug = ?", (slug,))
    return _post(row) if row else None


async def by_id(conn: Conn, post_id: int) -> Post | None:
    row = await conn.fetchone(f"SELECT {_COLUMNS} FROM posts WHERE id = ?", (post_id,))
    return _post(row) if row else None


async def by_ap_id(conn: Conn, ap_id: str) -> Post | None:
    row = await conn.fetchone(f"SELECT {_COLUMNS} FROM posts WHERE ap_id = ?", (ap_id,))
    return _post(row) if row else None


async def live_id_by_ap_id(conn: Conn, ap_id: str) -> tuple[int, bool] | None:
    """(id, deleted) of the post with this ActivityPub id: what threading a reply needs."""
    row = await conn.fetchone("SELECT id, deleted_at IS NOT NULL FROM posts WHERE ap_id = ?",
                              (ap_id,))
    return (int(row[0]), bool(row[1])) if row else None


async def all_permalinks(conn: Conn) -> list[tuple[int, str]]:
    """(id, permalink) of every post, deleted ones too (one row each: posts are few)."""
    rows = await conn.fetchall("SELECT id, permalink FROM posts ORDER BY id")
    return [(int(r[0]), r[1]) for r in rows]


async def slug_taken(conn: Conn, slug: str) -> bool:
    return await conn.fetchone("SELECT 1 FROM posts WHERE slug = ?", (slug,)) is not None


async def insert(
    conn: Conn,
    *,
    slug: str,
    permalink: str,
    ap_id: str,
    title: str,
    summary: str,
    content: str,
    tags: tuple[str, ...],
    image: str | None,
    published_at: datetime,
    now: datetime,
) -> int:
    return await conn.execute(
        "INSERT INTO posts (slug, permalink, ap_id, title, summary, content, tags, image, "
        "published_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (slug, permalink, ap_id, title, summary, content, dumps(list(tags)), image,
         ts(published_at), ts(now)),
    )


async def update(
    conn: Conn,
    post_id: int,
    *,
    title: str,
    summary: str,
    content: str,
    tags: tuple[str, ...],
    image: str | None,
    published_at: datetime,
    now: datetime,
) -> None:
    await conn.execute(
        "UPDATE posts SET title = ?, summary = ?, content = ?, tags = ?, image = ?, "
        "published_at = ?, updated_at = ?, deleted_at = NULL WHERE id = ?",
        (title, summary, content, dumps(list(tags)), image, ts(published_at), ts(now), post_id),
    )


async def set_permalink(conn: Conn, post_id: int, permalink: str) -> None:
    await conn.execute("UPDATE posts SET permalink = ? WHERE id = ?", (permalink, post_id))


async def mark_deleted(conn: Conn, post_id: int, now: datetime) -> None:
    await conn.execute("UPDATE posts SET deleted_at = ? WHERE id = ?", (ts(now), post_id))


async def mark_federated(conn: Conn, post_id: int, now: datetime) -> None:
    await conn.execute("UPDATE posts SET federated_at = ? WHERE id = ?", (ts(now), post_id))


async def list_posts(
    conn: Conn, *, include_deleted: bool = False, limit: int = 100, offset: int = 0
) -> list[Post]:
    where = "" if include_deleted else "WHERE deleted_at IS NULL"
    rows = await conn.fetchall(
        f"SELECT {_COLUMNS} FROM posts {where} ORDER BY published_at DESC, id DESC "
        "LIMIT ? OFFSET ?",
        (limit, offset),
    )
    return [_post(r) for r in rows]


async def posts_page(conn: Conn, *, include_deleted: bool, limit: int, key: Key | None = None
                     ) -> tuple[list[Post], Key | None]:
    """Newest first, after `key` (published, id) when given."""
    where = [] if include_deleted else ["deleted_at IS NULL"]
    if key:
        where.append(after(["published_at", "id"], True))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = await conn.fetchall(
        f"SELECT {_COLUMNS} FROM posts {clause} ORDER BY published_at DESC, id DESC LIMIT ?",
        (*(key or ()), limit + 1))
    return split(rows, limit, _post, lambda r: (r["published_at"], r["id"]))


async def list_published(conn: Conn, now: datetime, *, limit: int, offset: int) -> list[Post]:
    """Posts visible to the fediverse: not deleted and not scheduled for later."""
    rows = await conn.fetchall(
        f"SELECT {_COLUMNS} FROM posts WHERE deleted_at IS NULL AND published_at <= ? "
        "ORDER BY published_at DESC, id DESC LIMIT ? OFFSET ?",
        (ts(now), limit, offset),
    )
    return [_post(r) for r in rows]


async def count_published(conn: Conn, now: datetime) -> int:
    row = await conn.fetchone(
        "SELECT COUNT(*) FROM posts WHERE deleted_at IS NULL AND published_at <= ?", (ts(now),)
    )
    return int(row[0]) if row else 0


async def due_for_federation(conn: Conn, now: datetime) -> list[Post]:
    """Scheduled posts whose time has come and that were never announced."""
    rows = await conn.fetchall(
        f"SELECT {_COLUMNS} FROM posts WHERE deleted_at IS NULL AND federated_at IS NULL "
        "AND published_at <= ? ORDER BY published_at",
        (ts(now),),
    )
    return [_post(r) for r in rows]
