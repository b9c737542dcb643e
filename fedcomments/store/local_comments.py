"""Queries behind the reader comment form: rate limit, duplicates, trust, secrets, edits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fedcomments.model import Comment
from fedcomments.store.actors import ACTOR_COLUMNS
from fedcomments.store.comments import COMMENT_COLUMNS, comment_from_row
from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt, ts


async def count_since(conn: Conn, client_key: str, since: datetime) -> tuple[int, datetime | None]:
    """How many comments a client posted since `since`, and the oldest of them."""
    row = await conn.fetchone(
        "SELECT COUNT(*), MIN(created_at) FROM comments WHERE client_key = ? AND created_at >= ?",
        (client_key, ts(since)),
    )
    if row is None or not row[0]:
        return 0, None
    return int(row[0]), dt(row[1])


async def is_duplicate(conn: Conn, *, post_id: int, source: str, client_key: str,
                       author_name: str) -> bool:
    """The same text on the same post from the same client or under the same name."""
    row = await conn.fetchone(
        "SELECT 1 FROM comments WHERE post_id = ? AND origin = 'local' AND source = ? "
        "AND status != 'deleted' AND (client_key = ? OR author_name = ?) LIMIT 1",
        (post_id, source, client_key, author_name),
    )
    return row is not None


async def author_email(conn: Conn, comment_id: int) -> str | None:
    """The address a reader gave with a comment (never shown; compared, or told to the
    spam service)."""
    row = await conn.fetchone("SELECT author_email FROM comments WHERE id = ?", (comment_id,))
    return row[0] if row else None


async def reader_trusted(conn: Conn, name: str, email: str) -> bool:
    """A reader (name + email) with an approved local comment skips first-time moderation."""
    row = await conn.fetchone(
        "SELECT 1 FROM comments WHERE origin = 'local' AND status = 'approved' "
        "AND author_name = ? AND author_email = ? LIMIT 1",
        (name, email),
    )
    return row is not None


@dataclass(frozen=True)
class OwnComment:
    """A local comment with what its author's secret is checked against."""

    comment: Comment
    secret_hash: str | None


async def with_secret(conn: Conn, comment_id: int) -> OwnComment | None:
    row = await conn.fetchone(
        f"SELECT {COMMENT_COLUMNS}, {ACTOR_COLUMNS}, c.edit_secret_hash AS secret_hash "
        "FROM comments c LEFT JOIN actors a ON a.id = c.actor_id "
        "WHERE c.id = ? AND c.origin = 'local'",
        (comment_id,),
    )
    if row is None:
        return None
    return OwnComment(comment_from_row(row), row["secret_hash"])


async def update_text(conn: Conn, comment_id: int, *, content: str, source: str,
                      updated_at: datetime) -> None:
    await conn.execute(
        "UPDATE comments SET content = ?, source = ?, updated_at = ? WHERE id = ?",
        (content, source, ts(updated_at), comment_id),
    )
