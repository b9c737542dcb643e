"""Change counters: how far each shared table has moved, as every process can read it."""

from __future__ import annotations

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
