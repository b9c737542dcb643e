"""Withholding an author's public replies from every public surface (their consent), and
giving them back: `visibility` goes private, the audience they gave is kept in `addressed`."""

from __future__ import annotations

from fedcomments.store.conn import Conn

# Which of an author's replies a verdict covers: every one (an opt-out tag), or only the
# unlisted ones (not discoverable and unlisted). Deleted placeholders are left alone: they
# show nothing of the author and keep others' replies threaded.
_COVERED = ("(:everything IS NOT NULL OR (:unlisted IS NOT NULL AND "
            "COALESCE(addressed, visibility) = 'unlisted'))")
_REASON = "COALESCE(:everything, :unlisted)"


async def apply(conn: Conn, actor_id: int, *, everything: str | None,
                unlisted: str | None) -> int:
    """Make an author's remote replies match a verdict: `everything` withholds all their
    public and unlisted replies with that reason, `unlisted` only the unlisted ones; the
    others get back the audience they were addressed to. Returns the replies changed."""
    params = {"actor": actor_id, "everything": everything, "unlisted": unlisted}
    changed = await conn.rowcount(
        "UPDATE comments SET visibility = COALESCE(addressed, visibility), addressed = NULL, "
        "withheld = NULL "
        f"WHERE actor_id = :actor AND withheld IS NOT NULL AND NOT {_COVERED}", params)
    changed += await conn.rowcount(
        f"UPDATE comments SET withheld = {_REASON} WHERE actor_id = :actor "
        f"AND withheld IS NOT NULL AND withheld IS NOT {_REASON} AND {_COVERED}", params)
    if everything is not None or unlisted is not None:
        changed += await conn.rowcount(
            f"UPDATE comments SET addressed = visibility, visibility = 'direct', "
            f"withheld = {_REASON} WHERE actor_id = :actor AND withheld IS NULL "
            "AND origin = 'remote' AND status != 'deleted' "
            f"AND visibility IN ('public', 'unlisted') AND {_COVERED}", params)
    return changed


async def has_withheld(conn: Conn, actor_id: int) -> bool:
    row = await conn.fetchone(
        "SELECT 1 FROM comments WHERE actor_id = ? AND withheld IS NOT NULL LIMIT 1",
        (actor_id,))
    return row is not None


async def set_addressed(conn: Conn, comment_id: int, addressed: str) -> None:
    """A withheld reply's author narrowed its audience (it stays withheld meanwhile)."""
    await conn.execute("UPDATE comments SET addressed = ? WHERE id = ? AND withheld IS NOT NULL",
                       (addressed, comment_id))
