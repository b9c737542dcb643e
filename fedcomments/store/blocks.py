"""Queries on domain and actor blocks."""

from __future__ import annotations

from fedcomments.store.db import Conn


async def blocked_domains(conn: Conn) -> list[str]:
    return [r[0] for r in await conn.fetchall("SELECT domain FROM domain_blocks")]


async def blocked_actors(conn: Conn) -> list[str]:
    return [r[0] for r in await conn.fetchall("SELECT ap_id FROM actor_blocks")]
