"""Stored remote replies re-fetched from their origin, to notice what changed without a word:
deleted (404/410: tombstoned as if the Delete had arrived), made narrower (moved to private),
edited (updated as an Update would). Errors and 5xx change nothing.

Housekeeping checks each reply on a schedule that favours young ones, within hourly limits
in total and per server; `fedcomments comments recheck` checks the ones named at once.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fedcomments.ap import parse
from fedcomments.errors import FedcommentsError, InvalidInput, ProtocolError
from fedcomments.model import Comment, CommentStatus, Origin
from fedcomments.names import host_of
from fedcomments.remote import FetchFailed
from fedcomments.runtime import Runtime
from fedcomments.services import comments, posts
from fedcomments.store import comments as comment_store
from fedcomments.store import queue
from fedcomments.store import recheck as recheck_store

log = logging.getLogger("fedcomments.recheck")

#: Checks after a reply was stored; then every THEREAFTER. Replies change (are edited,
#: deleted, made private) mostly in their first hours, rarely after a month.
SCHEDULE = (timedelta(hours=1), timedelta(days=1), timedelta(weeks=1), timedelta(days=30))
THEREAFTER = timedelta(days=90)
#: A check that could not reach the server is tried again after this long.
RETRY = timedelta(hours=6)
#: How often housekeeping looks for due replies.
PASS_INTERVAL = timedelta(minutes=5)
#: Replies one pass looks at (many may be skipped: their server is at its hourly limit).
PASS_BATCH = 500
#: Replies one `comments recheck` may name or select.
MAX_SELECTED = 10_000
#: Answers that mean the object is gone, as a Delete would say.
GONE_STATUSES = frozenset({404, 410})


def next_check(created: datetime, checked: datetime) -> datetime:
    """When a reply stored at `created` and checked at `checked` is due again."""
    for step in SCHEDULE:
        if created + step > checked:
            return created + step
    return checked + THEREAFTER


@dataclass(frozen=True)
class Outcome:
    """What one check found and did."""

    id: int
    ap_id: str | None
    #: unchanged, edited, private, edited and private, deleted, error, skipped
    outcome: str
    detail: str = ""


@dataclass
class Pacer:
    """GETs made in the last hour, to stay within the hourly limits (in memory: one
    housekeeping task runs per database)."""

    made: deque[tuple[datetime, str]] = field(default_factory=deque)

    def allow(self, host: str, now: datetime, per_hour: int, per_host: int) -> bool:
        hour_ago = now - timedelta(hours=1)
        while self.made and self.made[0][0] <= hour_ago:
            self.made.popleft()
        if len(self.made) >= per_hour:
            return False
        return sum(1 for _, h in self.made if h == host) < per_host

    def note(self, host: str, now: datetime) -> None:
        self.made.append((now, host))


async def _troubled(rt: Runtime) -> set[str]:
    """Servers we must not ask now: paused or marked unavailable by deliveries."""
    return {h.host for h in await queue.troubled_hosts(rt.db.read, rt.now())}


async def recheck_comment(rt: Runtime, comment_id: int) -> Outcome:
    """Fetch one stored remote reply from its origin (signed GET) and apply what changed."""
    comment = await comment_store.by_id(rt.db.read, comment_id)
    if comment is None:
        return Outcome(comment_id, None, "skipped", "no such comment")
    if comment.origin is not Origin.REMOTE or not comment.ap_id or comment.actor is None:
        return Outcome(comment_id, comment.ap_id, "skipped", "not a fediverse reply")
    if comment.status is CommentStatus.DELETED:
        return Outcome(comment_id, comment.ap_id, "skipped", "deleted already")
    ap_id = comment.ap_id
    if rt.blocklist.url_blocked(ap_id):
        return Outcome(comment_id, ap_id, "skipped", "its server is blocked")
    try:
        resp = await rt.remote.get_json(ap_id)
    except FetchFailed as exc:
        if exc.status in GONE_STATUSES:
            return await _gone(rt, comment, f"answered {exc.status}")
        return await _failed(rt, comment, str(exc))
    except FedcommentsError as exc:  # refused by the guard, or another remote failure
        return await _failed(rt, comment, str(exc))
    try:
        obj = parse.parse_object(resp.data, normalizer=rt.normalizer)
    except (ProtocolError, RecursionError) as exc:
        return await _failed(rt, comment, f"unreadable: {exc}")
    if obj.id != ap_id:
        return await _failed(rt, comment, f"the document has id {obj.id}")
    if obj.type == "Tombstone":
        return await _gone(rt, comment, "it is a Tombstone")
    if obj.attributed_to != comment.actor.ap_id or obj.type not in comments.NOTE_TYPES:
        return await _failed(rt, comment, "no longer the same author's note")
    return await _apply(rt, comment, obj)


async def _schedule(rt: Runtime, comment: Comment, *, ok: bool) -> None:
    now = rt.now()
    async with rt.db.transaction() as tx:
        await recheck_store.schedule(
            tx, comment.id, checked_at=now if ok else None,
            next_at=next_check(comment.created_at, now) if ok else now + RETRY)


async def _failed(rt: Runtime, comment: Comment, why: str) -> Outcome:
    """Network errors, 5xx, refusals and odd answers change nothing; tried again later."""
    await _schedule(rt, comment, ok=False)
    log.info("recheck failed", extra={"comment": comment.id, "error": why})
    return Outcome(comment.id, comment.ap_id, "error", why)


async def _gone(rt: Runtime, comment: Comment, why: str) -> Outcome:
    """Deleted at its origin: as if its Delete had arrived (a tombstone while replies
    hang below it, else removed; its id can never come back)."""
    async with rt.db.transaction() as tx:
        fresh = await comment_store.by_id(tx, comment.id)
        if fresh is None or fresh.status is CommentStatus.DELETED:
            return Outcome(comment.id, comment.ap_id, "skipped", "deleted meanwhile")
        how = await comment_store.remove(tx, fresh, rt.now())
    return Outcome(comment.id, comment.ap_id, "deleted", f"{why}; {how}")


async def _apply(rt: Runtime, comment: Comment, obj: parse.IncomingObject) -> Outcome:
    assert comment.actor is not None
    version = comments.prepare_version(rt, obj, comment.actor)
    async with rt.db.transaction() as tx:
        fresh = await comment_store.by_id(tx, comment.id)
        if fresh is None or fresh.status is CommentStatus.DELETED:
            return Outcome(comment.id, comment.ap_id, "skipped", "deleted meanwhile")
        audience = comments.narrower(obj, fresh)
        edited = comments.changed(version, fresh)
        if edited:
            await comments.apply_version(tx, fresh, version)
        elif audience is not None:
            await comments.narrow(tx, fresh, audience)
        now = rt.now()
        await recheck_store.schedule(tx, comment.id, checked_at=now,
                                     next_at=next_check(comment.created_at, now))
    if audience is not None:
        what = f"now {audience.value}: kept for the owner only"
        return Outcome(comment.id, comment.ap_id, "edited and private" if edited
                       else "private", what)
    return Outcome(comment.id, comment.ap_id, "edited" if edited else "unchanged")


async def recheck_due(rt: Runtime, pacer: Pacer) -> list[Outcome]:
    """One housekeeping pass: the due replies, within the hourly limits, never to blocked
    servers or ones that deliveries found unavailable."""
    fed = rt.settings.federation
    if fed.recheck_per_hour == 0:
        return []
    now = rt.now()
    async with rt.db.transaction() as tx:
        await recheck_store.schedule_new(tx)
    troubled = await _troubled(rt)
    outcomes: list[Outcome] = []
    for due in await recheck_store.due(rt.db.read, now, limit=PASS_BATCH):
        host = host_of(due.ap_id)
        if rt.blocklist.url_blocked(due.ap_id) or host in troubled:
            continue
        if not pacer.allow(host, rt.now(), fed.recheck_per_hour, fed.recheck_per_host_per_hour):
            if len(pacer.made) >= fed.recheck_per_hour:
                break
            continue
        pacer.note(host, rt.now())
        outcomes.append(await recheck_comment(rt, due.id))
    return outcomes


async def recheck(rt: Runtime, *, comment_ids: list[int] | None = None,
                  post: str | None = None, every: bool = False) -> list[Outcome]:
    """Check now, one after another: the replies named, a post's, or all of them
    (`comments recheck`). The hourly limits do not apply (the admin asked); blocked
    servers and ones marked unavailable are still skipped."""
    if sum((comment_ids is not None, post is not None, every)) != 1:
        raise InvalidInput("name comment ids, a post, or all of them")
    post_id = (await posts.get_post(rt, post)).id if post is not None else None
    found = await recheck_store.selected(rt.db.read, comment_ids=comment_ids, post_id=post_id,
                                         limit=MAX_SELECTED)
    outcomes: list[Outcome] = []
    if comment_ids is not None:
        listed = {d.id for d in found}
        for cid in comment_ids:
            if cid not in listed:
                comment = await comment_store.by_id(rt.db.read, cid)
                why = "no such comment" if comment is None else "not a stored fediverse reply"
                outcomes.append(Outcome(cid, comment.ap_id if comment else None, "skipped", why))
    troubled = await _troubled(rt)
    for due in found:
        if host_of(due.ap_id) in troubled:
            outcomes.append(Outcome(due.id, due.ap_id, "skipped",
                                    "its server is marked unavailable or paused"))
            continue
        outcomes.append(await recheck_comment(rt, due.id))
    return outcomes


async def housekeeping_step(rt: Runtime, pacer: Pacer, last: datetime | None
                            ) -> datetime | None:
    """Run a pass when PASS_INTERVAL has gone by since `last`; returns the new `last`."""
    now = rt.now()
    if last is not None and now - last < PASS_INTERVAL:
        return last
    try:
        done = await recheck_due(rt, pacer)
    except Exception:  # a task boundary: log and try again next pass
        log.exception("recheck pass failed")
        return now
    changed = [o for o in done if o.outcome not in ("unchanged", "error", "skipped")]
    if changed:
        log.info("replies rechecked", extra={"checked": len(done), "changed": len(changed)})
    return now


def outcome_json(o: Outcome) -> dict[str, Any]:
    return {"id": o.id, "ap_id": o.ap_id, "outcome": o.outcome, "detail": o.detail}
