"""What the inbox fetches, stores or refuses follows the blocks committed last, by any
process: refusals are confirmed against the database, fetches catch up with it first, and
every inbox write checks, in its own transaction, that its sender is not blocked.

Each process keeps the blocklist in memory, filed under the database's blocks counter it
was read at (Runtime.follow_blocks reads that counter, one primary-key read, and reloads
the lists when it moved). A block's own transaction removes what the blocked sender left
so far, so a write that commits after it must not bring anything back: the write checks
that the counter is still the one its copy of the list was read at, and that this list
does not block the sender or anything the activity names. When the counter moved, the
list is reloaded and the write tried again.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from fedcomments.blocklist import Blocklist
from fedcomments.errors import FedcommentsError, Forbidden
from fedcomments.names import host_of
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


class NamesBlocked(Exception):
    """The activity names something on a blocked server (not its sender): it is dropped."""

    def __init__(self, url: str) -> None:
        super().__init__(f"{host_of(url)} is blocked")
        self.url = url


def _forbidden(url: str) -> Forbidden:
    return Forbidden(f"{host_of(url)} is blocked")


async def blocked(rt: Runtime, urls: Iterable[str | None]) -> str | None:
    """The first of `urls` blocked by the latest committed blocks, or None.

    The in-memory list answers a miss at no cost; a hit is confirmed against the
    database's counter first, so a block lifted a moment ago by another process (the
    CLI's `unblock`) refuses nothing.
    """
    urls = list(urls)
    if rt.blocklist.first_blocked(urls) is None:
        return None
    await rt.follow_blocks()
    return rt.blocklist.first_blocked(urls)


async def refuse(rt: Runtime, *urls: str | None) -> None:
    """Forbidden (403) when one of `urls` is blocked (see `blocked`)."""
    hit = await blocked(rt, urls)
    if hit is not None:
        raise _forbidden(hit)


async def before_fetch(rt: Runtime, *urls: str | None) -> None:
    """Before fetching anything on behalf of `urls` (a sender's key, an actor): catch up
    with the blocks every process committed, then refuse (403) when one is blocked. So a
    block made from the command line stops the fetch the moment the command returns."""
    await rt.follow_blocks()
    hit = rt.blocklist.first_blocked(urls)
    if hit is not None:
        raise _forbidden(hit)


class _Refused(Exception):
    def __init__(self, url: str, sender: bool) -> None:
        super().__init__(url)
        self.url = url
        self.sender = sender


async def unit(rt: Runtime, sender: str, work: Unit[T], *,
               named: Iterable[str | None] = ()) -> T:
    """`rt.db.unit(work)`, refused when it commits if `sender` is blocked (Forbidden), or
    anything in `named` is (NamesBlocked)."""
    others = [u for u in named if u]
    for _attempt in range(ATTEMPTS):
        view: Blocklist = rt.blocklist.view()  # the lists and their version, together

        async def guarded(tx: Conn, view: Blocklist = view) -> T:
            await changes.require_unchanged(tx, changes.BLOCKS, view.version)
            # The counter is unchanged inside this write transaction, so `view` is what
            # is committed: checked here, a block cannot slip between check and write.
            if view.url_blocked(sender):
                raise _Refused(sender, True)
            hit = view.first_blocked(others)
            if hit is not None:
                raise _Refused(hit, False)
            return await work(tx)

        try:
            return await rt.db.unit(guarded)
        except changes.ChangedMeanwhile:
            await rt.follow_blocks()
        except _Refused as refused:
            if refused.sender:
                raise _forbidden(refused.url) from None
            raise NamesBlocked(refused.url) from None
    raise BlocksChurning("blocks changed while this activity was stored; try again")
