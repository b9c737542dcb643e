"""The public thread of a post as light rows, read in one trip as one snapshot (a busy
thread is read often), and the stored per-comment fragments it is assembled from."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fedcomments.store.comments import ReactionRow
from fedcomments.store.conn import Conn
from fedcomments.store.media import ThreadMedia, read_thread_media


@dataclass(slots=True)
class ThreadPost:
    """What a thread shows of its post, and the post's thread stamp, read in one row."""

    id: int
    permalink: str
    ap_id: str
    title: str
    summary: str
    published: str
    deleted: bool
    #: Moves (by triggers) whenever anything the thread shows may have changed.
    stamp: int


_POST_SQL = ("SELECT id, permalink, ap_id, title, summary, published_at, "
             "deleted_at IS NOT NULL, thread_version FROM posts ")


async def thread_post(conn: Conn, *, post_id: int | None = None,
                      permalinks: Sequence[str] = (), ap_id: str | None = None
                      ) -> ThreadPost | None:
    """A post by id, by the first of some permalink spellings that exists, or by AP id."""
    if post_id is not None:
        row = await conn.fetchone(_POST_SQL + "WHERE id = ?", (post_id,))
    elif permalinks:
        marks = ", ".join("?" * len(permalinks))
        order = " ".join(f"WHEN ? THEN {i}" for i in range(len(permalinks)))
        row = await conn.fetchone(
            f"{_POST_SQL}WHERE permalink IN ({marks}) ORDER BY CASE permalink {order} END "
            "LIMIT 1", (*permalinks, *permalinks))
    elif ap_id is not None:
        row = await conn.fetchone(_POST_SQL + "WHERE ap_id = ?", (ap_id,))
    else:
        return None
    return _post(row)


def _post(row: Any) -> ThreadPost | None:
    if row is None:
        return None
    return ThreadPost(row[0], row[1], row[2], row[3], row[4], row[5], bool(row[6]), row[7])


@dataclass(slots=True)
class ThreadActor:
    """The author of a fediverse comment, as much as a thread shows of them."""

    id: int
    ap_id: str
    username: str | None
    domain: str
    name: str | None
    url: str | None
    icon: str | None
    #: FEP-5feb: False asks that what they write not be indexed; None unknown.
    indexable: bool | None = None

    @property
    def display_name(self) -> str:
        return self.name or self.username or self.ap_id


@dataclass(slots=True)
class ThreadEntry:
    """One comment of a thread; timestamps stay the stored ISO-8601 UTC strings."""

    id: int
    parent_id: int | None
    origin: str
    status: str
    content: str
    published: str
    updated: str | None
    summary: str | None
    sensitive: bool
    language: str | None
    url: str | None
    ap_id: str | None
    #: The stored JSON list of {url, media_type, name}.
    attachments: str
    author_name: str | None
    author_website: str | None
    actor: ThreadActor | None


_ENTRY_SELECT = (
    "SELECT c.id, c.parent_id, c.origin, c.status, c.content, c.published_at, c.updated_at, "
    "c.summary, c.sensitive, c.language, c.url, c.ap_id, c.attachments, c.author_name, "
    "c.author_website, a.id, a.ap_id, a.username, a.domain, a.name, a.url, a.icon, "
    "a.indexable"
)
#: Columns of _ENTRY_SELECT: what a query selects after them starts at this index.
_ENTRY_WIDTH = _ENTRY_SELECT.count(",") + 1
_ENTRY_COLUMNS = f"{_ENTRY_SELECT} FROM comments c LEFT JOIN actors a ON a.id = c.actor_id "
# The one rule of what a public thread shows; schema.py's _shown is the same rule in the
# triggers that move the thread stamp (the ETag), so nothing else moves it.
_PUBLIC = ("c.post_id = ? AND c.visibility IN ('public', 'unlisted') "
           "AND c.status IN ('approved', 'deleted') ORDER BY c.published_at, c.id")
_THREAD_SQL = f"{_ENTRY_COLUMNS}WHERE {_PUBLIC}"


async def public_thread(conn: Conn, post_id: int) -> list[ThreadEntry]:
    """Approved public and unlisted comments of a post, and deleted placeholders among them
    (which keep replies threaded), oldest first. Private comments never: not even as a
    placeholder."""
    return _entries(await conn.fetchall(_THREAD_SQL, (post_id,)))


def _entries(rows: Sequence[Any]) -> list[ThreadEntry]:
    actors: dict[int, ThreadActor] = {}
    out: list[ThreadEntry] = []
    for r in rows:
        actor = None
        if r[15] is not None:
            actor = actors.get(r[15])
            if actor is None:
                actor = actors[r[15]] = ThreadActor(r[15], r[16], r[17], r[18], r[19], r[20],
                                                    r[21], None if r[22] is None else bool(r[22]))
        out.append(ThreadEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9],
                               r[10], r[11], r[12], r[13], r[14], actor))
    return out


@dataclass(slots=True)
class FeedPost:
    """What a feed of the blog's comments shows of the post each one is under."""

    id: int
    slug: str
    permalink: str
    title: str


async def latest_public(conn: Conn, now: str, limit: int
                        ) -> list[tuple[FeedPost, ThreadEntry]]:
    """The newest approved public and unlisted comments under published, live posts,
    newest first (a feed of the blog's comments); never private, held or rejected ones."""
    rows = await conn.fetchall(
        f"{_ENTRY_SELECT}, p.id, p.slug, p.permalink, p.title FROM comments c "
        "JOIN posts p ON p.id = c.post_id LEFT JOIN actors a ON a.id = c.actor_id "
        "WHERE c.visibility IN ('public', 'unlisted') AND c.status = 'approved' "
        "AND p.deleted_at IS NULL AND p.published_at <= ? "
        "ORDER BY c.published_at DESC, c.id DESC LIMIT ?", (now, limit))
    entries = _entries(rows)
    w = _ENTRY_WIDTH
    return [(FeedPost(r[w], r[w + 1], r[w + 2], r[w + 3]), e)
            for r, e in zip(rows, entries, strict=True)]


async def reactions_for_post(conn: Conn, post_id: int) -> list[ReactionRow]:
    """Every reaction of a post and its comments, oldest first (facepiles keep that order)."""
    return [ReactionRow(*r) for r in await conn.fetchall(_REACTIONS_SQL + "ORDER BY r.id",
                                                         (post_id,))]


# --- the thread as fragments ----------------------------------------------------------------

#: One comment's place in its thread and its stored fragment: (id, parent_id, 1 if it is
#: a deleted placeholder else 0, fragment bytes or None if missing). Few columns, no
#: strings: the rows are many and each column costs a Python object.
ThreadRow = tuple[int, "int | None", int, "bytes | None"]

_ROWS_SQL = (
    "SELECT c.id, c.parent_id, c.status = 'deleted', f.body FROM comments c "
    "LEFT JOIN comment_fragments f ON f.comment_id = c.id AND f.key = ? "
    f"WHERE {_PUBLIC}"
)
_MISSING_SQL = (
    f"{_ENTRY_SELECT}, f.gen FROM comments c LEFT JOIN actors a ON a.id = c.actor_id "
    "LEFT JOIN comment_fragments f ON f.comment_id = c.id "
    f"WHERE (f.body IS NULL OR f.key <> ?) AND {_PUBLIC}"
)
_REACTIONS_SQL = (
    "SELECT r.comment_id, r.type, a.ap_id, a.name, a.icon, a.url FROM reactions r "
    "JOIN actors a ON a.id = r.actor_id WHERE r.post_id = ? "
)
#: Above this many missing fragments, their reactions are read for the whole post.
_FEW = 500
FACEPILE = 8


@dataclass(slots=True)
class ThreadRead:
    """A post and what its thread shows, read in one snapshot."""

    post: ThreadPost
    #: False when only the post was asked for (or it is deleted): nothing else was read.
    complete: bool = True
    #: The reading connection's PRAGMA data_version, taken before the snapshot.
    version: int = 0
    rows: list[ThreadRow] = field(default_factory=list)
    #: Comments whose fragment is missing (or cleared, or rendered under another key), in
    #: full, with their reactions, and the generation of their fragment row (None: none).
    missing: list[ThreadEntry] = field(default_factory=list)
    missing_gens: list[int | None] = field(default_factory=list)
    missing_reactions: list[ReactionRow] = field(default_factory=list)
    #: The post's own reactions: counts and the first few people (oldest first).
    likes: int = 0
    boosts: int = 0
    people: list[ReactionRow] = field(default_factory=list)
    #: The images the missing comments and the people show (store.media).
    media: ThreadMedia = field(default_factory=ThreadMedia)


@dataclass(frozen=True, slots=True)
class PostRef:
    """How a request names a post: by id, by one of some permalink spellings, by AP id."""

    post_id: int | None = None
    permalinks: tuple[str, ...] = ()
    ap_id: str | None = None


def _find_post(db: sqlite3.Connection, ref: PostRef) -> ThreadPost | None:
    if ref.post_id is not None:
        return _post(db.execute(_POST_SQL + "WHERE id = ?", (ref.post_id,)).fetchone())
    post = None
    if ref.permalinks:
        marks = ", ".join("?" * len(ref.permalinks))
        order = " ".join(f"WHEN ? THEN {i}" for i in range(len(ref.permalinks)))
        post = _post(db.execute(
            f"{_POST_SQL}WHERE permalink IN ({marks}) ORDER BY CASE permalink {order} END "
            "LIMIT 1", (*ref.permalinks, *ref.permalinks)).fetchone())
    if post is None and ref.ap_id is not None:
        post = _post(db.execute(_POST_SQL + "WHERE ap_id = ?", (ref.ap_id,)).fetchone())
    return post


def _read(db: sqlite3.Connection, ref: PostRef, key: int, rows_too: bool,
          own_icon: str | None = None) -> ThreadRead | None:
    if not rows_too:
        post = _find_post(db, ref)
        return None if post is None else ThreadRead(post, complete=False)
    # One read transaction: the post's stamp and everything else come from one snapshot,
    # so the stamp names exactly the state that is rendered.
    db.execute("BEGIN")
    try:
        version = db.execute("PRAGMA data_version").fetchone()[0]
        post = _find_post(db, ref)
        if post is None:
            return None
        if post.deleted:
            return ThreadRead(post, complete=False, version=version)
        cur = db.cursor()
        cur.row_factory = None  # plain tuples: the rows are many and go straight to bytes
        rows: list[ThreadRow] = cur.execute(_ROWS_SQL, (key, post.id)).fetchall()
        out = ThreadRead(post, rows=rows, version=version)
        missing = sum(1 for r in rows if r[3] is None)
        if missing:
            found_rows = db.execute(_MISSING_SQL, (key, post.id)).fetchall()
            out.missing = _entries(found_rows)
            out.missing_gens = [r[_ENTRY_WIDTH] for r in found_rows]
            if missing <= _FEW:
                ids = [e.id for e in out.missing]
                sql = (f"{_REACTIONS_SQL}AND r.comment_id IN ({', '.join('?' * len(ids))}) "
                       "ORDER BY r.id")
                found = db.execute(sql, (post.id, *ids)).fetchall()
            else:
                found = db.execute(f"{_REACTIONS_SQL}AND r.comment_id IS NOT NULL ORDER BY r.id",
                                   (post.id,)).fetchall()
            out.missing_reactions = [ReactionRow(*r) for r in found]
        for kind, n in db.execute(
                "SELECT type, count(*) FROM reactions WHERE post_id = ? AND comment_id IS NULL "
                "GROUP BY type", (post.id,)):
            if kind == "like":
                out.likes = n
            else:
                out.boosts = n
        if out.likes or out.boosts:
            seen: set[str] = set()
            # Oldest first, stopping at the facepile's size: a viral post has thousands.
            for r in db.execute(f"{_REACTIONS_SQL}AND r.comment_id IS NULL ORDER BY r.id",
                                (post.id,)):
                if r[2] not in seen:
                    seen.add(r[2])
                    out.people.append(ReactionRow(*r))
                    if len(seen) == FACEPILE:
                        break
        if out.missing or out.people:
            icons = [r.actor_icon for r in (*out.missing_reactions, *out.people) if r.actor_icon]
            icons += [e.actor.icon for e in out.missing if e.actor is not None and e.actor.icon]
            if own_icon and out.missing:
                icons.append(own_icon)
            out.media = read_thread_media(
                db, [e.id for e in out.missing],
                [e.actor.id for e in out.missing if e.actor is not None], icons)
        return out
    finally:
        db.execute("COMMIT")  # ends the read transaction


async def read_thread(conn: Conn, ref: PostRef, key: int, rows: bool = True,
                      own_icon: str | None = None) -> ThreadRead | None:
    """The post `ref` names and (if `rows`) its public thread, each comment with its
    fragment stored under `key` if there is one, and the images those to render show
    (`own_icon`: the blog's avatar, on its answers).

    Approved public and unlisted comments and deleted placeholders, oldest first; private
    ones never, not even as placeholders. One trip to the SQLite thread.
    """
    return await conn.run(_read, ref, key, rows, own_icon)


async def save_fragments(conn: Conn, key: int,
                         fragments: Sequence[tuple[int, int | None, bytes]]) -> None:
    """Store rendered fragments (comment id, the gen of its row when it was read or None if
    it had none, bytes) under `key`: each only if nothing cleared it since (its row is
    still at that gen, or still absent); a comment deleted meanwhile is skipped."""
    await conn.executemany(
        "INSERT OR IGNORE INTO comment_fragments (comment_id, key, gen, body) "
        "SELECT ?, ?, 0, ? WHERE EXISTS (SELECT 1 FROM comments WHERE id = ?)",
        [(cid, key, body, cid) for cid, gen, body in fragments if gen is None])
    await conn.executemany(
        "UPDATE comment_fragments SET key = ?, body = ? WHERE comment_id = ? AND gen = ?",
        [(key, body, cid, gen) for cid, gen, body in fragments if gen is not None])
