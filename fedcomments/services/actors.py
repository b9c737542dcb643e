"""Resolve remote actors and their keys: fetch from origin, check ids, cache, refetch once."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urldefrag, urlsplit

from fedcomments.ap import parse
from fedcomments.ap.keys import KeyFormatError, public_key_from_multibase
from fedcomments.ap.sanitize import plain_text
from fedcomments.blocklist import host_of
from fedcomments.errors import FedcommentsError, Forbidden, ProtocolError
from fedcomments.model import RemoteActor
from fedcomments.runtime import Runtime
from fedcomments.store import actors as actor_store
from fedcomments.store.actors import ActorFields

log = logging.getLogger("fedcomments.actors")

#: A key that failed to verify is fetched again at most this often per key (rotation).
REFETCH_INTERVAL = timedelta(minutes=5)
#: Cached actor documents older than this are refreshed on the next use.
ACTOR_TTL = timedelta(days=1)


class KeyUnavailable(FedcommentsError):
    """The signing key could not be fetched or does not belong to who it claims."""

    http_status = 401


@dataclass(frozen=True)
class ResolvedKey:
    key_id: str
    owner: str
    pem: str
    from_cache: bool


def same_origin(a: str, b: str) -> bool:
    """Scheme, host and port equal (what "objects only from their own origin" compares)."""
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.netloc.lower()) == (pb.scheme, pb.netloc.lower())


def key_pem(key: parse.PublicKey) -> str:
    """PEM of a key: as given, or converted from a Multikey (Fedify's Ed25519 keys)."""
    if key.pem:
        return key.pem
    if key.multibase:
        try:
            return public_key_from_multibase(key.multibase)
        except KeyFormatError:
            return ""
    return ""


def _fields(actor: parse.IncomingActor) -> ActorFields:
    return ActorFields(
        ap_id=actor.id,
        domain=host_of(actor.id),
        type=actor.type,
        username=plain_text(actor.preferred_username)[:100] if actor.preferred_username else None,
        name=plain_text(actor.name)[:200] if actor.name else None,
        summary=actor.summary,
        url=actor.url,
        icon=actor.icon,
        inbox=actor.inbox,
        shared_inbox=actor.shared_inbox,
        followers_url=actor.followers,
    )


def _check_blocked(rt: Runtime, url: str) -> None:
    if rt.blocklist.url_blocked(url):
        raise Forbidden(f"{host_of(url)} is blocked")


async def fetch_actor(rt: Runtime, ap_id: str) -> RemoteActor:
    """Fetch an actor from its origin, check its id, store it and its keys."""
    return (await _fetch_actor(rt, ap_id))[1]


async def _fetch_actor(rt: Runtime, ap_id: str) -> tuple[parse.IncomingActor, RemoteActor]:
    _check_blocked(rt, ap_id)
    resp = await rt.remote.get_json(ap_id)
    actor = parse.parse_actor(resp.data, normalizer=rt.normalizer)
    # The document must be the one we asked for: an id on another origin would let one
    # server speak for another's actors.
    if actor.id != ap_id and actor.id != resp.url:
        raise ProtocolError(f"actor document id {actor.id!r} does not match {ap_id!r}")
    if not same_origin(actor.id, ap_id):
        raise ProtocolError(f"actor {actor.id!r} served from another origin")
    return actor, await _store_actor(rt, actor)


async def _store_actor(rt: Runtime, actor: parse.IncomingActor) -> RemoteActor:
    now = rt.now()
    async with rt.db.transaction() as tx:
        actor_id = await actor_store.upsert(tx, _fields(actor), now)
        for key in actor.public_keys:
            # Keys count only when they are on the actor's origin and name it as owner.
            pem = key_pem(key)
            if pem and same_origin(key.id, actor.id) and key.owner in (actor.id, ""):
                await actor_store.store_key(tx, key.id, actor_id, pem, now)
        stored = await actor_store.by_id(tx, actor_id)
    assert stored is not None
    return stored


async def get_actor(rt: Runtime, ap_id: str, *, refresh: bool = False) -> RemoteActor:
    """A cached actor, fetched when unknown, stale or `refresh` is asked."""
    cached = await actor_store.by_ap_id(rt.db.read, ap_id)
    if cached is not None and not refresh and rt.now() - cached.fetched_at < ACTOR_TTL:
        return cached
    try:
        return await fetch_actor(rt, ap_id)
    except FedcommentsError:
        if cached is not None and not refresh:
            return cached
        raise


async def resolve_key(rt: Runtime, key_id: str, *, refresh: bool = False) -> ResolvedKey:
    """Find the PEM and owner for a keyId: cache first, else fetch from the key's origin."""
    _check_blocked(rt, key_id)
    if not refresh:
        cached = await actor_store.key_by_id(rt.db.read, key_id)
        if cached is not None:
            return ResolvedKey(key_id, cached[0], cached[1], from_cache=True)
    try:
        return await _fetch_key(rt, key_id)
    except FedcommentsError as exc:
        if isinstance(exc, Forbidden):
            raise
        raise KeyUnavailable(f"cannot use key {key_id}: {exc}") from exc


async def may_refetch(rt: Runtime, key_id: str) -> bool:
    """Refetch a cached key after a failed verification at most once per interval."""
    cached = await actor_store.key_by_id(rt.db.read, key_id)
    return cached is None or rt.now() - cached[2] >= REFETCH_INTERVAL


async def _fetch_key(rt: Runtime, key_id: str) -> ResolvedKey:
    url, _fragment = urldefrag(key_id)
    resp = await rt.remote.get_json(url)
    actor, key = parse.parse_key_document(resp.data, key_id=key_id, normalizer=rt.normalizer)
    doc_id = actor.id if actor is not None else (key.id if key is not None else None)
    # Mastodon keys live at ACTOR#main-key: the fetched document is the actor and its id
    # is the URL without the fragment. Standalone key documents (GoToSocial, Misskey)
    # have the key id itself.
    if doc_id not in (url, key_id):
        raise ProtocolError(f"document at {url} has id {doc_id!r}")
    if actor is not None:
        if not same_origin(actor.id, key_id):
            raise ProtocolError("key and actor on different origins")
        stored = await _store_actor(rt, actor)
        match = next((k for k in actor.public_keys if k.id == key_id and key_pem(k)), None)
        if match is None:
            raise ProtocolError(f"actor {actor.id} does not list key {key_id}")
        return ResolvedKey(key_id, stored.ap_id, key_pem(match), from_cache=False)
    assert key is not None
    if not key.owner or not same_origin(key.owner, key_id):
        raise ProtocolError(f"key {key_id} has no owner on its origin")
    incoming, owner = await _fetch_actor(rt, key.owner)
    # A standalone key only counts when its owner lists it back.
    if not any(k.id == key_id for k in incoming.public_keys):
        raise ProtocolError(f"owner {key.owner} does not list key {key_id}")
    pem = key_pem(key)
    if not pem:
        raise ProtocolError(f"key {key_id} is not usable")
    async with rt.db.transaction() as tx:
        await actor_store.store_key(tx, key_id, owner.id, pem, rt.now())
    return ResolvedKey(key_id, owner.ap_id, pem, from_cache=False)
