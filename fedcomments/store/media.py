"""Remote images as rows: their fetch state and file name, which comments and actors show
them, and the fragments and thread stamps a change of one clears."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fedcomments.store.conn import Conn
from fedcomments.store.rows import ts

_COLUMNS = ("m.id, m.url, m.kind, m.status, m.digest, m.ext, m.width, m.height, "
            "m.next_try_at, m.attempts")
#: SQLite's limit on variables is far above this; lists are cut into such chunks.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class MediaRow:
    """One remote image (by source URL and kind) and what we have made of it."""

    id: int
    url: str
    kind: str
    #: pending (never fetched), ready (files made), refused (not an image we show), failed
    #: (could not be fetched; tried again after next_try_at).
    status: str
    digest: str | None
    ext: str | None
    width: int | None
    height: int | None
    next_try_at: str | None
    attempts: int = 0

    @property
    def ready(self) -> bool:
        return self.status == "ready" and self.digest is not None

    def due(self, now: datetime) -> bool:
        """Whether a reader's need of it should start a fetch now."""
        if self.status == "pending":
            return True
        return self.status == "failed" and (self.next_try_at or "") <= (ts(now) or "")


def _row(r: Sequence[Any]) -> MediaRow:
    return MediaRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])


@dataclass(slots=True)
class ThreadMedia:
    """The images some comments of a thread show, read with the thread."""

    #: Avatars by source URL (authors, reacting people, the blog's own icon).
    avatars: dict[str, MediaRow] = field(default_factory=dict)
    #: (shortcode, image) of a comment's content and of an actor's name.
    comment_emojis: dict[int, list[tuple[str, MediaRow]]] = field(default_factory=dict)
    actor_emojis: dict[int, list[tuple[str, MediaRow]]] = field(default_factory=dict)
    #: A comment's attachment thumbnails, by the attachment's URL.
    thumbnails: dict[int, dict[str, MediaRow]] = field(default_factory=dict)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]


def read_thread_media(db: sqlite3.Connection, comment_ids: Sequence[int],
                      actor_ids: Sequence[int], icons: Sequence[str]) -> ThreadMedia:
    """What the given comments, actors and icon URLs show (in the caller's snapshot)."""
    out = ThreadMedia()
    for part in _chunks(list(dict.fromkeys(icons))):
        marks = ", ".join("?" * len(part))
        for r in db.execute(f"SELECT {_COLUMNS} FROM media m WHERE m.kind = 'avatar' "
                            f"AND m.url IN ({marks})", tuple(part)):
            out.avatars[r[1]] = _row(r)
    comments = list(dict.fromkeys(comment_ids))
    actors = list(dict.fromkeys(actor_ids))
    while comments or actors:
        # Both kinds of owner in one query (a thread's read is one trip of few queries).
        some, comments = comments[:_CHUNK], comments[_CHUNK:]
        few, actors = actors[:_CHUNK], actors[_CHUNK:]
        sql = (f"SELECT u.comment_id, u.actor_id, u.role, u.shortcode, {_COLUMNS} "
               "FROM media_uses u JOIN media m ON m.id = u.media_id "
               f"WHERE u.comment_id IN ({', '.join('?' * len(some)) or 'NULL'}) "
               f"OR u.actor_id IN ({', '.join('?' * len(few)) or 'NULL'}) ORDER BY u.position")
        for r in db.execute(sql, (*some, *few)):
            comment_id, actor_id, role, shortcode, row = r[0], r[1], r[2], r[3], _row(r[4:])
            if role == "thumbnail" and comment_id is not None:
                out.thumbnails.setdefault(comment_id, {})[row.url] = row
            elif comment_id is not None:
                out.comment_emojis.setdefault(comment_id, []).append((shortcode, row))
            elif actor_id is not None:
                out.actor_emojis.setdefault(actor_id, []).append((shortcode, row))
    return out


async def thread_media(conn: Conn, comment_ids: Sequence[int], actor_ids: Sequence[int],
                       icons: Sequence[str]) -> ThreadMedia:
    return await conn.run(read_thread_media, comment_ids, actor_ids, icons)


# --- who shows what ---------------------------------------------------------------------


async def _ensure_ids(conn: Conn, items: Sequence[tuple[str, str]], now: datetime
                      ) -> dict[tuple[str, str], int]:
    await conn.executemany(
        "INSERT OR IGNORE INTO media (url, kind, created_at) VALUES (?, ?, ?)",
        [(url, kind, ts(now)) for url, kind in items])
    found: dict[tuple[str, str], int] = {}
    for url, kind in items:
        row = await conn.fetchone("SELECT id FROM media WHERE url = ? AND kind = ?", (url, kind))
        assert row is not None
        found[(url, kind)] = int(row[0])
    return found


async def ensure(conn: Conn, items: Iterable[tuple[str, str]], now: datetime
                 ) -> dict[tuple[str, str], int]:
    """Rows for these (url, kind) pairs, created pending where missing; their ids."""
    return await _ensure_ids(conn, list(dict.fromkeys(items)), now)


async def _uses(conn: Conn, column: str, owner: int) -> list[tuple[Any, ...]]:
    rows = await conn.fetchall(
        "SELECT u.role, u.shortcode, m.url FROM media_uses u JOIN media m ON m.id = u.media_id "
        f"WHERE u.{column} = ? ORDER BY u.position", (owner,))
    return [tuple(r) for r in rows]


async def _set_uses(conn: Conn, column: str, owner: int,
                    uses: Sequence[tuple[str, str, str]], now: datetime) -> bool:
    """Replace what `owner` shows by `uses` (role, shortcode, url); True if it changed."""
    if await _uses(conn, column, owner) == list(uses):
        return False
    await conn.execute(f"DELETE FROM media_uses WHERE {column} = ?", (owner,))
    if uses:
        ids = await _ensure_ids(
            conn, list(dict.fromkeys((url, "emoji" if role == "emoji" else "thumbnail")
                                     for role, _, url in uses)), now)
        await conn.executemany(
            f"INSERT INTO media_uses (media_id, {column}, role, shortcode, position) "
            "VALUES (?, ?, ?, ?, ?)",
            [(ids[(url, "emoji" if role == "emoji" else "thumbnail")], owner, role, code, i)
             for i, (role, code, url) in enumerate(uses)])
    return True


async def set_actor_emojis(conn: Conn, actor_id: int, emojis: Sequence[tuple[str, str]],
                           now: datetime) -> None:
    """The custom emoji (shortcode, url) of an actor's name; when they change, the
    fragments of what the actor wrote are cleared (a trigger does so for its other fields)."""
    uses = [("emoji", code, url) for code, url in emojis]
    if await _set_uses(conn, "actor_id", actor_id, uses, now):
        await conn.run(_clear, _actor_comments_sql([actor_id]), [])


async def set_comment_media(conn: Conn, comment_id: int, emojis: Sequence[tuple[str, str]],
                            thumbnails: Sequence[str], now: datetime) -> None:
    """The custom emoji (shortcode, url) of a comment and the attachments (URLs) shown as
    thumbnails; written with the comment, whose own triggers clear its fragment."""
    uses = [("emoji", code, url) for code, url in emojis]
    uses += [("thumbnail", "", url) for url in thumbnails]
    await _set_uses(conn, "comment_id", comment_id, uses, now)


# --- fetching ---------------------------------------------------------------------------


async def get(conn: Conn, url: str, kind: str) -> MediaRow | None:
    row = await conn.fetchone(f"SELECT {_COLUMNS} FROM media m WHERE m.url = ? AND m.kind = ?",
                              (url, kind))
    return _row(row) if row else None


async def by_id(conn: Conn, media_id: int) -> MediaRow | None:
    row = await conn.fetchone(f"SELECT {_COLUMNS} FROM media m WHERE m.id = ?", (media_id,))
    return _row(row) if row else None


async def by_digest(conn: Conn, digest: str) -> MediaRow | None:
    """A ready image whose files carry this name."""
    row = await conn.fetchone(f"SELECT {_COLUMNS} FROM media m WHERE m.digest = ? "
                              "AND m.status = 'ready' ORDER BY m.id LIMIT 1", (digest,))
    return _row(row) if row else None


async def claim(conn: Conn, seen: MediaRow, now: datetime, until: datetime) -> bool:
    """Take the right to fetch an image until `until`; False while another process (or
    task) holds it, or once it is no longer as `seen` (another process fetched it between
    our read and this claim, and released its lease). One statement, so two claimants
    never both win."""
    return await conn.rowcount(
        "UPDATE media SET lease_until = ?, attempts = attempts + 1 WHERE id = ? "
        "AND status = ? AND digest IS ? AND next_try_at IS ? "
        "AND (lease_until IS NULL OR lease_until <= ?)",
        (ts(until), seen.id, seen.status, seen.digest, seen.next_try_at, ts(now))) > 0


async def release(conn: Conn, media_id: int) -> None:
    """End a claim without an outcome (the fetch was interrupted)."""
    await conn.execute("UPDATE media SET lease_until = NULL WHERE id = ?", (media_id,))


@dataclass(frozen=True)
class Outcome:
    """What a fetch made of an image."""

    status: str
    digest: str | None = None
    ext: str | None = None
    width: int | None = None
    height: int | None = None
    reason: str | None = None
    next_try_at: datetime | None = None


async def record(conn: Conn, media_id: int, outcome: Outcome, now: datetime,
                 owner_icon: str | None) -> bool:
    """Store a fetch's outcome and release the claim. When what pages show of the image
    changed (it became ready or stopped being, or its files were renamed), the fragments
    of every comment showing it are cleared and their threads' stamps moved, in this same
    transaction; True then. `owner_icon` is the blog's own avatar (shown on its answers)."""
    before = await by_id(conn, media_id)
    if before is None:
        return False
    await conn.execute(
        "UPDATE media SET status = ?, digest = COALESCE(?, digest), ext = COALESCE(?, ext), "
        "width = COALESCE(?, width), height = COALESCE(?, height), reason = ?, "
        "next_try_at = ?, lease_until = NULL, "
        "fetched_at = CASE WHEN ? = 'ready' THEN ? ELSE fetched_at END WHERE id = ?",
        (outcome.status, outcome.digest, outcome.ext, outcome.width, outcome.height,
         outcome.reason, ts(outcome.next_try_at), outcome.status, ts(now), media_id))
    after = await by_id(conn, media_id)
    assert after is not None
    if _shown(before) == _shown(after):
        return False
    await conn.run(_clear_users, after, owner_icon)
    return True


def _shown(row: MediaRow) -> tuple[Any, ...]:
    return (row.ready, row.digest, row.ext, row.width, row.height) if row.ready else (False,)


def _actor_comments_sql(actor_ids: Sequence[int]) -> tuple[str, tuple[Any, ...]]:
    marks = ", ".join("?" * len(actor_ids))
    return (f"SELECT id FROM comments WHERE actor_id IN ({marks}) UNION "
            f"SELECT comment_id FROM reactions WHERE actor_id IN ({marks}) "
            "AND comment_id IS NOT NULL", (*actor_ids, *actor_ids))


def _clear(db: sqlite3.Connection, comments: tuple[str, tuple[Any, ...]],
           extra_posts: Sequence[int]) -> None:
    """Clear the fragments of the comments a query names (as the schema's triggers do) and
    move the stamps of their threads and of `extra_posts`."""
    sql, params = comments
    ids = [r[0] for r in db.execute(sql, params)]
    posts = set(extra_posts)
    for part in _chunks(ids):
        marks = ", ".join("?" * len(part))
        db.execute(f"UPDATE comment_fragments SET body = NULL, gen = gen + 1 "
                   f"WHERE comment_id IN ({marks})", tuple(part))
        db.execute(f"INSERT OR IGNORE INTO comment_fragments (comment_id, gen) "
                   f"SELECT id, 1 FROM comments WHERE id IN ({marks})", tuple(part))
        posts.update(r[0] for r in db.execute(
            f"SELECT DISTINCT post_id FROM comments WHERE id IN ({marks})", tuple(part)))
    for part in _chunks(sorted(posts)):
        marks = ", ".join("?" * len(part))
        db.execute(f"UPDATE posts SET thread_version = thread_version + 1 WHERE id IN ({marks})",
                   tuple(part))


def _clear_users(db: sqlite3.Connection, media: MediaRow, owner_icon: str | None) -> None:
    if media.kind == "avatar":
        actors = [r[0] for r in db.execute("SELECT id FROM actors WHERE icon = ?", (media.url,))]
        parts = []
        params: list[Any] = []
        if actors:
            sql, more = _actor_comments_sql(actors)
            parts.append(sql)
            params.extend(more)
        if media.url == owner_icon:
            parts.append("SELECT id FROM comments WHERE origin = 'owner'")
        posts: list[int] = []
        for part in _chunks(actors):
            marks = ", ".join("?" * len(part))
            # The post's own facepile is not in any fragment: only its stamp moves.
            posts += [r[0] for r in db.execute(
                f"SELECT DISTINCT post_id FROM reactions WHERE actor_id IN ({marks}) "
                "AND comment_id IS NULL", tuple(part))]
        if parts:
            _clear(db, (" UNION ".join(parts), tuple(params)), posts)
        elif posts:
            _clear(db, ("SELECT NULL WHERE 0", ()), posts)
        return
    actors = [r[0] for r in db.execute(
        "SELECT actor_id FROM media_uses WHERE media_id = ? AND actor_id IS NOT NULL",
        (media.id,))]
    sql = "SELECT comment_id FROM media_uses WHERE media_id = ? AND comment_id IS NOT NULL"
    params = [media.id]
    if actors:
        more_sql, more = _actor_comments_sql(actors)
        sql += " UNION " + more_sql
        params.extend(more)
    _clear(db, (sql, tuple(params)), [])


# --- housekeeping -----------------------------------------------------------------------

#: An actor shows its avatar and name somewhere only while it wrote or reacted to something.
_ACTOR_SHOWN = ("(EXISTS (SELECT 1 FROM comments c WHERE c.actor_id = {a}) "
                "OR EXISTS (SELECT 1 FROM reactions r WHERE r.actor_id = {a}))")


async def unreferenced(conn: Conn, owner_icon: str | None, created_before: datetime,
                       limit: int) -> list[int]:
    """Images nothing shows any more (and older than `created_before`, so a row made for
    an actor whose first comment is being stored is not taken)."""
    rows = await conn.fetchall(
        "SELECT m.id FROM media m WHERE m.created_at < ? AND m.url IS NOT ? AND CASE "
        "WHEN m.kind = 'avatar' THEN NOT EXISTS (SELECT 1 FROM actors a WHERE a.icon = m.url "
        f"AND {_ACTOR_SHOWN.format(a='a.id')}) "
        "ELSE NOT EXISTS (SELECT 1 FROM media_uses u WHERE u.media_id = m.id AND ("
        "(u.comment_id IS NOT NULL AND EXISTS (SELECT 1 FROM comments c "
        "WHERE c.id = u.comment_id AND c.status <> 'deleted')) OR (u.actor_id IS NOT NULL "
        f"AND {_ACTOR_SHOWN.format(a='u.actor_id')}))) END LIMIT ?",
        (ts(created_before), owner_icon, limit))
    return [int(r[0]) for r in rows]


async def retries_due(conn: Conn, now: datetime, limit: int) -> list[tuple[str, str]]:
    """(url, kind) of images a page asked for whose fetch failed and may be tried again
    now, or was cut off (its process stopped; its lease ran out): the pages that showed
    their placeholders are cached and will not ask again."""
    rows = await conn.fetchall(
        "SELECT url, kind FROM media WHERE (status = 'failed' AND next_try_at <= ?) OR "
        "(status = 'pending' AND attempts > 0 AND (lease_until IS NULL OR lease_until <= ?)) "
        "ORDER BY id LIMIT ?", (ts(now), ts(now), limit))
    return [(str(r[0]), str(r[1])) for r in rows]


async def delete(conn: Conn, ids: Sequence[int]) -> int:
    total = 0
    for part in _chunks(list(ids)):
        marks = ", ".join("?" * len(part))
        total += await conn.rowcount(f"DELETE FROM media WHERE id IN ({marks})", tuple(part))
    return total


async def with_url_containing(conn: Conn, text: str) -> list[MediaRow]:
    """Images whose source URL contains `text` (lower-cased): the candidates of a domain
    block or unblock, which the caller matches exactly."""
    rows = await conn.fetchall(f"SELECT {_COLUMNS} FROM media m "
                               "WHERE instr(lower(m.url), ?) > 0", (text.lower(),))
    return [_row(r) for r in rows]


async def retry_refused(conn: Conn, ids: Sequence[int], refused_for: str, now: datetime
                        ) -> None:
    """Of these images, the ones refused for `refused_for` become failed fetches due at
    once (housekeeping fetches them again)."""
    for part in _chunks(list(ids)):
        marks = ", ".join("?" * len(part))
        await conn.execute(f"UPDATE media SET status = 'failed', next_try_at = ? "
                           f"WHERE id IN ({marks}) AND status = 'refused' AND reason = ?",
                           (ts(now), *part, refused_for))


async def refused_files(conn: Conn, reason: str) -> list[tuple[str, str, str]]:
    """(digest, kind, ext) of images refused for `reason` that still name files no ready
    image shares."""
    rows = await conn.fetchall(
        "SELECT DISTINCT digest, kind, ext FROM media m WHERE status = 'refused' AND reason = ? "
        "AND digest IS NOT NULL AND ext IS NOT NULL AND NOT EXISTS (SELECT 1 FROM media o "
        "WHERE o.digest = m.digest AND o.status = 'ready')", (reason,))
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


async def ready_digests(conn: Conn) -> set[str]:
    """Names of every image that has files (on some machine)."""
    rows = await conn.fetchall("SELECT DISTINCT digest FROM media WHERE status = 'ready' "
                               "AND digest IS NOT NULL")
    return {r[0] for r in rows}
