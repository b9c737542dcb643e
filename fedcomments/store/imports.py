"""Queries of `fedcomments import`: comments found by the key they had in their source,
and parents linked once they arrive (an export may list a reply before its parent)."""

from __future__ import annotations

import json
from datetime import datetime

from fedcomments.model import ImportKey
from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt_required


def parent_ref(key: ImportKey) -> str:
    """How a parent not imported yet is remembered in `comments.import_parent`."""
    return json.dumps([key.source, key.site, key.id], separators=(",", ":"),
                      ensure_ascii=False)


async def by_key(conn: Conn, key: ImportKey) -> tuple[int, int] | None:
    """(comment id, post id) of the comment imported under `key`."""
    row = await conn.fetchone(
        "SELECT id, post_id FROM comments WHERE import_source = ? AND import_site = ? "
        "AND import_id = ?", (key.source, key.site, key.id))
    return (int(row[0]), int(row[1])) if row else None


async def post_and_time(conn: Conn, comment_id: int) -> tuple[int, datetime] | None:
    """(post id, publication time) of the comment with this id here."""
    row = await conn.fetchone("SELECT post_id, published_at FROM comments WHERE id = ?",
                              (comment_id,))
    return (int(row[0]), dt_required(row[1])) if row else None


async def deleted_here(conn: Conn, key: ImportKey) -> bool:
    """Whether the comment imported under `key` was deleted here since."""
    return await conn.fetchone(
        "SELECT 1 FROM import_tombstones WHERE source = ? AND site = ? AND id = ?",
        (key.source, key.site, key.id)) is not None


_PARENT = (
    "SELECT p.id FROM comments p WHERE p.import_source = json_extract(c.import_parent, '$[0]') "
    "AND p.import_site = json_extract(c.import_parent, '$[1]') "
    "AND p.import_id = json_extract(c.import_parent, '$[2]') AND p.post_id = c.post_id"
)


async def link_waiting_replies(conn: Conn) -> int:
    """Give every imported reply whose parent has arrived since its parent; returns how
    many. Replies whose parent never came (skipped as spam, or missing from the export)
    stay at the top of their thread and keep waiting for a later import."""
    return await conn.rowcount(
        f"UPDATE comments AS c SET parent_id = ({_PARENT}), import_parent = NULL "
        f"WHERE c.import_parent IS NOT NULL AND EXISTS ({_PARENT})")


async def count_waiting(conn: Conn, source: str) -> int:
    """Replies imported from `source` whose parent has not arrived."""
    row = await conn.fetchone(
        "SELECT COUNT(*) FROM comments WHERE import_parent IS NOT NULL AND import_source = ?",
        (source,))
    return int(row[0]) if row else 0


async def object_id(conn: Conn, post_id: int, comment_id: int | None) -> str | None:
    """The object id of a comment (None for a reader's that never federated) or, without
    `comment_id`, of the post."""
    if comment_id is not None:
        row = await conn.fetchone("SELECT ap_id FROM comments WHERE id = ?", (comment_id,))
        return str(row[0]) if row is not None and row[0] else None
    row = await conn.fetchone("SELECT ap_id FROM posts WHERE id = ?", (post_id,))
    assert row is not None
    return str(row[0])
