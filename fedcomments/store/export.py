"""Queries of `fedcomments export`: comments in pages by id with everything an export keeps
(the author's email, the source key, the parent's key) and the reactions of a page."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from fedcomments.model import Comment, ImportKey, RemoteActor
from fedcomments.store.actors import ACTOR_COLUMNS, actor_from_row
from fedcomments.store.comments import COMMENT_COLUMNS, comment_from_row
from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt_required, ts

#: Comments an export with `public_only` keeps: what the public threads show (deleted
#: placeholders hold their replies in place), on posts the public sees (not deleted, not
#: scheduled for later than the `?` bound to now).
_PUBLIC = ("((c.status = 'approved' AND c.visibility IN ('public', 'unlisted')) "
           "OR c.status = 'deleted') AND p.deleted_at IS NULL AND p.published_at <= ?")


@dataclass(frozen=True)
class ExportedComment:
    comment: Comment
    post_permalink: str
    author_email: str | None
    #: The parent's key where it was imported (None: a parent of ours, by its id).
    parent_imported: ImportKey | None


@dataclass(frozen=True)
class ExportedReaction:
    type: str
    ap_id: str | None
    actor: RemoteActor
    created: datetime
    comment_id: int | None


async def comments_after(conn: Conn, after_id: int, limit: int, *, post_id: int | None,
                         public_only: bool, now: datetime) -> list[ExportedComment]:
    """Up to `limit` comments with an id above `after_id`, by id."""
    where = ["c.id > ?"]
    params: list[object] = [after_id]
    if post_id is not None:
        where.append("c.post_id = ?")
        params.append(post_id)
    if public_only:
        where.append(_PUBLIC)
        params.append(ts(now))
    rows = await conn.fetchall(
        f"SELECT {COMMENT_COLUMNS}, {ACTOR_COLUMNS}, p.permalink AS p_permalink, "
        "c.author_email AS c_email, pc.import_source AS pc_source, "
        "pc.import_site AS pc_site, pc.import_id AS pc_id FROM comments c "
        "JOIN posts p ON p.id = c.post_id LEFT JOIN actors a ON a.id = c.actor_id "
        "LEFT JOIN comments pc ON pc.id = c.parent_id "
        f"WHERE {' AND '.join(where)} ORDER BY c.id LIMIT ?", (*params, limit))
    return [_exported(r) for r in rows]


def _exported(row: sqlite3.Row) -> ExportedComment:
    parent = (ImportKey(row["pc_source"], row["pc_site"], row["pc_id"])
              if row["pc_id"] is not None else None)
    return ExportedComment(comment_from_row(row), row["p_permalink"], row["c_email"], parent)


async def reactions_of(conn: Conn, *, post_id: int | None = None,
                       comment_ids: list[int] | None = None) -> list[ExportedReaction]:
    """The reactions to some comments, or to a post itself."""
    params: tuple[object, ...]
    if comment_ids is not None:
        where, params = ("r.comment_id IN (SELECT value FROM json_each(?))",
                         (json.dumps(comment_ids),))
    else:
        where, params = "r.post_id = ? AND r.comment_id IS NULL", (post_id,)
    rows = await conn.fetchall(
        f"SELECT r.type AS r_type, r.ap_id AS r_ap_id, r.created_at AS r_created, "
        f"r.comment_id AS r_comment, {ACTOR_COLUMNS} FROM reactions r "
        f"JOIN actors a ON a.id = r.actor_id WHERE {where} ORDER BY r.id", params)
    return [ExportedReaction(r["r_type"], r["r_ap_id"], actor_from_row(r),
                             dt_required(r["r_created"]), r["r_comment"]) for r in rows]
