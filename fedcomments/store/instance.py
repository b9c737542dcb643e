"""The blog's own key pair and instance-wide rows."""

from __future__ import annotations

from datetime import datetime

from fedcomments.store.conn import Conn
from fedcomments.store.rows import ts


async def get_keys(conn: Conn) -> tuple[str, str] | None:
    row = await conn.fetchone("SELECT private_key_pem, public_key_pem FROM instance WHERE id = 1")
    return (row[0], row[1]) if row else None


async def insert_keys(conn: Conn, private_pem: str, public_pem: str, now: datetime) -> None:
    await conn.execute(
        "INSERT OR IGNORE INTO instance (id, private_key_pem, public_key_pem, created_at) "
        "VALUES (1, ?, ?, ?)",
        (private_pem, public_pem, ts(now)),
    )


async def created_at(conn: Conn) -> str | None:
    row = await conn.fetchone("SELECT created_at FROM instance WHERE id = 1")
    return row[0] if row else None
