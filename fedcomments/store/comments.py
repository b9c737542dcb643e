"""Queries on comments, tombstoned ids and reactions."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from fedcomments.model import Attachment, Comment, CommentStatus, ImportKey, Origin, Visibility
from fedcomments.store.actors import ACTOR_COLUMNS, actor_from_row
from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt, dt_required, dumps, loads, ts

COMMENT_COLUMNS = (
    "c.id, c.post_id, c.parent_id, c.ap_id, c.origin, c.visibility, c.status, c.content, "
    "c.published_at, c.created_at, c.author_name, c.author_website, c.summary, c.sensitive, "
    "c.language, c.url, c.in_reply_to, c.attachments, c.mentions, c.updated_at, c.deleted_at, "
    "c.actor_id, c.import_source, c.import_site, c.import_id, c.withheld, c.addressed"
)
_SELECT = (
    f"SELECT {COMMENT_COLUMNS}, {ACTOR_COLUMNS} FROM comments c "
    "LEFT JOIN actors a ON a.id = c.actor_id"
)


def comment_from_row(row: sqlite3.Row) -> Comment:
    return Comment(
        id=row["id"],
        post_id=row["post_id"],
        parent_id=row["parent_id"],
        ap_id=row["ap_id"],
        origin=Origin(row["origin"]),
        visibility=Visibility(row["visibility"]),
        status=CommentStatus(row["status"]),
        content=row["content"],
        published_at=dt_required(row["published_at"]),
        created_at=dt_required(row["created_at"]),
        actor=actor_from_row(row) if row["actor_id"] is not None else None,
        author_name=row["author_name"],
        author_website=row["author_website"],
        summary=row["summary"],
        sensitive=bool(row["sensitive"]),
        language=row["language"],
        url=row["url"],
        in_reply_to=row["in_reply_to"],
        attachments=tuple(Attachment(**a) for a in loads(row["attachments"], [])),
        mentions=tuple(loads(row["mentions"], [])),
        updated_at=dt(row["updated_at"]),
        deleted_at=dt(row["deleted_at"]),
        imported=(ImportKey(row["import_source"], row["import_site"], row["import_id"])
                  if row["import_id"] is not None else None),
        withheld=row["withheld"],
        addressed=Visibility(row["addressed"]) if row["addressed"] else None,
    )


@dataclass(frozen=True)
class NewComment:
    post_id: int
    parent_id: int | None
    origin: Origin
    visibility: Visibility
    status: CommentStatus
    content: str
    published_at: datetime
    ap_id: str | None = None
    actor_id: int | None = None
    author_name: str | None = None
    author_email: str | None = None
    author_website: str | None = None
    source: str | None = None
    summary: str | None = None
    sensitive: bool = False
    language: str | None = None
    url: str | None = None
    in_reply_to: str | None = None
    attachments: tuple[Attachment, ...] = ()
    mentions: tuple[str, ...] = ()
    updated_at: datetime | None = None
    edit_secret_hash: str | None = None
    client_key: str | None = None
    imported: ImportKey | None = None
    #: The source's id of a parent not imported yet (see store/imports.py).
    import_parent: str | None = None


async def insert(conn: Conn, c: NewComment, now: datetime) -> int:
    key = (c.imported.source, c.imported.site, c.imported.id) if c.imported else (None,) * 3
    return await conn.execute(
        "INSERT INTO comments (post_id, parent_id, ap_id, origin, actor_id, author_name, "
        "author_email, author_website, visibility, status, content, source, summary, sensitive, "
        "language, url, in_reply_to, attachments, mentions, published_at, updated_at, "
        "created_at, edit_secret_hash, client_key, import_source, import_site, import_id, "
        "import_parent) "
        f"VALUES ({', '.join('?' * 28)})",
        (c.post_id, c.parent_id, c.ap_id, c.origin.value, c.actor_id, c.author_name,
         c.author_email, c.author_website, c.visibility.value, c.status.value, c.content,
         c.source, c.summary, int(c.sensitive), c.language, c.url, c.in_reply_to,
         dumps([a.__dict__ for a in c.attachments]), dumps(list(c.mentions)),
         ts(c.published_at), ts(c.updated_at), ts(now), c.edit_secret_hash, c.client_key,
         *key, c.import_parent),
    )


async def set_ap_id(conn: Conn, comment_id: int, ap_id: str) -> None:
    await conn.execute("UPDATE comments SET ap_id = ? WHERE id = ?", (ap_id, comment_id))


async def by_id(conn: Conn, comment_id: int) -> Comment | None:
    row = await conn.fetchone(f"{_SELECT} WHERE c.id = ?", (comment_id,))
    return comment_from_row(row) if row else None


async def by_ap_id(conn: Conn, ap_id: str) -> Comment | None:
    row = await conn.fetchone(f"{_SELECT} WHERE c.ap_id = ?", (ap_id,))
    return comment_from_row(row) if row else None


async def update_content(
    conn: Conn, comment_id: int, *, content: str, summary: str | None, sensitive: bool,
    language: str | None, attachments: tuple[Attachment, ...], mentions: tuple[str, ...],
    updated_at: datetime,
) -> None:
    await conn.execute(
        "UPDATE comments SET content = ?, summary = ?, sensitive = ?, language = ?, "
        "attachments = ?, mentions = ?, updated_at = ? WHERE id = ?",
        (content, summary, int(sensitive), language, dumps([a.__dict__ for a in attachments]),
         dumps(list(mentions)), ts(updated_at), comment_id),
    )


async def has_children(conn: Conn, comment_id: int) -> bool:
    row = await conn.fetchone("SELECT 1 FROM comments WHERE parent_id = ? LIMIT 1", (comment_id,))
    return row is not None


async def remove(conn: Conn, comment: Comment, now: datetime) -> str:
    """Delete a comment: a tombstone row when it has replies, else gone. Returns which."""
    if comment.ap_id:
        await add_tombstone(conn, comment.ap_id, now)
    if comment.imported is not None:
        # Its export still holds it: a later import must not bring it back.
        await conn.execute(
            "INSERT OR IGNORE INTO import_tombstones (source, site, id, deleted_at) "
            "VALUES (?, ?, ?, ?)",
            (comment.imported.source, comment.imported.site, comment.imported.id, ts(now)))
    if await has_children(conn, comment.id):
        await conn.execute(
            "UPDATE comments SET status = 'deleted', content = '', source = NULL, summary = NULL, "
            "attachments = '[]', mentions = '[]', author_email = NULL, deleted_at = ? "
            "WHERE id = ?",
            (ts(now), comment.id),
        )
        return "tombstoned"
    await conn.execute("DELETE FROM comments WHERE id = ?", (comment.id,))
    if comment.parent_id is not None:
        parent = await by_id(conn, comment.parent_id)
        # A deleted placeholder whose last reply went away has nothing left to hold up.
        if parent and parent.status is CommentStatus.DELETED:
            await remove(conn, parent, now)
    return "deleted"


async def add_tombstone(conn: Conn, ap_id: str, now: datetime) -> None:
    """Remember a deleted id; whether it was one of our comments is read from `comments`
    (call it before removing the comment row), which decides if it may be pruned later."""
    await conn.execute(
        "INSERT OR IGNORE INTO tombstones (ap_id, deleted_at, had_comment) "
        "VALUES (?, ?, EXISTS (SELECT 1 FROM comments WHERE ap_id = ?))",
        (ap_id, ts(now), ap_id),
    )


async def prune_unknown_tombstones(conn: Conn, before: datetime, limit: int) -> int:
    """Forget up to `limit` tombstones of objects we never stored, deleted before `before`."""
    return await conn.rowcount(
        "DELETE FROM tombstones WHERE rowid IN (SELECT rowid FROM tombstones "
        "WHERE had_comment = 0 AND deleted_at < ? LIMIT ?)",
        (ts(before), limit),
    )


async def is_tombstoned(conn: Conn, ap_id: str) -> bool:
    return await conn.fetchone("SELECT 1 FROM tombstones WHERE ap_id = ?", (ap_id,)) is not None


async def by_actor(conn: Conn, actor_id: int) -> list[Comment]:
    rows = await conn.fetchall(f"{_SELECT} WHERE c.actor_id = ? ORDER BY c.id DESC", (actor_id,))
    return [comment_from_row(r) for r in rows]


async def by_domain(conn: Conn, domain: str) -> list[Comment]:
    """Comments whose author's domain is `domain` or a subdomain of it."""
    rows = await conn.fetchall(
        f"{_SELECT} WHERE a.domain = ? OR a.domain LIKE ? ESCAPE '\\' ORDER BY c.id DESC",
        (domain, "%." + domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")),
    )
    return [comment_from_row(r) for r in rows]


async def set_visibility(conn: Conn, comment_id: int, visibility: Visibility) -> None:
    await conn.execute("UPDATE comments SET visibility = ? WHERE id = ?",
                       (visibility.value, comment_id))


async def set_status(conn: Conn, comment_id: int, status: CommentStatus) -> None:
    await conn.execute("UPDATE comments SET status = ? WHERE id = ?", (status.value, comment_id))


async def thread_rows(conn: Conn, post_id: int) -> list[Comment]:
    """Every comment of a post that may appear publicly, oldest first, in one query.

    Deleted placeholders are included (they keep replies threaded); the caller drops the
    ones left without visible replies.
    """
    rows = await conn.fetchall(
        f"{_SELECT} WHERE c.post_id = ? AND ((c.status = 'approved' AND c.visibility IN "
        "('public', 'unlisted')) OR c.status = 'deleted') ORDER BY c.published_at, c.id",
        (post_id,),
    )
    return [comment_from_row(r) for r in rows]


async def count_public(conn: Conn, post_id: int) -> int:
    row = await conn.fetchone(
        "SELECT COUNT(*) FROM comments WHERE post_id = ? AND status = 'approved' "
        "AND visibility IN ('public', 'unlisted')",
        (post_id,),
    )
    return int(row[0]) if row else 0


async def author_trusted(conn: Conn, actor_id: int) -> bool:
    """An actor is trusted when marked so or when one of their comments was approved."""
    row = await conn.fetchone(
        "SELECT trusted OR EXISTS (SELECT 1 FROM comments WHERE actor_id = ? AND "
        "status = 'approved' AND origin = 'remote') FROM actors WHERE id = ?",
        (actor_id, actor_id),
    )
    return bool(row and row[0])


# --- reactions -------------------------------------------------------------------------


async def add_reaction(
    conn: Conn, *, ap_id: str, type_: str, actor_id: int, post_id: int, comment_id: int | None,
    target_ap_id: str, now: datetime,
) -> bool:
    """Count a Like/Announce once per actor, type and target; True when it is new."""
    return await conn.rowcount(
        "INSERT OR IGNORE INTO reactions (ap_id, type, actor_id, post_id, comment_id, "
        "target_ap_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (ap_id, type_, actor_id, post_id, comment_id, target_ap_id, ts(now)),
    ) > 0


async def remove_reaction(conn: Conn, *, actor_id: int, ap_id: str | None, type_: str | None,
                          target_ap_id: str | None) -> int:
    """Undo by the reaction's activity id, or by (type, target) for the same actor."""
    if ap_id:
        n = await conn.rowcount("DELETE FROM reactions WHERE ap_id = ? AND actor_id = ?",
                                (ap_id, actor_id))
        if n:
            return n
    if type_ and target_ap_id:
        return await conn.rowcount(
            "DELETE FROM reactions WHERE actor_id = ? AND type = ? AND target_ap_id = ?",
            (actor_id, type_, target_ap_id),
        )
    return 0


@dataclass(frozen=True)
class ReactionRow:
    comment_id: int | None
    type: str
    actor_ap_id: str
    actor_name: str | None
    actor_icon: str | None
    actor_url: str | None


async def reactions_for_post(conn: Conn, post_id: int) -> list[ReactionRow]:
    rows = await conn.fetchall(
        "SELECT r.comment_id, r.type, a.ap_id, a.name, a.icon, a.url FROM reactions r "
        "JOIN actors a ON a.id = r.actor_id WHERE r.post_id = ? ORDER BY r.id",
        (post_id,),
    )
    return [ReactionRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


# --- processed activities --------------------------------------------------------------


async def activity_seen(conn: Conn, ap_id: str) -> bool:
    row = await conn.fetchone("SELECT 1 FROM processed_activities WHERE ap_id = ?", (ap_id,))
    return row is not None


async def mark_activity(conn: Conn, ap_id: str, now: datetime) -> bool:
    """Record an activity id; False when it was already processed."""
    return await conn.rowcount(
        "INSERT OR IGNORE INTO processed_activities (ap_id, received_at) VALUES (?, ?)",
        (ap_id, ts(now)),
    ) > 0


async def prune_activities(conn: Conn, before: datetime, limit: int) -> int:
    """Forget up to `limit` processed activity ids received before `before`."""
    return await conn.rowcount(
        "DELETE FROM processed_activities WHERE rowid IN (SELECT rowid FROM "
        "processed_activities WHERE received_at < ? LIMIT ?)",
        (ts(before), limit),
    )


# --- inbox look-ups ----------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadRef:
    """A comment as a reply target: its post and whether it may be shown publicly."""

    comment_id: int
    post_id: int
    public: bool
    post_deleted: bool


async def thread_ref(conn: Conn, ap_id: str) -> ThreadRef | None:
    row = await conn.fetchone(
        "SELECT c.id, c.post_id, c.status = 'approved' AND c.visibility IN ('public', 'unlisted'),"
        " p.deleted_at IS NOT NULL FROM comments c JOIN posts p ON p.id = c.post_id "
        "WHERE c.ap_id = ?",
        (ap_id,),
    )
    return ThreadRef(row[0], row[1], bool(row[2]), bool(row[3])) if row else None


async def object_state(conn: Conn, ap_id: str) -> tuple[bool, int | None]:
    """(tombstoned, comment id) of an object id, in one query."""
    row = await conn.fetchone(
        "SELECT EXISTS (SELECT 1 FROM tombstones WHERE ap_id = ?), "
        "(SELECT id FROM comments WHERE ap_id = ?)",
        (ap_id, ap_id),
    )
    assert row is not None
    return bool(row[0]), row[1]
