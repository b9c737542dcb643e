"""The inbox: authenticate a signed POST, then dispatch the activity by type; and the
background pruning of its idempotency records.

Authentication is a default-deny gate: every failure raises a typed error whose
`http_status` the web layer returns (401 signature/key, 403 blocked, 400 malformed).
Cheap refusals come first: nothing is fetched for a blocked origin, a stale or tampered
request, or a Delete of an actor we never saw; nothing is stored unless the signature holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from fedcomments.ap import parse
from fedcomments.ap.httpsig import (
    ParsedSignature,
    SignatureError,
    SignatureFailure,
    check_request,
    parse_request_signature,
    verify_request,
)
from fedcomments.errors import InvalidInput, ProtocolError, Unauthorized
from fedcomments.model import RemoteActor
from fedcomments.names import canonical_url, same_origin
from fedcomments.runtime import Runtime
from fedcomments.services import (
    actors,
    deliveries,
    inbox_activities,
    media,
    notify,
    recheck,
    spam,
    unblocked,
)
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store

log = logging.getLogger("fedcomments.inbox")

#: Processed activity ids, and tombstones of objects we never stored, are forgotten after
#: this long. A replay needs a fresh signature (valid about an hour) and Mastodon gives up
#: retrying a delivery after about two days, so a month is a wide margin.
RECORD_RETENTION = timedelta(days=30)
#: How often (by the runtime's clock) the background task prunes; rows go in batches, so
#: the writer lock is never held for long even on a first run over a large backlog.
PRUNE_INTERVAL = timedelta(hours=1)
PRUNE_BATCH = 5000

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
    actor: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _decode(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        # The standard parser decides what orjson refuses (NaN, a byte-order mark, lone
        # surrogates, nesting past orjson's limit), so those keep their old verdicts.
        # orjson reads integers past 64 bits as floats; no field we read is a number.
        try:
            doc = json.loads(body, parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
            raise InvalidInput("body is not valid JSON") from None
        except RecursionError:
            raise InvalidInput("body nests too deeply") from None
    if not isinstance(doc, dict):
        raise InvalidInput("body is not a JSON object")
    return doc


def _parse(rt: Runtime, body: bytes) -> parse.IncomingActivity:
    """The activity, of any type; a type we do not handle comes back as given."""
    doc = _decode(body)
    try:
        return parse.parse_activity(doc, normalizer=rt.normalizer)
    except ProtocolError as exc:
        raise InvalidInput(f"not a usable activity: {exc}") from None


async def receive(rt: Runtime, req: InboxRequest) -> InboxResult:
    """Authenticate and process one inbox POST; returns after the change is committed."""
    signature = _canonical_key_id(parse_request_signature(req.method, req.url, req.headers))
    key_id = signature.key_id
    # Blocked origins are refused on the keyId alone, before we fetch or parse anything.
    await unblocked.refuse(rt, key_id)
    if rt.urls.is_local(key_id):
        raise Unauthorized("only this server signs with its own keys")
    activity = _parse(rt, req.body)
    await unblocked.refuse(rt, activity.actor)
    if not same_origin(activity.id, activity.actor):
        raise InvalidInput("activity id is not on the actor's origin")
    cached = await actors.cached_key(rt, key_id)
    if cached is None and _deletes_itself(activity) and (
        await actor_store.by_ap_id(rt.db.read, activity.actor) is None
    ):
        # Mastodon sends Delete{actor} to every server it ever heard of; for an actor we
        # never saw there is nothing to do, and its key is usually gone already (410).
        return InboxResult(activity.id, activity.type, "unknown actor deleted", activity.actor)
    if cached is None:
        # A key is about to be fetched: blocks another process committed count first.
        await unblocked.before_fetch(rt, key_id, activity.actor)
    # Types we do not handle (FEP-044f's QuoteRequest that Mastodon sends when one of our
    # posts is quoted, Bite, Read …) are verified and acknowledged; their sender is not kept.
    handled = inbox_activities.handles(activity.type)
    actor = await authenticate(rt, req, signature, activity.actor, cached, store=handled)
    await deliveries.host_contacted(rt, key_id)
    if not handled:
        return InboxResult(activity.id, activity.type, "ignored type", activity.actor)
    assert actor is not None
    outcome = await inbox_activities.dispatch(rt, activity, actor)
    return InboxResult(activity.id, activity.type, outcome, activity.actor)


def _canonical_key_id(signature: ParsedSignature) -> ParsedSignature:
    """The signature with its keyId spelled as ids are (its host in punycode, lower case),
    so that it meets the key's document and the blocklist; refused unless an http(s) URL.
    (No signature base contains the keyId as parsed here, so nothing it verifies changes.)"""
    key_id = canonical_url(signature.key_id)
    if key_id is None:
        raise Unauthorized(f"keyId is not an http(s) URL: {signature.key_id[:200]!r}")
    return signature if key_id == signature.key_id else replace(signature, key_id=key_id)


def _deletes_itself(activity: parse.IncomingActivity) -> bool:
    return activity.type == "Delete" and activity.object_id == activity.actor


def _verify(rt: Runtime, req: InboxRequest, signature: ParsedSignature, pem: str) -> None:
    verify_request(signature, pem, method=req.method, url=req.url, headers=req.headers,
                   body=req.body, now=rt.now())


async def authenticate(rt: Runtime, req: InboxRequest, signature: ParsedSignature,
                       actor_id: str, key: actors.ResolvedKey | None, *, store: bool = True
                       ) -> RemoteActor | None:
    """Verify the signature with its key; the key's owner must be `actor_id`.

    `key` is the cached key, if any. Returns the owner, stored now if it was fetched; with
    `store` False (an activity we ignore) nothing is stored and None is returned.
    """
    if key is None:
        # What no key could make valid (coverage, time window, digest) costs no fetch.
        check_request(signature, method=req.method, url=req.url, headers=req.headers,
                      body=req.body, now=rt.now())
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
    if key.owner != actor_id:
        raise Unauthorized(f"key {key.key_id} belongs to {key.owner}, not to actor {actor_id}")
    if not store:
        return None
    return await actors.remember(rt, key)


# --- housekeeping -------------------------------------------------------------------------


@dataclass(frozen=True)
class Pruned:
    activities: int
    tombstones: int


async def prune_records(rt: Runtime) -> Pruned:
    """Forget processed activity ids and unknown-object tombstones older than
    RECORD_RETENTION. Tombstones of our own comments stay: those ids must never come back."""
    before = rt.now() - RECORD_RETENTION
    counts = []
    for prune in (comment_store.prune_activities, comment_store.prune_unknown_tombstones):
        total, removed = 0, PRUNE_BATCH
        while removed == PRUNE_BATCH:
            async with rt.db.transaction() as tx:
                removed = await prune(tx, before, PRUNE_BATCH)
            total += removed
        counts.append(total)
    return Pruned(*counts)


async def _media_housekeeping(rt: Runtime) -> None:
    """Remote images nothing shows any more, and the image cache beyond its size."""
    try:
        swept = await media.housekeeping(rt)
    except Exception:  # a task boundary: log and try again next time
        log.exception("sweeping remote images failed")
    else:
        if swept.rows or swept.files or swept.evicted or swept.retried:
            log.info("remote images swept", extra={
                "rows": swept.rows, "files": swept.files, "evicted": swept.evicted,
                "kept_bytes": swept.kept_bytes, "retried": swept.retried})


async def _notice_housekeeping(rt: Runtime) -> None:
    """Readers' data in sent mails, webhook events and spam reports, and the spam
    service's copy of it, past their retention."""
    try:
        forgotten = await deliveries.forget_notices(rt)
        params = await spam.forget_old_params(rt)
    except Exception:  # a task boundary: log and try again next time
        log.exception("forgetting sent notices failed")
    else:
        if forgotten.cleared or forgotten.pruned or params:
            log.info("sent notices forgotten", extra={
                "cleared": forgotten.cleared, "pruned": forgotten.pruned,
                "spam_checks": params})


async def housekeeping(rt: Runtime, interval: float = 1.0) -> None:
    """Prune old inbox records (and sweep images, forget sent notices) at start and every
    PRUNE_INTERVAL of the runtime's clock, queue the owner's digest when due
    (notify.periodic) and recheck stored remote replies that are due (services/recheck.py),
    looking every `interval` seconds; runs until cancelled."""
    last: datetime | None = None
    last_notify: datetime | None = None
    pacer = recheck.Pacer()
    last_recheck: datetime | None = None
    while True:
        last_recheck = await recheck.housekeeping_step(rt, pacer, last_recheck)
        now = rt.now()
        if last_notify is None or now - last_notify >= notify.CHECK_INTERVAL:
            last_notify = now
            try:
                await notify.periodic(rt)
            except Exception:  # a task boundary: log and try again next time
                log.exception("notification housekeeping failed")
        if last is None or now - last >= PRUNE_INTERVAL:
            last = now
            try:
                pruned = await prune_records(rt)
            except Exception:  # a task boundary: log and try again next time
                log.exception("pruning inbox records failed")
            else:
                if pruned.activities or pruned.tombstones:
                    log.info("inbox records pruned", extra={
                        "activities": pruned.activities, "tombstones": pruned.tombstones})
            await _media_housekeeping(rt)
            await _notice_housekeeping(rt)
        await asyncio.sleep(interval)
