"""Replies that never reached us: read a post's conversation where its replies' servers
publish it (FEP-7888/FEP-f228 `context` collections, else Mastodon's `replies`
collections) and import the public replies that belong to the post, each fetched from its
own origin by id; what could not be imported is remembered with why.

Mastodon delivers a reply only to the servers it mentions or that host its parent, so a
reply to a reply often never reaches the blog; its server (and the parent's) still lists it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from fedcomments.ap import parse
from fedcomments.errors import FedcommentsError, Forbidden, Gone, NotFound
from fedcomments.model import Post
from fedcomments.names import same_origin
from fedcomments.runtime import Runtime
from fedcomments.services import comments
from fedcomments.store import comments as comment_store
from fedcomments.store import conversations as conversation_store
from fedcomments.store import posts as post_store
from fedcomments.store.conversations import Seed

log = logging.getLogger("fedcomments.backfill")

#: Pages read from one collection, and items taken from it.
MAX_PAGES = 10
MAX_ITEMS = 500
#: Remote context collections read in one run.
MAX_CONTEXTS = 4
#: Held replies whose conversation one run reads (newest first).
MAX_SEEDS = 50
#: Levels of `replies` collections walked below a held reply.
MAX_REPLIES_DEPTH = 6
#: Backfills started by incoming replies that may wait for their turn at once.
MAX_WAITING = 16
#: A run started by an incoming reply reads a context collection at most this often.
CONTEXT_REREAD = timedelta(minutes=10)

#: Import outcomes that mean the reply is held now.
_HELD = frozenset({"created", "already known"})
#: Outcomes that say the object is not a reply of this conversation: not recorded.
_UNRELATED = frozenset({comments.NOT_OURS, "not a note", "not a reply"})
NOT_FETCHED = "not fetched (fetch limit reached)"


@dataclass
class Report:
    """What one run did: replies imported, replies left out (with why), what it read."""

    post_id: int
    imported: list[str] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)
    fetches: int = 0


class _Run:
    """One backfill of one post: its budget of GETs and what it has seen."""

    def __init__(self, rt: Runtime, post: Post, report: Report) -> None:
        self.rt = rt
        self.post = post
        self.report = report
        self.budget = comments.Budget(rt.settings.federation.backfill_max_fetches)
        self.seen: set[str] = set()

    @property
    def spent(self) -> int:
        return self.rt.settings.federation.backfill_max_fetches - max(self.budget.left, 0)

    async def collection(self, url: str) -> parse.IncomingCollection | None:
        """One collection document (or page), through the same guards as every fetch."""
        if self.rt.blocklist.url_blocked(url) or self.rt.urls.is_local(url) \
                or not self.budget.take():
            return None
        try:
            resp = await self.rt.remote.get_json(url)
            return parse.parse_collection(resp.data, normalizer=self.rt.normalizer)
        except (FedcommentsError, RecursionError) as exc:
            log.info("collection fetch failed", extra={"url": url, "error": str(exc)})
            return None

    async def listing(self, url: str) -> tuple[list[str], int | None] | None:
        """Every item id a collection lists, following its pages on its own origin."""
        first = await self.collection(url)
        if first is None:
            return None
        self.report.collections.append(url)
        items = list(first.items)
        following, pages, visited = first.next, 1, {url}
        while following and pages < MAX_PAGES and len(items) < MAX_ITEMS:
            # Pages stay on the collection's origin: a listing must not send us to fetch
            # from servers of its choosing.
            if following in visited or not same_origin(following, url):
                break
            visited.add(following)
            page = await self.collection(following)
            if page is None:
                break
            items += page.items
            following, pages = page.next, pages + 1
        return list(dict.fromkeys(items))[:MAX_ITEMS], first.total_items

    async def consider(self, ap_id: str, source: str) -> parse.IncomingObject | bool:
        """Import one listed reply unless held; the fetched object when imported now, True
        when held already, False when left out (recorded with why) or unrelated."""
        rt, post_id = self.rt, self.post.id
        if ap_id in self.seen or ap_id == self.post.ap_id:
            return False
        self.seen.add(ap_id)
        tombstoned, known = await comment_store.object_state(rt.db.read, ap_id)
        if known is not None or rt.urls.is_local(ap_id):
            return True
        if tombstoned:
            return False
        if rt.blocklist.url_blocked(ap_id):
            return await self._missing(ap_id, comments.BLOCKED, source)
        if self.budget.left <= 0:
            return await self._missing(ap_id, NOT_FETCHED, source)
        obj = await comments.fetch_object(rt, ap_id, self.budget)
        if obj is None:
            return await self._missing(ap_id, comments.FETCH_FAILED, source)
        try:
            result = await comments.import_fetched(rt, obj, self.budget)
        except Forbidden:  # its author's server was blocked meanwhile
            return await self._missing(ap_id, comments.BLOCKED, source)
        except FedcommentsError as exc:
            log.info("backfill import failed", extra={"url": ap_id, "error": str(exc)})
            return await self._missing(ap_id, comments.FETCH_FAILED, source)
        if result.reason in _HELD:
            async with rt.db.transaction() as tx:
                await conversation_store.clear_gap(tx, post_id, ap_id)
            if result.reason == "created":
                self.report.imported.append(ap_id)
            return obj
        if result.reason in _UNRELATED or result.reason == "deleted before":
            return False
        return await self._missing(ap_id, result.reason, source)

    async def _missing(self, ap_id: str, reason: str, source: str) -> bool:
        self.report.missing[ap_id] = reason
        async with self.rt.db.transaction() as tx:
            await conversation_store.record_gap(tx, self.post.id, ap_id, reason, source,
                                                self.rt.now())
        return False

    async def read_context(self, url: str) -> bool:
        """A remote context collection: True when it was read as this post's conversation
        (it lists the post or a reply we hold) and its replies considered."""
        found = await self.listing(url)
        if found is None:
            return False
        items, _total = found
        ours = self.post.ap_id in items
        if not ours:
            for ap_id in items:
                if (await comment_store.object_state(self.rt.db.read, ap_id))[1] is not None:
                    ours = True
                    break
        if not ours:
            # FEP-7888: membership must be verified; a collection that names nothing of
            # this thread is some other conversation.
            return False
        listed = [i for i in items if i != self.post.ap_id]
        async with self.rt.db.transaction() as tx:
            await conversation_store.context_read(tx, url, self.post.id, len(listed),
                                                  self.rt.now())
        for ap_id in listed:
            await self.consider(ap_id, url)
        return True

    async def walk_replies(self, start: str, parent: str, depth: int) -> None:
        """Mastodon-shaped conversations: a reply's `replies` collection, then the
        collections of the replies found there, depth- and count-bounded."""
        todo: list[tuple[str, str, int]] = [(start, parent, depth)]
        while todo and self.budget.left > 0:
            where, parent_id, level = todo.pop(0)
            found = await self.listing(where)
            if found is None:
                continue
            items, total = found
            if total is not None:
                await self._count(parent_id, total)
            for ap_id in items:
                got = await self.consider(ap_id, where)
                if level >= MAX_REPLIES_DEPTH or got is False:
                    continue
                below = await self._replies_of(ap_id, got)
                if below is not None:
                    todo.append((below, ap_id, level + 1))

    async def _replies_of(self, ap_id: str, got: parse.IncomingObject | bool) -> str | None:
        if isinstance(got, parse.IncomingObject):
            replies = got.replies
            if replies is None or replies.id is None or not same_origin(replies.id,
                                                                                 got.id):
                return None
            return replies.id
        comment = await comment_store.by_ap_id(self.rt.db.read, ap_id)
        if comment is None:
            return None
        seed = await conversation_store.seed_of(self.rt.db.read, comment.id)
        return seed.replies_url if seed is not None else None

    async def _count(self, parent_ap_id: str, total: int) -> None:
        comment = await comment_store.by_ap_id(self.rt.db.read, parent_ap_id)
        if comment is not None:
            async with self.rt.db.transaction() as tx:
                await conversation_store.set_replies_total(tx, comment.id, total)


async def _live_post(rt: Runtime, post_id: int) -> Post:
    post = await post_store.by_id(rt.db.read, post_id)
    if post is None:
        raise NotFound(f"no post {post_id}")
    if post.is_deleted:
        raise Gone(f"post {post_id} was deleted")
    return post


async def backfill_post(rt: Runtime, post_id: int, *, seeds: list[Seed] | None = None,
                        automatic: bool = False) -> Report:
    """Find and import the replies of a post that never reached us.

    Starts from `seeds` (held remote replies; all of the post's, newest first, when not
    given): the remote context collections they name are read first (FEP-f228's order);
    replies without a readable one have their `replies` collections walked. `automatic`
    runs (after an incoming reply) skip context collections read in the last few minutes.
    """
    post = await _live_post(rt, post_id)
    report = Report(post_id)
    run = _Run(rt, post, report)
    if seeds is None:
        seeds = await conversation_store.seeds(rt.db.read, post_id, limit=MAX_SEEDS)
    read: set[str] = set()
    for url in list(dict.fromkeys(s.context for s in seeds if s.context))[:MAX_CONTEXTS]:
        if automatic:
            last = await conversation_store.context_read_at(rt.db.read, url)
            if last is not None and rt.now() - last < CONTEXT_REREAD:
                read.add(url)
                continue
        if await run.read_context(url):
            read.add(url)
    for seed in seeds:
        if seed.context in read or not seed.replies_url or run.budget.left <= 0:
            continue
        if seed.replies_total is not None and seed.replies_total <= seed.children:
            continue  # its server counted its replies, and we hold them all
        await run.walk_replies(seed.replies_url, seed.ap_id, 1)
    report.fetches = run.spent
    log.info("backfill", extra={"post": post_id, "imported": len(report.imported),
                                "missing": len(report.missing), "fetches": report.fetches})
    return report


def after_reply(rt: Runtime, obj: parse.IncomingObject, result: comments.ImportResult) -> bool:
    """Called when a reply arrived and was stored: when its parent had to be fetched, or it
    has replies (or a conversation collection) we do not hold, backfill its post in the
    background, never delaying the answer to its sender. True when a run was started."""
    if not rt.settings.federation.backfill or result.comment_id is None \
            or result.reason != "created":
        return False
    context, _replies, total = comments.conversation_links(rt, obj)
    listed = obj.replies is not None and obj.replies.listed > 0
    if not (result.ancestors or context or listed or (total or 0) > 0):
        return False
    comment_id = result.comment_id

    async def run() -> None:
        comment = await comment_store.by_id(rt.db.read, comment_id)
        if comment is None:
            return
        seeds = []
        current: int | None = comment.id
        for _level in range(result.ancestors + 1):
            seed = await conversation_store.seed_of(rt.db.read, current) if current else None
            if seed is None:
                break
            seeds.append(seed)
            parent = await comment_store.by_id(rt.db.read, seed.comment_id)
            current = parent.parent_id if parent is not None else None
        try:
            await backfill_post(rt, comment.post_id, seeds=seeds, automatic=True)
        except FedcommentsError as exc:  # the post was deleted meanwhile, a block …
            log.info("backfill stopped", extra={"comment": comment_id, "error": str(exc)})

    jobs = rt.backfill_jobs
    if len(jobs) >= MAX_WAITING:
        # A flood of replies must not become a flood of backfills; `posts backfill` and
        # the next reply that asks will catch up.
        log.info("backfill skipped: too many waiting", extra={"comment": comment_id})
        return False
    jobs.start(("backfill", comment_id), run)
    return True


# --- what is missing, shown ---------------------------------------------------------------


@dataclass(frozen=True)
class Gaps:
    """A post's replies held beside the replies known to exist elsewhere."""

    held: int
    known: int
    missing: list[conversation_store.Gap]


async def gaps(rt: Runtime, post_id: int) -> Gaps:
    """How many comments we hold, how many replies remote collections say exist (at least:
    the larger of what context collections listed, what replies collections counted and
    what we hold plus the replies known and not imported), and those, with why."""
    missing = await conversation_store.gaps(rt.db.read, post_id)
    known = await conversation_store.known(rt.db.read, post_id)
    total = max(known.held + len(missing), known.by_replies, known.by_context)
    return Gaps(held=known.held, known=total, missing=missing)


def gaps_json(g: Gaps) -> dict[str, Any]:
    return {"held": g.held, "known_elsewhere": g.known, "not_held": g.known - g.held,
            "missing": [{"id": m.ap_id, "reason": m.reason, "listed_by": m.source,
                         "seen": m.seen_at.isoformat()} for m in g.missing]}


def report_json(r: Report) -> dict[str, Any]:
    return {"post": r.post_id, "imported": r.imported,
            "missing": [{"id": k, "reason": v} for k, v in r.missing.items()],
            "collections": r.collections, "fetches": r.fetches}
