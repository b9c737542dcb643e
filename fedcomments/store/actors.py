"""Queries on cached remote actors, their keys and our followers."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from fedcomments.model import Follower, RemoteActor
from fedcomments.paging import Key
from fedcomments.store.changes import ACTORS  # what Conn.touch names for these writes
from fedcomments.store.conn import Conn
from fedcomments.store.paging import after, split
from fedcomments.store.rows import dt, dt_required, dumps, loads, ts

ACTOR_COLUMNS = (
    "a.id AS a_id, a.ap_id AS a_ap_id, a.domain AS a_domain, a.type AS a_type, "
    "a.username AS a_username, a.name AS a_name, a.summary AS a_summary, a.url AS a_url, "
    "a.icon AS a_icon, a.inbox AS a_inbox, a.shared_inbox AS a_shared_inbox, "
    "a.followers_url AS a_followers_url, a.fetched_at AS a_fetched_at, a.trusted AS a_trusted, "
    "a.indexable AS a_indexable, a.discoverable AS a_discoverable, "
    "a.profile_tags AS a_profile_tags"
)


def _flag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def actor_from_row(row: sqlite3.Row) -> RemoteActor:
    """Build an actor from columns selected with ACTOR_COLUMNS (prefixed a_)."""
    return RemoteActor(
        id=row["a_id"],
        ap_id=row["a_ap_id"],
        domain=row["a_domain"],
        type=row["a_type"],
        username=row["a_username"],
        name=row["a_name"],
        summary=row["a_summary"],
        url=row["a_url"],
        icon=row["a_icon"],
        inbox=row["a_inbox"],
        shared_inbox=row["a_shared_inbox"],
        followers_url=row["a_followers_url"],
        fetched_at=dt_required(row["a_fetched_at"]),
        trusted=bool(row["a_trusted"]),
        indexable=_flag(row["a_indexable"]),
        discoverable=_flag(row["a_discoverable"]),
        profile_tags=tuple(loads(row["a_profile_tags"], [])),
    )


@dataclass(frozen=True)
class ActorFields:
    """What we keep of a remote actor document."""

    ap_id: str
    domain: str
    type: str
    username: str | None
    name: str | None
    summary: str | None
    url: str | None
    icon: str | None
    inbox: str | None
    shared_inbox: str | None
    followers_url: str | None
    indexable: bool | None = None
    discoverable: bool | None = None
    profile_tags: tuple[str, ...] = ()


def _stored_flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


async def by_ap_id(conn: Conn, ap_id: str) -> RemoteActor | None:
    row = await conn.fetchone(f"SELECT {ACTOR_COLUMNS} FROM actors a WHERE a.ap_id = ?", (ap_id,))
    return actor_from_row(row) if row else None


async def by_id(conn: Conn, actor_id: int) -> RemoteActor | None:
    row = await conn.fetchone(f"SELECT {ACTOR_COLUMNS} FROM actors a WHERE a.id = ?", (actor_id,))
    return actor_from_row(row) if row else None


async def upsert(conn: Conn, fields: ActorFields, now: datetime) -> int:
    """Insert or refresh an actor; returns its row id."""
    conn.touch(ACTORS)
    await conn.execute(
        "INSERT INTO actors (ap_id, domain, type, username, name, summary, url, icon, inbox, "
        "shared_inbox, followers_url, fetched_at, indexable, discoverable, profile_tags) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (ap_id) DO UPDATE SET domain = excluded.domain, type = excluded.type, "
        "username = excluded.username, name = excluded.name, summary = excluded.summary, "
        "url = excluded.url, icon = excluded.icon, inbox = excluded.inbox, "
        "shared_inbox = excluded.shared_inbox, followers_url = excluded.followers_url, "
        "fetched_at = excluded.fetched_at, indexable = excluded.indexable, "
        "discoverable = excluded.discoverable, profile_tags = excluded.profile_tags",
        (fields.ap_id, fields.domain, fields.type, fields.username, fields.name, fields.summary,
         fields.url, fields.icon, fields.inbox, fields.shared_inbox, fields.followers_url,
         ts(now), _stored_flag(fields.indexable), _stored_flag(fields.discoverable),
         dumps(list(fields.profile_tags))),
    )
    row = await conn.fetchone("SELECT id FROM actors WHERE ap_id = ?", (fields.ap_id,))
    assert row is not None
    return int(row[0])


async def set_consent(conn: Conn, actor_id: int, *, indexable: bool | None,
                      discoverable: bool | None, profile_tags: tuple[str, ...]) -> None:
    """What an actor consents to (from its signed Update), without the rest of its profile."""
    conn.touch(ACTORS)
    await conn.execute(
        "UPDATE actors SET indexable = ?, discoverable = ?, profile_tags = ? WHERE id = ?",
        (_stored_flag(indexable), _stored_flag(discoverable), dumps(list(profile_tags)),
         actor_id))


async def set_trusted(conn: Conn, actor_id: int, trusted: bool) -> None:
    conn.touch(ACTORS)
    await conn.execute("UPDATE actors SET trusted = ? WHERE id = ?", (int(trusted), actor_id))


async def key_by_id(conn: Conn, key_id: str) -> tuple[str, str, datetime] | None:
    """(owner actor ap_id, pem, fetched_at) for a cached key."""
    row = await conn.fetchone(
        "SELECT a.ap_id, k.pem, k.fetched_at FROM actor_keys k JOIN actors a ON a.id = k.actor_id "
        "WHERE k.key_id = ?",
        (key_id,),
    )
    return (row[0], row[1], dt_required(row[2])) if row else None


async def store_key(conn: Conn, key_id: str, actor_id: int, pem: str, now: datetime) -> None:
    conn.touch(ACTORS)
    await conn.execute(
        "INSERT INTO actor_keys (key_id, actor_id, pem, fetched_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (key_id) DO UPDATE SET actor_id = excluded.actor_id, pem = excluded.pem, "
        "fetched_at = excluded.fetched_at",
        (key_id, actor_id, pem, ts(now)),
    )


async def delete_actor(conn: Conn, actor_id: int) -> None:
    conn.touch(ACTORS)
    await conn.execute("DELETE FROM actors WHERE id = ?", (actor_id,))


# --- followers -------------------------------------------------------------------------


async def add_follower(conn: Conn, actor_id: int, follow_id: str | None, now: datetime) -> bool:
    """Returns True when the actor was not a follower before."""
    existing = await conn.fetchone("SELECT 1 FROM followers WHERE actor_id = ?", (actor_id,))
    await conn.execute(
        "INSERT INTO followers (actor_id, follow_id, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (actor_id) DO UPDATE SET follow_id = excluded.follow_id",
        (actor_id, follow_id, ts(now)),
    )
    return existing is None


async def remove_follower(conn: Conn, actor_id: int) -> bool:
    return await conn.rowcount("DELETE FROM followers WHERE actor_id = ?", (actor_id,)) > 0


async def count_followers(conn: Conn) -> int:
    row = await conn.fetchone("SELECT COUNT(*) FROM followers")
    return int(row[0]) if row else 0


async def list_followers(conn: Conn, *, limit: int = 1000, offset: int = 0) -> list[Follower]:
    rows = await conn.fetchall(
        f"SELECT {ACTOR_COLUMNS}, f.follow_id, f.created_at FROM followers f "
        "JOIN actors a ON a.id = f.actor_id ORDER BY f.created_at, a.id LIMIT ? OFFSET ?",
        (limit, offset),
    )
    return [
        Follower(actor=actor_from_row(r), follow_id=r["follow_id"],
                 created_at=dt_required(r["created_at"]))
        for r in rows
    ]


async def followers_page(conn: Conn, *, limit: int, key: Key | None = None
                         ) -> tuple[list[Follower], Key | None]:
    """Oldest first, after `key` (since, actor id) when given."""
    where = "WHERE " + after(["f.created_at", "f.actor_id"], False) if key else ""
    rows = await conn.fetchall(
        f"SELECT {ACTOR_COLUMNS}, f.follow_id, f.created_at FROM followers f "
        f"JOIN actors a ON a.id = f.actor_id {where} ORDER BY f.created_at, f.actor_id "
        "LIMIT ?", (*(key or ()), limit + 1))
    return split(rows, limit, lambda r: Follower(actor=actor_from_row(r),
                                                 follow_id=r["follow_id"],
                                                 created_at=dt_required(r["created_at"])),
                 lambda r: (r["created_at"], r["a_id"]))


async def follower_inboxes(conn: Conn) -> list[str]:
    """Distinct delivery targets for the followers: shared inbox when known, else inbox."""
    rows = await conn.fetchall(
        "SELECT DISTINCT COALESCE(a.shared_inbox, a.inbox) FROM followers f "
        "JOIN actors a ON a.id = f.actor_id WHERE COALESCE(a.shared_inbox, a.inbox) IS NOT NULL "
        "ORDER BY 1"
    )
    return [r[0] for r in rows]


async def last_fetched(conn: Conn, ap_id: str) -> datetime | None:
    row = await conn.fetchone("SELECT fetched_at FROM actors WHERE ap_id = ?", (ap_id,))
    return dt(row[0]) if row else None


async def delete_keys(conn: Conn, actor_id: int) -> None:
    conn.touch(ACTORS)
    await conn.execute("DELETE FROM actor_keys WHERE actor_id = ?", (actor_id,))


async def delete_reactions(conn: Conn, actor_id: int) -> int:
    return await conn.rowcount("DELETE FROM reactions WHERE actor_id = ?", (actor_id,))


async def add_report(conn: Conn, *, ap_id: str, actor_id: int, content: str,
                     object_ids: list[str], now: datetime) -> bool:
    return await conn.rowcount(
        "INSERT OR IGNORE INTO reports (ap_id, actor_id, content, object_ids, created_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (ap_id, actor_id, content, dumps(object_ids), ts(now)),
    ) > 0


async def is_follow(conn: Conn, actor_id: int, follow_id: str) -> bool:
    row = await conn.fetchone(
        "SELECT 1 FROM followers WHERE actor_id = ? AND follow_id = ?", (actor_id, follow_id)
    )
    return row is not None


async def key_with_actor(conn: Conn, key_id: str) -> tuple[RemoteActor, str, datetime] | None:
    """(owner actor, pem, fetched_at) of a cached key, in one query."""
    row = await conn.fetchone(
        f"SELECT {ACTOR_COLUMNS}, k.pem AS k_pem, k.fetched_at AS k_fetched_at "
        "FROM actor_keys k JOIN actors a ON a.id = k.actor_id WHERE k.key_id = ?",
        (key_id,),
    )
    if row is None:
        return None
    return actor_from_row(row), row["k_pem"], dt_required(row["k_fetched_at"])


async def touch_key(conn: Conn, key_id: str, now: datetime) -> None:
    """Record a refetch attempt, so a failing origin is not asked again at once."""
    conn.touch(ACTORS)
    await conn.execute("UPDATE actor_keys SET fetched_at = ? WHERE key_id = ?", (ts(now), key_id))


async def claim_actor_refetch(conn: Conn, actor_id: int, now: datetime, since: datetime) -> bool:
    """Stamp an actor's fetched_at with `now` unless it was fetched after `since`; True when
    stamped (the caller may refetch). One statement, so concurrent callers cannot both win."""
    conn.touch(ACTORS)
    return await conn.rowcount(
        "UPDATE actors SET fetched_at = ? WHERE id = ? AND fetched_at <= ?",
        (ts(now), actor_id, ts(since)),
    ) > 0


async def delete_keys_except(conn: Conn, actor_id: int, keep: list[str]) -> int:
    """Forget an actor's keys that its current document no longer lists (rotation)."""
    conn.touch(ACTORS)
    marks = ", ".join("?" for _ in keep) or "NULL"
    return await conn.rowcount(
        f"DELETE FROM actor_keys WHERE actor_id = ? AND key_id NOT IN ({marks})",
        (actor_id, *keep),
    )
