"""What each authenticated inbox activity does: follows, replies, edits, deletes, reactions.

Every handler is idempotent by activity id (recorded in the same transaction as the
change) and returns a short outcome for the log. Activities that do not concern us are
acknowledged and dropped without writing anything.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

from fedcomments.ap import build, parse
from fedcomments.ap.sanitize import plain_text
from fedcomments.errors import FedcommentsError, InvalidInput, Unauthorized
from fedcomments.model import RemoteActor
from fedcomments.names import same_origin
from fedcomments.runtime import Runtime
from fedcomments.services import actors, backfill, comments, consent, media, notify, unblocked
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store import queue
from fedcomments.store.conn import Conn

Handler = Callable[[Runtime, parse.IncomingActivity, RemoteActor], Awaitable[str]]

MAX_REPORT_CHARS = 5000
MAX_REPORT_OBJECTS = 100


def handles(activity_type: str) -> bool:
    """Whether `dispatch` does anything with activities of this type."""
    return activity_type in _HANDLERS


async def dispatch(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    # An activity that names a blocked server anywhere (what it is about, whom it
    # addresses or mentions, what it answers) is acknowledged and dropped, as GoToSocial
    # does: a blocked account must not appear on the blog through someone else's reply,
    # nor be fetched or delivered to because a reply named it. Checked again when it is
    # stored (unblocked.unit), and for every ancestor fetched to thread it.
    if await unblocked.blocked(rt, named(activity)) is not None:
        return BLOCKED_NAMED
    handler = _HANDLERS.get(activity.type)
    if handler is None:
        return "ignored type"
    try:
        return await handler(rt, activity, actor)
    except unblocked.NamesBlocked:
        return BLOCKED_NAMED


#: The outcome of an activity dropped because it names a blocked server.
BLOCKED_NAMED = "references a blocked origin"


def named(activity: parse.IncomingActivity) -> list[str]:
    """Every id the activity names besides its sender (whose block is a 403 instead)."""
    names = [activity.object_id, *activity.object_ids, activity.target, *activity.to,
             *activity.cc]
    if activity.object is not None:
        names += comments.object_names(activity.object)
    if activity.inner is not None:
        names += [activity.inner.actor, activity.inner.object_id]
    return [n for n in dict.fromkeys(names) if n and n != parse.PUBLIC]


async def _on_follow(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    if activity.object_id != rt.urls.actor:
        return "follow of someone else"
    if not actor.inbox:
        actor = await actors.get_actor(rt, actor.ap_id, refresh=True)
    if not actor.inbox:
        raise InvalidInput("the follower has no inbox")
    now = rt.now()
    accept_id = rt.urls.activity("accept", secrets.token_urlsafe(12))
    body = build.serialize(build.accept_follow(rt.urls, accept_id, activity.id, actor.ap_id))
    inbox = actor.inbox

    async def work(tx: Conn) -> str:
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        await actor_store.add_follower(tx, actor.id, activity.id, now)
        # The Accept goes to the follower's own inbox, not the shared one: some servers
        # only route Accepts delivered there. The delivery worker sends it.
        await queue.enqueue(tx, activity_id=accept_id, inbox=inbox, body=body, now=now)
        await notify.follower_added(rt, tx, actor)
        return "follower added"

    return await unblocked.unit(rt, actor.ap_id, work, named=named(activity))


async def _on_undo(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    inner = activity.inner
    if inner is not None and inner.actor != actor.ap_id:
        return "undo of someone else's activity"
    if inner is not None and inner.type == "Follow" and inner.object_id != rt.urls.actor:
        return "undo of a follow of someone else"
    target_id = inner.id if inner is not None else activity.object_id
    if not target_id:
        raise InvalidInput("Undo without object")
    now = rt.now()

    async def work(tx: Conn) -> str:
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        # Undo carries the undone activity embedded (Mastodon) or only its id (Mastodon's
        # compact Undo{Like}, Misskey): an id is looked up among follows, then reactions.
        if (inner is not None and inner.type == "Follow") or (
            inner is None and await actor_store.is_follow(tx, actor.id, target_id)
        ):
            removed = await actor_store.remove_follower(tx, actor.id)
            return "follower removed" if removed else "was not following"
        reaction_type = {"Like": "like", "Announce": "announce"}.get(inner.type if inner else "")
        removed_reactions = await comment_store.remove_reaction(
            tx, actor_id=actor.id, ap_id=target_id, type_=reaction_type,
            target_ap_id=inner.object_id if inner is not None else None,
        )
        return "reaction removed" if removed_reactions else "nothing to undo"

    return await unblocked.unit(rt, actor.ap_id, work, named=named(activity))


async def _on_create(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    obj = activity.object
    budget = comments.Budget()
    if obj is None:
        object_id = activity.object_id
        if not object_id:
            raise InvalidInput("Create without object")
        # Some servers send the object by reference: it is fetched from its origin, which
        # must be the actor's (never from anywhere the activity points at).
        if not same_origin(object_id, actor.ap_id):
            raise Unauthorized("object is not on the actor's origin")
        if await comment_store.activity_seen(rt.db.read, activity.id):
            return "duplicate activity"
        if any(await comment_store.object_state(rt.db.read, object_id)):
            return "already known or deleted"
        await unblocked.before_fetch(rt, actor.ap_id)
        obj = await comments.fetch_object(rt, object_id, budget)
        if obj is None:
            return "object unavailable"
        if await unblocked.blocked(rt, comments.object_names(obj)) is not None:
            return BLOCKED_NAMED
    if not comments.check_object_origin(obj, actor.ap_id):
        raise Unauthorized("object must be on the actor's origin and attributed to the actor")
    if obj.type not in comments.NOTE_TYPES:
        return "not a note"
    result = await comments.import_remote_reply(
        rt, obj, actor, activity.id, budget,
        named=[*named(activity), *comments.object_names(obj)])
    if result.reason == comments.BLOCKED:
        return BLOCKED_NAMED
    backfill.after_reply(rt, obj, result)
    return result.reason


async def _on_update(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    obj = activity.object
    if activity.object_actor is not None or activity.object_id == actor.ap_id:
        if activity.object_id != actor.ap_id:
            return "update of another actor"
        # What the author consents to (an opt-out tag, indexable) counts at once: they
        # signed it. Keys and the rest of the profile are never taken from the body.
        if activity.object_actor is not None:
            await consent.from_update(rt, actor, activity.object_actor)
        # Refetch from the origin, at most once per actor every few minutes.
        try:
            refreshed = await actors.refresh_on_update(rt, actor)
        except FedcommentsError as exc:
            return f"actor not refreshed ({exc})"
        if refreshed:
            # A new icon is a new image; the same URL may hold a new file: fetched again.
            stored = await actor_store.by_ap_id(rt.db.read, actor.ap_id)
            media.refresh_avatar(rt, stored.icon if stored is not None else None)
        return "actor refreshed" if refreshed else "actor fetched recently"
    if obj is None:
        return "update by reference ignored"
    if not comments.check_object_origin(obj, actor.ap_id):
        raise Unauthorized("object must be on the actor's origin and attributed to the actor")
    if obj.type not in comments.NOTE_TYPES:
        return "not a note"
    return await comments.apply_remote_edit(rt, obj, actor, activity.id, named=named(activity))


async def _on_delete(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    object_id = activity.object_id
    if not object_id:
        raise InvalidInput("Delete without object")
    if object_id != actor.ap_id:
        return await comments.remove_remote(rt, object_id, actor, activity.id)
    now = rt.now()

    async def work(tx: Conn) -> str:
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        removed = await comments.remove_actor_content(tx, actor.id, now)
        await actor_store.delete_reactions(tx, actor.id)
        await actor_store.remove_follower(tx, actor.id)
        await actor_store.delete_keys(tx, actor.id)
        return f"actor deleted ({removed} comments removed)"

    return await unblocked.unit(rt, actor.ap_id, work)


async def _on_reaction(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    target_id = activity.object_id
    # Only reactions to our own objects count: a Like or boost of someone else's note
    # (even one shown in our thread) is that server's business, and cannot be checked here.
    if not target_id or not rt.urls.is_local(target_id):
        return "not ours"
    now = rt.now()
    type_ = "like" if activity.type == "Like" else "announce"

    async def work(tx: Conn) -> str:
        target = await comments.find_target(rt, tx, target_id)
        if target is None:
            return "not ours"
        if not target.public:
            return "target not public"
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        added = await comment_store.add_reaction(
            tx, ap_id=activity.id, type_=type_, actor_id=actor.id, post_id=target.post_id,
            comment_id=target.parent_id, target_ap_id=target_id, now=now,
        )
        return "reaction added" if added else "reaction already counted"

    return await unblocked.unit(rt, actor.ap_id, work, named=named(activity))


async def _on_flag(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    now = rt.now()
    content = plain_text(activity.content or "")[:MAX_REPORT_CHARS]

    async def work(tx: Conn) -> str:
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        objects = list(activity.object_ids)[:MAX_REPORT_OBJECTS]
        await actor_store.add_report(
            tx, ap_id=activity.id, actor_id=actor.id, content=content, object_ids=objects,
            now=now,
        )
        await notify.report_created(rt, tx, actor=actor, content=content, objects=objects)
        return "report stored"

    return await unblocked.unit(rt, actor.ap_id, work, named=named(activity))


_HANDLERS: dict[str, Handler] = {
    "Follow": _on_follow,
    "Undo": _on_undo,
    "Create": _on_create,
    "Update": _on_update,
    "Delete": _on_delete,
    "Like": _on_reaction,
    "Announce": _on_reaction,
    "Flag": _on_flag,
}
