"""The public thread of a post in one query, as light rows (a busy thread is read often)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedcomments.store.db import Conn


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

    @property
    def handle(self) -> str:
        return f"@{self.username}@{self.domain}" if self.username else self.ap_id

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


_THREAD_SQL = (
    "SELECT c.id, c.parent_id, c.origin, c.status, c.content, c.published_at, c.updated_at, "
    "c.summary, c.sensitive, c.language, c.url, c.ap_id, c.attachments, c.author_name, "
    "c.author_website, a.id, a.ap_id, a.username, a.domain, a.name, a.url, a.icon "
    "FROM comments c LEFT JOIN actors a ON a.id = c.actor_id "
    "WHERE c.post_id = ? AND c.visibility IN ('public', 'unlisted') "
    "AND c.status IN ('approved', 'deleted') ORDER BY c.published_at, c.id"
)


async def public_thread(conn: Conn, post_id: int) -> list[ThreadEntry]:
    """Approved public and unlisted comments of a post, and deleted placeholders among them
    (which keep replies threaded), oldest first. Private comments never: not even as a
    placeholder."""
    rows = await conn.fetchall(_THREAD_SQL, (post_id,))
    actors: dict[int, ThreadActor] = {}
    out: list[ThreadEntry] = []
    for r in rows:
        actor = None
        if r[15] is not None:
            actor = actors.get(r[15])
            if actor is None:
                actor = actors[r[15]] = ThreadActor(r[15], r[16], r[17], r[18], r[19], r[20],
                                                    r[21])
        out.append(ThreadEntry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], bool(r[8]), r[9],
                               r[10], r[11], r[12], r[13], r[14], actor))
    return out

