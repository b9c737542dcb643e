"""Comments: threading, import of remote notes and their ancestors, edits, deletes, moderation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from fedcomments.ap import parse
from fedcomments.ap.sanitize import plain_text, sanitize_html
from fedcomments.errors import FedcommentsError
from fedcomments.model import Attachment, Comment, CommentStatus, Origin, Post, RemoteActor
from fedcomments.model import Visibility as ModelVisibility
from fedcomments.runtime import Runtime
from fedcomments.services import actors
from fedcomments.store import comments as comment_store
from fedcomments.store import posts as post_store
from fedcomments.store.comments import NewComment
from fedcomments.store.db import Conn

log = logging.getLogger("fedcomments.comments")

#: How far up a thread we walk to connect a reply to one of our posts.
MAX_ANCESTOR_DEPTH = 16
#: Remote GETs (objects and their authors) one incoming reply may cost us.
MAX_FETCHES_PER_ACTIVITY = 24
MAX_SUMMARY = 500


@dataclass(frozen=True)
class Target:
    """Where a reply attaches: the post and, for a reply to a comment, that comment."""

    post: Post
    parent: Comment | None


async def find_target(conn: Conn, in_reply_to: str | None) -> Target | None:
    """The post or comment an object answers, when we know it."""
    if not in_reply_to:
        return None
    post = await post_store.by_ap_id(conn, in_reply_to)
    if post is not None:
        return None if post.is_deleted else Target(post, None)
    parent = await comment_store.by_ap_id(conn, in_reply_to)
    if parent is not None:
        post = await post_store.by_id(conn, parent.post_id)
        if post is not None and not post.is_deleted:
            return Target(post, parent)
    return None


def _visibility(obj: parse.IncomingObject, author: RemoteActor) -> ModelVisibility:
    """Decided from the object's own addressing, knowing its author's followers URL."""
    return ModelVisibility(parse.visibility_of(obj.to, obj.cc, author.followers_url).value)


def _attachments(obj: parse.IncomingObject) -> tuple[Attachment, ...]:
    # Attachments are kept as links (never downloaded); only http(s) URLs survive.
    return tuple(
        Attachment(url=a.url, media_type=a.media_type, name=plain_text(a.name)[:1500] or None
                   if a.name else None)
        for a in obj.attachments[:16]
        if a.url.startswith(("https://", "http://"))
    )


def _new_comment(obj: parse.IncomingObject, actor: RemoteActor, target: Target,
                 status: CommentStatus, now_published: object) -> NewComment:
    summary = plain_text(obj.summary)[:MAX_SUMMARY] if obj.summary else None
    return NewComment(
        post_id=target.post.id,
        parent_id=target.parent.id if target.parent else None,
        origin=Origin.REMOTE,
        visibility=_visibility(obj, actor),
        status=status,
        content=sanitize_html(obj.content or ""),
        published_at=obj.published or now_published,  # type: ignore[arg-type]
        ap_id=obj.id,
        actor_id=actor.id,
        summary=summary or None,
        sensitive=obj.sensitive,
        language=obj.language,
        url=obj.url,
        in_reply_to=obj.in_reply_to,
        attachments=_attachments(obj),
        mentions=tuple(m.href for m in obj.mentions[:50]),
        updated_at=obj.updated,
    )


async def moderation_status(rt: Runtime, conn: Conn, actor_id: int) -> CommentStatus:
    policy = rt.settings.moderation.policy
    if policy == "none":
        return CommentStatus.APPROVED
    if policy == "first-time" and await comment_store.author_trusted(conn, actor_id):
        return CommentStatus.APPROVED
    return CommentStatus.PENDING


@dataclass
class _Budget:
    left: int

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def check_object_origin(obj: parse.IncomingObject, actor_id: str) -> bool:
    """An object counts only from its own origin and attributed to who sent it."""
    return actors.same_origin(obj.id, actor_id) and obj.attributed_to == actor_id


async def _fetch_ancestors(
    rt: Runtime, start: str, budget: _Budget
) -> tuple[Target, list[tuple[parse.IncomingObject, RemoteActor]]] | None:
    """Walk inReplyTo upwards from `start` until a known post/comment; None if never."""
    chain: list[tuple[parse.IncomingObject, RemoteActor]] = []
    current = start
    for _depth in range(MAX_ANCESTOR_DEPTH):
        if rt.blocklist.url_blocked(current) or rt.urls.is_local(current):
            return None
        if not budget.take():
            return None
        try:
            resp = await rt.remote.get_json(current)
            obj = parse.parse_object(resp.data, normalizer=rt.normalizer)
        except FedcommentsError as exc:
            log.info("ancestor fetch failed", extra={"url": current, "error": str(exc)})
            return None
        # The fetched document must be what we asked for, from its own origin.
        if obj.id not in (current, resp.url) or not actors.same_origin(obj.id, current):
            return None
        if not obj.attributed_to or not actors.same_origin(obj.attributed_to, obj.id):
            return None
        if rt.blocklist.url_blocked(obj.attributed_to):
            return None
        if not budget.take():
            return None
        try:
            author = await actors.get_actor(rt, obj.attributed_to)
        except FedcommentsError:
            return None
        chain.append((obj, author))
        target = await find_target(rt.db.read, obj.in_reply_to)
        if target is not None:
            return target, chain
        if not obj.in_reply_to:
            return None
        current = obj.in_reply_to
    return None


@dataclass(frozen=True)
class ImportResult:
    comment: Comment | None
    reason: str


async def import_remote_reply(
    rt: Runtime, obj: parse.IncomingObject, actor: RemoteActor, activity_id: str | None
) -> ImportResult:
    """Turn a remote note into a comment when it answers our post or its thread."""
    if await comment_store.is_tombstoned(rt.db.read, obj.id):
        return ImportResult(None, "deleted before")
    existing = await comment_store.by_ap_id(rt.db.read, obj.id)
    if existing is not None:
        return ImportResult(existing, "already known")
    target = await find_target(rt.db.read, obj.in_reply_to)
    ancestors: list[tuple[parse.IncomingObject, RemoteActor]] = []
    if target is None and obj.in_reply_to:
        found = await _fetch_ancestors(rt, obj.in_reply_to, _Budget(MAX_FETCHES_PER_ACTIVITY))
        if found is None:
            return ImportResult(None, "not in any of our threads")
        target, ancestors = found
    if target is None:
        return ImportResult(None, "not a reply to our posts")
    now = rt.now()
    async with rt.db.transaction() as tx:
        if activity_id and not await comment_store.mark_activity(tx, activity_id, now):
            return ImportResult(None, "duplicate activity")
        # Re-checked inside the transaction: a Delete may have landed while we fetched.
        if await comment_store.is_tombstoned(tx, obj.id):
            return ImportResult(None, "deleted before")
        parent = target.parent
        for ancestor, author in reversed(ancestors):
            known = await comment_store.by_ap_id(tx, ancestor.id)
            if known is None and await comment_store.is_tombstoned(tx, ancestor.id):
                return ImportResult(None, "ancestor deleted")
            if known is None:
                status = await moderation_status(rt, tx, author.id)
                new_id = await comment_store.insert(
                    tx, _new_comment(ancestor, author, replace(target, parent=parent), status,
                                     now), now)
                known = await comment_store.by_id(tx, new_id)
            parent = known
        existing = await comment_store.by_ap_id(tx, obj.id)
        if existing is not None:
            return ImportResult(existing, "already known")
        status = await moderation_status(rt, tx, actor.id)
        new_id = await comment_store.insert(
            tx, _new_comment(obj, actor, replace(target, parent=parent), status, now), now)
        comment = await comment_store.by_id(tx, new_id)
    return ImportResult(comment, "created")


_VISIBILITY_RANK = {
    ModelVisibility.PUBLIC: 3, ModelVisibility.UNLISTED: 2,
    ModelVisibility.FOLLOWERS: 1, ModelVisibility.DIRECT: 0,
}


async def apply_remote_edit(rt: Runtime, obj: parse.IncomingObject, actor: RemoteActor,
                            activity_id: str) -> str:
    """Edit a remote comment in place; never widens its visibility, ignores stale updates."""
    now = rt.now()
    async with rt.db.transaction() as tx:
        if not await comment_store.mark_activity(tx, activity_id, now):
            return "duplicate activity"
        comment = await comment_store.by_ap_id(tx, obj.id)
        if comment is None or comment.actor is None or comment.actor.id != actor.id:
            return "unknown or not theirs"
        if comment.status is CommentStatus.DELETED:
            return "deleted"
        updated = obj.updated or now
        last = comment.updated_at or comment.published_at
        if updated <= last:
            return "stale update"
        new_visibility = _visibility(obj, actor)
        if _VISIBILITY_RANK[new_visibility] < _VISIBILITY_RANK[comment.visibility]:
            await comment_store.set_visibility(tx, comment.id, new_visibility)
        summary = plain_text(obj.summary)[:MAX_SUMMARY] if obj.summary else None
        await comment_store.update_content(
            tx, comment.id, content=sanitize_html(obj.content or ""), summary=summary or None,
            sensitive=obj.sensitive, language=obj.language, attachments=_attachments(obj),
            mentions=tuple(m.href for m in obj.mentions[:50]), updated_at=updated,
        )
    return "edited"


async def remove_remote(rt: Runtime, object_id: str, actor: RemoteActor, activity_id: str
                        ) -> str:
    """Delete of a note by its author: tombstone (kept if it has replies) or removal."""
    now = rt.now()
    async with rt.db.transaction() as tx:
        if not await comment_store.mark_activity(tx, activity_id, now):
            return "duplicate activity"
        comment = await comment_store.by_ap_id(tx, object_id)
        if comment is None:
            # Remember the id so a late or replayed Create cannot bring it back; only ids
            # on the deleting actor's own origin, so nobody can pre-delete others' notes.
            if actors.same_origin(object_id, actor.ap_id):
                await comment_store.add_tombstone(tx, object_id, now)
            return "unknown object"
        if comment.actor is None or comment.actor.id != actor.id:
            return "not theirs"
        return await comment_store.remove(tx, comment, now)


async def remove_actor_content(rt: Runtime, conn: Conn, actor_id: int) -> int:
    """Remove every comment of an actor (tombstones where replies hang below)."""
    count = 0
    for comment in await comment_store.by_actor(conn, actor_id):
        fresh = await comment_store.by_id(conn, comment.id)
        if fresh is not None and fresh.status is not CommentStatus.DELETED:
            await comment_store.remove(conn, fresh, rt.now())
            count += 1
    return count
