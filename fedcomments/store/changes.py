"""Change counters: how far each shared table has moved, as every process can read it."""

from __future__ import annotations

import sqlite3

from fedcomments.store.conn import Conn

#: Writes to actors and their keys (what the inbox's key cache copies).
ACTORS = "actors"
#: Domain and actor blocks.
BLOCKS = "blocks"
#: Delivery marks of hosts (unavailable, failure days).
HOSTS = "hosts"


async def counters(conn: Conn) -> dict[str, int]:
    """Each counter's value; kept by triggers (migration 7), so it moves with any commit of
    any process that changed the table."""
    return {row[0]: int(row[1]) for row in await conn.fetchall(
        "SELECT name, n FROM change_counters")}


async def counter(conn: Conn, name: str) -> int:
    """One counter's value: a primary-key read, cheap enough before any fetch."""
    return int(await conn.run(_counter, name))


class ChangedMeanwhile(Exception):
    """A counter moved since the caller's in-memory copy was read (see require_unchanged)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} changed meanwhile")
        self.name = name


def _counter(db: sqlite3.Connection, name: str) -> int:
    return int(db.execute("SELECT n FROM change_counters WHERE name = ?", (name,)).fetchone()[0])


async def require_unchanged(conn: Conn, name: str, seen: int | None) -> None:
    """Inside a write transaction: raise ChangedMeanwhile unless `name`'s counter is still
    `seen`. SQLite's write lock orders this against the transaction that moved it."""
    if await conn.run(_counter, name) != seen:
        raise ChangedMeanwhile(name)
