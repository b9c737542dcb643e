"""Inbox writes that hold only while their sender is not blocked, checked in the write.

Each process keeps the blocklist in memory and follows other processes' blocks (a sibling
HTTP worker's, the CLI's) within half a second. A block's own transaction removes what the
blocked sender left so far, so a write that commits after it must not bring anything back:
every inbox write first checks, inside its transaction, that the blocks counter is the one
this process's list was loaded at. When it moved, the list is reloaded and the sender is
checked again before the write is retried.
"""

from __future__ import annotations

from typing import TypeVar

from fedcomments.blocklist import host_of
from fedcomments.errors import FedcommentsError, Forbidden
from fedcomments.runtime import Runtime
from fedcomments.store import changes
from fedcomments.store.conn import Conn
from fedcomments.store.units import Unit

T = TypeVar("T")

#: Blocks committed this many times in a row while one write waited are not chased further.
ATTEMPTS = 5


class BlocksChurning(FedcommentsError):
    """Blocks kept changing under the write; the sender may try again later."""

    http_status = 503


async def unit(rt: Runtime, sender: str, work: Unit[T]) -> T:
    """`rt.db.unit(work)`, refused (Forbidden) if `sender` is blocked when it commits."""
    for _attempt in range(ATTEMPTS):
        seen = rt.blocks_seen

        async def guarded(tx: Conn, seen: int | None = seen) -> T:
            await changes.require_unchanged(tx, changes.BLOCKS, seen)
            return await work(tx)

        try:
            return await rt.db.unit(guarded)
        except changes.ChangedMeanwhile:
            await rt.refresh_shared()
            if rt.blocklist.url_blocked(sender):
                raise Forbidden(f"{host_of(sender)} is blocked") from None
    raise BlocksChurning("blocks changed while this activity was stored; try again")
