"""Queries on domain and actor blocks, and the rows a block reaches (actors, deliveries)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from fedcomments.model import ActorBlock, DomainBlock
from fedcomments.paging import Key
from fedcomments.store.conn import Conn
from fedcomments.store.paging import after, split
from fedcomments.store.rows import dt_required, dumps, loads, ts


def _like_suffix(domain: str) -> str:
    """LIKE pattern for every subdomain of `domain` (wildcards in it escaped)."""
    escaped = domain.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return "%." + escaped


async def blocked_domains(conn: Conn) -> list[str]:
    return [r[0] for r in await conn.fetchall("SELECT domain FROM domain_blocks")]


async def blocked_actors(conn: Conn) -> list[str]:
    return [r[0] for r in await conn.fetchall("SELECT ap_id FROM actor_blocks")]


def _domain_block(row: sqlite3.Row) -> DomainBlock:
    return DomainBlock(domain=row["domain"], reason=row["reason"],
                       created_at=dt_required(row["created_at"]),
                       keep_content=bool(row["keep_content"]), removed=loads(row["removed"], {}))


def _actor_block(row: sqlite3.Row) -> ActorBlock:
    return ActorBlock(ap_id=row["ap_id"], reason=row["reason"],
                      created_at=dt_required(row["created_at"]),
                      keep_content=bool(row["keep_content"]), removed=loads(row["removed"], {}))


async def list_domain_blocks(conn: Conn) -> list[DomainBlock]:
    rows = await conn.fetchall(
        "SELECT domain, reason, keep_content, removed, created_at FROM domain_blocks "
        "ORDER BY domain")
    return [_domain_block(r) for r in rows]


async def domain_blocks_page(conn: Conn, *, limit: int, key: Key | None = None
                             ) -> tuple[list[DomainBlock], Key | None]:
    """By domain, after `key` (the last domain shown) when given."""
    where = "WHERE " + after(["domain"], False) if key else ""
    rows = await conn.fetchall(
        f"SELECT domain, reason, keep_content, removed, created_at FROM domain_blocks {where} "
        "ORDER BY domain LIMIT ?", (*(key or ()), limit + 1))
    return split(rows, limit, _domain_block, lambda r: (r["domain"],))


async def actor_blocks_page(conn: Conn, *, limit: int, key: Key | None = None
                            ) -> tuple[list[ActorBlock], Key | None]:
    """By actor id, after `key` (the last one shown) when given."""
    where = "WHERE " + after(["ap_id"], False) if key else ""
    rows = await conn.fetchall(
        f"SELECT ap_id, reason, keep_content, removed, created_at FROM actor_blocks {where} "
        "ORDER BY ap_id LIMIT ?", (*(key or ()), limit + 1))
    return split(rows, limit, _actor_block, lambda r: (r["ap_id"],))


async def get_domain_block(conn: Conn, domain: str) -> DomainBlock | None:
    row = await conn.fetchone(
        "SELECT domain, reason, keep_content, removed, created_at FROM domain_blocks "
        "WHERE domain = ?", (domain,))
    return _domain_block(row) if row else None


async def insert_domain_block(conn: Conn, domain: str, *, reason: str, keep_content: bool,
                              now: datetime) -> bool:
    """True when the block is new (an existing one is left as it is)."""
    return await conn.rowcount(
        "INSERT OR IGNORE INTO domain_blocks (domain, reason, keep_content, created_at) "
        "VALUES (?, ?, ?, ?)", (domain, reason, int(keep_content), ts(now))) > 0


async def update_domain_block(conn: Conn, domain: str, *, removed: dict[str, int],
                              keep_content: bool) -> None:
    await conn.execute("UPDATE domain_blocks SET removed = ?, keep_content = ? WHERE domain = ?",
                       (dumps(removed), int(keep_content), domain))


async def delete_domain_block(conn: Conn, domain: str) -> bool:
    return await conn.rowcount("DELETE FROM domain_blocks WHERE domain = ?", (domain,)) > 0


async def list_actor_blocks(conn: Conn) -> list[ActorBlock]:
    rows = await conn.fetchall(
        "SELECT ap_id, reason, keep_content, removed, created_at FROM actor_blocks "
        "ORDER BY ap_id")
    return [_actor_block(r) for r in rows]


async def insert_actor_block(conn: Conn, ap_id: str, *, reason: str, keep_content: bool,
                             now: datetime) -> bool:
    return await conn.rowcount(
        "INSERT OR IGNORE INTO actor_blocks (ap_id, reason, keep_content, created_at) "
        "VALUES (?, ?, ?, ?)", (ap_id, reason, int(keep_content), ts(now))) > 0


async def get_actor_block(conn: Conn, ap_id: str) -> ActorBlock | None:
    row = await conn.fetchone(
        "SELECT ap_id, reason, keep_content, removed, created_at FROM actor_blocks "
        "WHERE ap_id = ?", (ap_id,))
    return _actor_block(row) if row else None


async def update_actor_block(conn: Conn, ap_id: str, *, removed: dict[str, int],
                             keep_content: bool) -> None:
    await conn.execute("UPDATE actor_blocks SET removed = ?, keep_content = ? WHERE ap_id = ?",
                       (dumps(removed), int(keep_content), ap_id))


async def delete_actor_block(conn: Conn, ap_id: str) -> bool:
    return await conn.rowcount("DELETE FROM actor_blocks WHERE ap_id = ?", (ap_id,)) > 0


async def actor_ids_in_domain(conn: Conn, domain: str) -> list[int]:
    """Cached actors on `domain` or any of its subdomains."""
    rows = await conn.fetchall(
        "SELECT id FROM actors WHERE domain = ? OR domain LIKE ? ESCAPE '\\' ORDER BY id",
        (domain, _like_suffix(domain)))
    return [int(r[0]) for r in rows]


async def actors_in_other_spellings(conn: Conn) -> list[tuple[int, str]]:
    """(id, domain) of cached actors whose domain is not in the one spelling hosts have
    (stored before every host was normalised: upper case, Unicode)."""
    rows = await conn.fetchall("SELECT id, domain FROM actors WHERE domain GLOB '*[^a-z0-9._:-]*'")
    return [(int(r[0]), str(r[1])) for r in rows]


async def actor_by_handle(conn: Conn, username: str, domain: str) -> list[str]:
    """Ids of cached actors whose preferredUsername and host match (case-insensitive)."""
    rows = await conn.fetchall(
        "SELECT ap_id FROM actors WHERE lower(username) = lower(?) AND domain = ? ORDER BY id",
        (username, domain))
    return [r[0] for r in rows]


# The delivery queue belongs to the delivery worker; a block only ever moves pending jobs
# to 'cancelled' (a job being sent right now is refused by the client's block check).


async def cancel_deliveries_to_domain(conn: Conn, domain: str, now: datetime) -> int:
    return await conn.rowcount(
        "UPDATE deliveries SET status = 'cancelled', finished_at = ?, "
        "last_error = 'domain blocked', locked_until = NULL WHERE status = 'pending' "
        "AND (host = ? OR host LIKE ? ESCAPE '\\')",
        (ts(now), domain, _like_suffix(domain)))


async def cancel_deliveries_to_inbox(conn: Conn, inbox: str, now: datetime) -> int:
    return await conn.rowcount(
        "UPDATE deliveries SET status = 'cancelled', finished_at = ?, "
        "last_error = 'actor blocked', locked_until = NULL WHERE status = 'pending' "
        "AND inbox = ?",
        (ts(now), inbox))
