"""What the spam service said of a comment, and what it was asked (to report ham/spam)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from fedcomments.store.conn import Conn
from fedcomments.store.rows import dt_required, dumps, loads, ts


@dataclass(frozen=True)
class SpamCheck:
    comment_id: int
    #: "spam", "ham", "unknown" (the service failed: the policy decided) or "queued"
    verdict: str
    detail: str
    params: dict[str, str]
    checked_at: datetime
    #: "ham" or "spam" once reported to the service after the owner's decision
    reported: str | None


async def record(conn: Conn, comment_id: int, verdict: str, detail: str,
                 params: dict[str, str], now: datetime) -> None:
    await conn.execute(
        "INSERT OR REPLACE INTO spam_checks (comment_id, verdict, detail, params, checked_at) "
        "VALUES (?, ?, ?, ?, ?)", (comment_id, verdict, detail, dumps(params), ts(now)))


async def get(conn: Conn, comment_id: int) -> SpamCheck | None:
    row = await conn.fetchone("SELECT * FROM spam_checks WHERE comment_id = ?", (comment_id,))
    if row is None:
        return None
    return SpamCheck(row["comment_id"], row["verdict"], row["detail"], loads(row["params"], {}),
                     dt_required(row["checked_at"]), row["reported"])


async def verdicts(conn: Conn, comment_ids: Collection[int]) -> dict[int, str]:
    if not comment_ids:
        return {}
    rows = await conn.fetchall(
        "SELECT comment_id, verdict FROM spam_checks WHERE comment_id IN "
        "(SELECT value FROM json_each(?))", (dumps(sorted(comment_ids)),))
    return {int(r[0]): str(r[1]) for r in rows}


async def mark_reported(conn: Conn, comment_id: int, what: str) -> None:
    """The owner's decision went to the service; the reader's address and IP are dropped."""
    await conn.execute(
        "UPDATE spam_checks SET reported = ?, params = '{}' WHERE comment_id = ?",
        (what, comment_id))


async def forget_params(conn: Conn, checked_before: datetime) -> int:
    """Drop what the service was asked (the reader's IP, address, browser) of comments
    checked before `checked_before`; a check still queued keeps them."""
    return await conn.rowcount(
        "UPDATE spam_checks SET params = '{}' WHERE checked_at < ? AND verdict != 'queued' "
        "AND params != '{}'", (ts(checked_before),))
