"""Aggregate counts for NodeInfo and listings."""

from __future__ import annotations

from fedcomments.store.db import Conn


async def count_public_comments(conn: Conn) -> int:
    row = await conn.fetchone(
        "SELECT COUNT(*) FROM comments WHERE status = 'approved' "
        "AND visibility IN ('public', 'unlisted')"
    )
    return int(row[0]) if row else 0
