"""The inbox: authenticate a signed POST, then dispatch the activity by type.

Authentication is a default-deny gate: every failure raises a typed error whose
`http_status` the web layer returns (401 signature/key, 403 blocked, 400 malformed).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from fedcomments.ap import build, parse
from fedcomments.ap.httpsig import (
    ParsedSignature,
    SignatureError,
    SignatureFailure,
    parse_request_signature,
    verify_request,
)
from fedcomments.blocklist import host_of
from fedcomments.errors import Forbidden, InvalidInput, ProtocolError, Unauthorized
from fedcomments.model import RemoteActor
from fedcomments.runtime import Runtime
from fedcomments.services import actors, comments
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store import queue

log = logging.getLogger("fedcomments.inbox")

NOTE_TYPES = frozenset({"Note", "Article", "Page", "Question"})
ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})


#: Verification failures that a rotated key could explain.
_KEY_FAILURES = frozenset({SignatureFailure.INVALID_SIGNATURE, SignatureFailure.KEY_TYPE_MISMATCH,
                           SignatureFailure.INVALID_KEY})


@dataclass(frozen=True)
class InboxRequest:
    method: str
    #: The public URL the peer signed: base_url + path and query.
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class InboxResult:
    activity_id: str
    type: str
    outcome: str


def _decode(body: bytes) -> dict[str, object]:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("body is not valid JSON") from None
    if not isinstance(doc, dict):
        raise InvalidInput("body is not a JSON object")
    return doc


async def receive(rt: Runtime, req: InboxRequest) -> InboxResult:
    """Authenticate and process one inbox POST; returns after the change is committed."""
    signature = parse_request_signature(req.method, req.url, req.headers)
    # Blocked origins are refused on the keyId alone, before we fetch or parse anything.
    if rt.blocklist.url_blocked(signature.key_id):
        raise Forbidden(f"{host_of(signature.key_id)} is blocked")
    try:
        activity = parse.parse_activity(_decode(req.body), normalizer=rt.normalizer)
    except ProtocolError as exc:
        raise InvalidInput(f"not a usable activity: {exc}") from None
    if rt.blocklist.url_blocked(activity.actor):
        raise Forbidden(f"{host_of(activity.actor)} is blocked")
    if not actors.same_origin(activity.id, activity.actor):
        raise InvalidInput("activity id is not on the actor's origin")
    if activity.type == "Delete" and activity.object_id == activity.actor and (
        await actor_store.by_ap_id(rt.db.read, activity.actor) is None
    ):
        # Mastodon sends Delete{actor} to every server it ever heard of; for an actor we
        # never saw there is nothing to do and nothing worth fetching a key for.
        return InboxResult(activity.id, activity.type, "unknown actor deleted")
    await authenticate(rt, req, signature, activity.actor)
    actor = await actor_store.by_ap_id(rt.db.read, activity.actor)
    if actor is None:
        actor = await actors.get_actor(rt, activity.actor)
    if await comment_store.activity_seen(rt.db.read, activity.id):
        return InboxResult(activity.id, activity.type, "duplicate activity")
    if _references_blocked(rt, activity):
        await _mark(rt, activity.id)
        return InboxResult(activity.id, activity.type, "references a blocked origin")
    outcome = await dispatch(rt, activity, actor)
    log.info("activity", extra={"id": activity.id, "type": activity.type,
                                "actor": activity.actor, "outcome": outcome})
    return InboxResult(activity.id, activity.type, outcome)


async def authenticate(rt: Runtime, req: InboxRequest, signature: ParsedSignature,
                       actor_id: str) -> None:
    """Verify the signature with the key's owner's key; the owner must be the actor."""
    key_id = signature.key_id
    key = await actors.resolve_key(rt, key_id)
    try:
        verify_request(signature, key.pem, method=req.method, url=req.url,
                       headers=req.headers, body=req.body, now=rt.now())
    except SignatureError as exc:
        # Only a failure that a new key could fix is worth a refetch (key rotation).
        if not key.from_cache or exc.failure not in _KEY_FAILURES:
            raise
        if not await actors.may_refetch(rt, key_id):
            raise
        key = await actors.resolve_key(rt, key_id, refresh=True)
        verify_request(signature, key.pem, method=req.method, url=req.url,
                       headers=req.headers, body=req.body, now=rt.now())
    if key.owner != actor_id:
        raise Unauthorized(f"key {key_id} belongs to {key.owner}, not to actor {actor_id}")


def _references_blocked(rt: Runtime, activity: parse.IncomingActivity) -> bool:
    obj = activity.object
    urls = [activity.object_id]
    if obj is not None:
        urls += [obj.attributed_to, obj.in_reply_to]
    if activity.inner is not None:
        urls += [activity.inner.actor, activity.inner.object_id]
    return any(rt.blocklist.url_blocked(u) for u in urls if u)


async def _mark(rt: Runtime, activity_id: str) -> None:
    async with rt.db.transaction() as tx:
        await comment_store.mark_activity(tx, activity_id, rt.now())


async def dispatch(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    handler = _HANDLERS.get(activity.type)
    if handler is None:
        await _mark(rt, activity.id)
        return "ignored type"
    return await handler(rt, activity, actor)


async def _on_follow(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    if activity.object_id != rt.urls.actor:
        await _mark(rt, activity.id)
        return "follow of someone else"
    inbox = actor.inbox
    if not inbox:
        actor = await actors.get_actor(rt, actor.ap_id, refresh=True)
        inbox = actor.inbox
    if not inbox:
        raise InvalidInput("follower has no inbox")
    now = rt.now()
    accept_id = rt.urls.activity("accept", secrets.token_urlsafe(12))
    body = build.serialize(build.accept_follow(rt.urls, accept_id, activity.id, actor.ap_id))
    async with rt.db.transaction() as tx:
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        await actor_store.add_follower(tx, actor.id, activity.id, now)
        # Accept goes to the follower's own inbox (not the shared one): some servers
        # only route Accepts delivered there.
        await queue.enqueue(tx, activity_id=accept_id, inbox=inbox, body=body, now=now)
    return "follower added"


async def _on_undo(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    inner = activity.inner
    inner_type = inner.type if inner else None
    if inner is not None and inner.actor != actor.ap_id:
        await _mark(rt, activity.id)
        return "undo of someone else's activity"
    now = rt.now()
    async with rt.db.transaction() as tx:
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        # Undo may carry the Follow embedded or only its id (Misskey, older Pleroma).
        if inner_type == "Follow" or (
            inner is None and activity.object_id
            and await actor_store.is_follow(tx, actor.id, activity.object_id)
        ):
            removed = await actor_store.remove_follower(tx, actor.id)
            return "follower removed" if removed else "was not following"
        reaction_type = {"Like": "like", "Announce": "announce"}.get(inner_type or "")
        n = await comment_store.remove_reaction(
            tx, actor_id=actor.id, ap_id=inner.id if inner else activity.object_id,
            type_=reaction_type, target_ap_id=inner.object_id if inner else None,
        )
        return "reaction removed" if n else "nothing to undo"


async def _on_create(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    obj = activity.object
    if obj is None and activity.object_id:
        # Some servers send the object by reference; fetch it from its origin.
        if not actors.same_origin(activity.object_id, actor.ap_id):
            raise Unauthorized("object is not on the actor's origin")
        fetched = await rt.remote.get_json(activity.object_id)
        obj = parse.parse_object(fetched.data, normalizer=rt.normalizer,
                                 followers_url=actor.followers_url)
        if obj.id != activity.object_id:
            raise Unauthorized("fetched object has another id")
    if obj is None or obj.type not in NOTE_TYPES:
        await _mark(rt, activity.id)
        return "not a note"
    if not comments.check_object_origin(obj, actor.ap_id):
        raise Unauthorized("object must be on the actor's origin and attributed to the actor")
    result = await comments.import_remote_reply(rt, obj, actor, activity.id)
    if result.comment is None:
        await _mark_if_new(rt, activity.id)
    return result.reason


async def _mark_if_new(rt: Runtime, activity_id: str) -> None:
    async with rt.db.transaction() as tx:
        await comment_store.mark_activity(tx, activity_id, rt.now())


async def _on_update(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    obj = activity.object
    if obj is None or activity.object_id == actor.ap_id or (obj.type in ACTOR_TYPES):
        if activity.object_id != actor.ap_id:
            await _mark(rt, activity.id)
            return "update of another actor"
        # Never trust a key or profile pushed in the body: refetch from the origin.
        await actors.get_actor(rt, actor.ap_id, refresh=True)
        await _mark_if_new(rt, activity.id)
        return "actor refreshed"
    if obj.type not in NOTE_TYPES:
        await _mark(rt, activity.id)
        return "not a note"
    if not comments.check_object_origin(obj, actor.ap_id):
        raise Unauthorized("object must be on the actor's origin and attributed to the actor")
    return await comments.apply_remote_edit(rt, obj, actor, activity.id)


async def _on_delete(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    object_id = activity.object_id
    if not object_id:
        raise InvalidInput("Delete without object")
    if object_id == actor.ap_id:
        now = rt.now()
        async with rt.db.transaction() as tx:
            if not await comment_store.mark_activity(tx, activity.id, now):
                return "duplicate activity"
            removed = await comments.remove_actor_content(rt, tx, actor.id)
            await actor_store.delete_reactions(tx, actor.id)
            await actor_store.remove_follower(tx, actor.id)
            await actor_store.delete_keys(tx, actor.id)
        return f"actor deleted ({removed} comments removed)"
    return await comments.remove_remote(rt, object_id, actor, activity.id)


async def _on_reaction(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    target_id = activity.object_id
    now = rt.now()
    async with rt.db.transaction() as tx:
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        target = await comments.find_target(tx, target_id)
        if target is None or target_id is None:
            return "not ours"
        if target.parent is not None and not target.parent.is_public:
            return "target not public"
        added = await comment_store.add_reaction(
            tx, ap_id=activity.id, type_="like" if activity.type == "Like" else "announce",
            actor_id=actor.id, post_id=target.post.id,
            comment_id=target.parent.id if target.parent else None, target_ap_id=target_id,
            now=now,
        )
    return "reaction added" if added else "reaction already counted"


async def _on_flag(rt: Runtime, activity: parse.IncomingActivity, actor: RemoteActor) -> str:
    now = rt.now()
    async with rt.db.transaction() as tx:
        if not await comment_store.mark_activity(tx, activity.id, now):
            return "duplicate activity"
        await actor_store.add_report(
            tx, ap_id=activity.id, actor_id=actor.id, content=(activity.content or "")[:5000],
            object_ids=list(activity.object_ids)[:100], now=now,
        )
    return "report stored"


_HANDLERS = {
    "Follow": _on_follow,
    "Undo": _on_undo,
    "Create": _on_create,
    "Update": _on_update,
    "Delete": _on_delete,
    "Like": _on_reaction,
    "Announce": _on_reaction,
    "Flag": _on_flag,
}
