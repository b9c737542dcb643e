"""The inbox: authenticate a signed POST, then dispatch the activity by type.

Authentication is a default-deny gate: every failure raises a typed error whose
`http_status` the web layer returns (401 signature/key, 403 blocked, 400 malformed).
Cheap refusals come first: nothing is fetched for a blocked origin, a stale or tampered
request, or a Delete of an actor we never saw; nothing is stored unless the signature holds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedcomments.ap import parse
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
from fedcomments.services import actors, comments, inbox_activities
from fedcomments.store import actors as actor_store

log = logging.getLogger("fedcomments.inbox")

#: Verification failures that a rotated key could explain.
_KEY_FAILURES = frozenset({SignatureFailure.INVALID_SIGNATURE, SignatureFailure.KEY_TYPE_MISMATCH,
                           SignatureFailure.INVALID_KEY})


@dataclass(frozen=True)
class InboxRequest:
    method: str
    #: The public URL the peer signed: base_url + the path and query exactly as received.
    url: str
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class InboxResult:
    activity_id: str
    type: str
    outcome: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
        raise InvalidInput("body is not valid JSON") from None
    except RecursionError:
        raise InvalidInput("body nests too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidInput("body is not a JSON object")
    return doc


def _parse(rt: Runtime, body: bytes) -> parse.IncomingActivity | parse.IncomingObject:
    """The activity; an IncomingObject stands for an activity of a type we do not know."""
    doc = _decode(body)
    try:
        return parse.parse_activity(doc, normalizer=rt.normalizer)
    except ProtocolError as exc:
        error = exc
    except RecursionError:
        # Deeply nested arrays pass the normaliser's depth check (it counts objects only)
        # and then exhaust pyld's recursion.
        raise InvalidInput("body nests too deeply") from None
    # parse_activity refuses types outside its list; such an activity (FEP-044f's
    # QuoteRequest that Mastodon sends when one of our posts is quoted, Bite …) is
    # acknowledged and ignored, so look at it as a plain object to learn its id and type.
    # Anything else is malformed.
    try:
        unknown = parse.parse_object(doc, normalizer=rt.normalizer)
    except ProtocolError:
        unknown = None
    if unknown is None or unknown.type in parse.ACTOR_TYPES | comments.NOTE_TYPES:
        raise InvalidInput(f"not a usable activity: {error}") from None
    return unknown


async def receive(rt: Runtime, req: InboxRequest) -> InboxResult:
    """Authenticate and process one inbox POST; returns after the change is committed."""
    signature = parse_request_signature(req.method, req.url, req.headers)
    key_id = signature.key_id
    # Blocked origins are refused on the keyId alone, before we fetch or parse anything.
    if rt.blocklist.url_blocked(key_id):
        raise Forbidden(f"{host_of(key_id)} is blocked")
    if rt.urls.is_local(key_id):
        raise Unauthorized("only this server signs with its own keys")
    activity = _parse(rt, req.body)
    if isinstance(activity, parse.IncomingObject):
        await authenticate(rt, req, signature, None, await actors.cached_key(rt, key_id))
        return InboxResult(activity.id, activity.type, "ignored type")
    if rt.blocklist.url_blocked(activity.actor):
        raise Forbidden(f"{host_of(activity.actor)} is blocked")
    if not actors.same_origin(activity.id, activity.actor):
        raise InvalidInput("activity id is not on the actor's origin")
    cached = await actors.cached_key(rt, key_id)
    if cached is None and _deletes_itself(activity) and (
        await actor_store.by_ap_id(rt.db.read, activity.actor) is None
    ):
        # Mastodon sends Delete{actor} to every server it ever heard of; for an actor we
        # never saw there is nothing to do, and its key is usually gone already (410).
        return InboxResult(activity.id, activity.type, "unknown actor deleted")
    actor = await authenticate(rt, req, signature, activity.actor, cached)
    assert actor is not None
    outcome = await inbox_activities.dispatch(rt, activity, actor)
    log.info("activity", extra={"id": activity.id, "type": activity.type,
                                "actor": activity.actor, "outcome": outcome})
    return InboxResult(activity.id, activity.type, outcome)


def _deletes_itself(activity: parse.IncomingActivity) -> bool:
    return activity.type == "Delete" and activity.object_id == activity.actor


def _verify(rt: Runtime, req: InboxRequest, signature: ParsedSignature, pem: str) -> None:
    verify_request(signature, pem, method=req.method, url=req.url, headers=req.headers,
                   body=req.body, now=rt.now())


def _precheck(rt: Runtime, req: InboxRequest, signature: ParsedSignature) -> None:
    """Refuse what no key could make valid (coverage, time window, digest) before a fetch.

    verify_request checks in a documented order and reaches the key last: with no key it
    fails INVALID_KEY exactly when every check before the key passed.
    """
    try:
        _verify(rt, req, signature, "")
    except SignatureError as exc:
        if exc.failure is not SignatureFailure.INVALID_KEY:
            raise


async def authenticate(rt: Runtime, req: InboxRequest, signature: ParsedSignature,
                       actor_id: str | None, key: actors.ResolvedKey | None
                       ) -> RemoteActor | None:
    """Verify the signature with its key; the key's owner must be `actor_id`.

    `key` is the cached key, if any. Returns the owner, stored now if it was fetched; with
    `actor_id` None (an ignored activity) nothing is stored and None is returned.
    """
    if key is None:
        _precheck(rt, req, signature)
        key = await actors.fetch_key(rt, signature.key_id)
        _verify(rt, req, signature, key.pem)
    else:
        try:
            _verify(rt, req, signature, key.pem)
        except SignatureError as exc:
            # Only a failure that a new key could fix is worth a refetch (key rotation),
            # and at most once per key per few minutes, so forged requests cannot make us
            # hammer an origin.
            if exc.failure not in _KEY_FAILURES or not actors.may_refetch(rt, key):
                raise
            await actors.note_refetch(rt, key.key_id)
            key = await actors.fetch_key(rt, signature.key_id)
            _verify(rt, req, signature, key.pem)
    if actor_id is None:
        return None
    if key.owner != actor_id:
        raise Unauthorized(f"key {key.key_id} belongs to {key.owner}, not to actor {actor_id}")
    return await actors.remember(rt, key)

