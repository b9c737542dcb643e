"""Posts → Create/Update/Delete{Article} → one delivery job per (shared) inbox.

Every function that enqueues takes the caller's transaction, so a post change and its
deliveries commit together or not at all.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fedcomments.ap import build, outgoing
from fedcomments.model import Post, RemoteActor
from fedcomments.runtime import Runtime
from fedcomments.store import posts as post_store
from fedcomments.store import queue
from fedcomments.store.conn import Conn

log = logging.getLogger("fedcomments.publish")

#: Fields whose change is worth an Update to every follower.
_FEDERATED_FIELDS = ("permalink", "title", "summary", "content", "tags", "image", "published_at")


def preferred_inbox(actor: RemoteActor) -> str | None:
    """Where to deliver to an actor: its server's shared inbox when it has one.

    Mastodon does the same (its `preferred_inbox_url`): one request per server, and the
    server distributes it to every local recipient (followers, mentioned accounts).
    """
    return actor.shared_inbox or actor.inbox


def allowed(rt: Runtime, actor: RemoteActor, inbox: str | None) -> bool:
    return bool(inbox) and not rt.blocklist.url_blocked(actor.ap_id) and not (
        rt.blocklist.url_blocked(inbox))


async def follower_inboxes(rt: Runtime, conn: Conn) -> list[str]:
    """One target per server: followers sharing a shared inbox share one job.

    In follow order. A viral blog has tens of thousands of followers: one narrow query,
    and the block checks (a URL parse each) only when there is something blocked.
    """
    targets = await queue.follower_targets(conn)
    blocks = rt.blocklist
    if not blocks.domains and not blocks.actors:
        return list(dict.fromkeys(inbox for _, inbox in targets))
    verdicts: dict[str, bool] = {}

    def blocked(url: str) -> bool:
        if url not in verdicts:
            verdicts[url] = blocks.url_blocked(url)
        return verdicts[url]

    return list(dict.fromkeys(inbox for actor, inbox in targets
                              if not blocked(actor) and not blocked(inbox)))


async def fan_out(rt: Runtime, tx: Conn, activity: dict[str, Any], inboxes: Iterable[str],
                  now: datetime) -> int:
    """Enqueue `activity` (serialised once: every attempt sends these bytes) to `inboxes`."""
    targets = list(dict.fromkeys(inboxes))
    if rt.blocklist.domains or rt.blocklist.actors:
        targets = [i for i in targets if not rt.blocklist.url_blocked(i)]
    if not targets:
        return 0
    return await queue.enqueue_many(tx, activity_id=activity["id"], inboxes=targets,
                                    body=build.serialize(activity), now=now)


def _activity_id(rt: Runtime, kind: str) -> str:
    return rt.urls.activity(kind, secrets.token_urlsafe(12))


async def post_published(rt: Runtime, tx: Conn, post: Post, *, again: bool = False) -> int:
    """Create{Article} to every follower, unless the post is scheduled for later.

    `again` is for a post deleted and registered anew: the Create gets a fresh id, since
    the first one was already seen (and the object then deleted).
    """
    now = rt.now()
    if post.published_at > now or post.is_deleted:
        return 0
    activity_id = _activity_id(rt, "create") if again else f"{post.ap_id}#create"
    article = build.article(rt.urls, post)
    activity = outgoing.create(rt.urls, activity_id, article)
    count = await fan_out(rt, tx, activity, await follower_inboxes(rt, tx), now)
    await post_store.mark_federated(tx, post.id, now)
    log.info("post published", extra={"post": post.id, "deliveries": count})
    return count


async def post_changed(rt: Runtime, tx: Conn, before: Post, after: Post) -> int:
    """After an update: Create when it becomes public now, Update when it was out already."""
    if before.federated_at is None or before.is_deleted:
        return await post_published(rt, tx, after, again=before.federated_at is not None)
    if all(getattr(before, f) == getattr(after, f) for f in _FEDERATED_FIELDS):
        # Site builds re-register every post on every build: no Update storm for that.
        return 0
    now = rt.now()
    article = build.article(rt.urls, after)
    activity = outgoing.update(rt.urls, _activity_id(rt, "update"), article, now)
    return await fan_out(rt, tx, activity, await follower_inboxes(rt, tx), now)


async def post_deleted(rt: Runtime, tx: Conn, post: Post) -> int:
    """Delete{Tombstone} to every follower when the post was ever federated."""
    if post.federated_at is None:
        return 0
    now = rt.now()
    to, cc = outgoing.public_addressing(rt.urls)
    activity = outgoing.delete(rt.urls, _activity_id(rt, "delete"), object_id=post.ap_id,
                               former_type="Article", when=now, to=to, cc=cc)
    return await fan_out(rt, tx, activity, await follower_inboxes(rt, tx), now)


async def federate_due_posts(rt: Runtime) -> int:
    """Publish scheduled posts whose time has come (the worker calls this regularly)."""
    due = await post_store.due_for_federation(rt.db.read, rt.now())
    published = 0
    for candidate in due:
        async with rt.db.transaction() as tx:
            post = await post_store.by_id(tx, candidate.id)
            # Re-checked inside the transaction: another process may have done it.
            if post is None or post.federated_at is not None or post.is_deleted:
                continue
            await post_published(rt, tx, post)
            published += 1
    return published
