"""Resolve remote actors and their keys: fetch from origin, check ids, cache, refetch once.

Documents fetched to check a signature are kept in memory until the signature holds: a
request that fails verification never writes an actor or a key to the database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urldefrag

from fedcomments.ap import parse
from fedcomments.ap.keys import KeyFormatError, public_key_from_multibase
from fedcomments.ap.sanitize import plain_text, sanitize_html
from fedcomments.errors import FedcommentsError, Forbidden, ProtocolError
from fedcomments.model import RemoteActor
from fedcomments.names import host_of, same_host, same_origin
from fedcomments.runtime import Runtime
from fedcomments.services import consent, media, unblocked
from fedcomments.store import actors as actor_store
from fedcomments.store import changes as change_store
from fedcomments.store.actors import ActorFields
from fedcomments.store.conn import Conn

log = logging.getLogger("fedcomments.actors")

#: A cached key that failed to verify is fetched again at most this often (key rotation).
REFETCH_INTERVAL = timedelta(minutes=5)
#: Cached actor documents older than this are refreshed on the next get_actor().
ACTOR_TTL = timedelta(days=1)
#: An Update{Person} refetches its actor at most this often (the body is never trusted, and
#: a sender flooding Updates must not turn us into a fetcher of its actor).
UPDATE_REFETCH_INTERVAL = timedelta(minutes=5)
MAX_ACTOR_SUMMARY = 5000


class KeyUnavailable(FedcommentsError):
    """The signing key could not be fetched or does not belong to who it claims."""

    http_status = 401


@dataclass(frozen=True)
class ResolvedKey:
    """A public key and its owner: from the cache (`actor`) or just fetched (`document`)."""

    key_id: str
    owner: str
    pem: str
    actor: RemoteActor | None = None
    document: parse.IncomingActor | None = None
    fetched_at: datetime | None = None

    @property
    def from_cache(self) -> bool:
        return self.document is None


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


def own_keys(actor: parse.IncomingActor) -> dict[str, str]:
    """{key id: PEM} of the keys an actor document lists as its own, on its own origin."""
    return {
        key.id: pem for key in actor.public_keys
        if (pem := key_pem(key)) and same_origin(key.id, actor.id) and key.owner == actor.id
    }


def own_host(url: str | None, actor_id: str) -> str | None:
    """`url` when it is on the actor's own host, else None. An actor's inbox and shared
    inbox are where we deliver: a document must not be able to point our Accept, and every
    delivery after it, at another server (Mastodon keeps a profile `url` on the actor's
    host the same way)."""
    if url is None or same_host(url, actor_id):
        return url
    log.info("inbox on another host ignored", extra={"actor": actor_id, "inbox": url})
    return None


def _fields(actor: parse.IncomingActor) -> ActorFields:
    return ActorFields(
        ap_id=actor.id,
        domain=host_of(actor.id),
        type=actor.type,
        username=plain_text(actor.preferred_username)[:100] if actor.preferred_username else None,
        name=plain_text(actor.name)[:200] if actor.name else None,
        summary=sanitize_html(actor.summary, max_length=MAX_ACTOR_SUMMARY)
        if actor.summary else None,
        url=actor.url,
        icon=actor.icon,
        inbox=own_host(actor.inbox, actor.id),
        shared_inbox=own_host(actor.shared_inbox, actor.id),
        followers_url=actor.followers,
        indexable=actor.indexable,
        discoverable=actor.discoverable,
        profile_tags=actor.hashtags,
    )


async def store_actor(tx: Conn, actor: parse.IncomingActor, now: datetime) -> RemoteActor:
    """Upsert an actor fetched from its origin, with its keys, inside the caller's tx."""
    actor_id = await actor_store.upsert(tx, _fields(actor), now)
    await media.link_actor(tx, actor_id, actor.emojis, now)
    keys = own_keys(actor)
    for key_id, pem in keys.items():
        await actor_store.store_key(tx, key_id, actor_id, pem, now)
    if keys:
        # The document is the truth about its keys: a rotated-out key stops verifying.
        await actor_store.delete_keys_except(tx, actor_id, list(keys))
    stored = await actor_store.by_id(tx, actor_id)
    assert stored is not None
    return stored


async def fetch_actor_document(rt: Runtime, ap_id: str) -> parse.IncomingActor:
    """Fetch an actor from its origin (signed GET) and check it is the one asked for."""
    await unblocked.before_fetch(rt, ap_id)
    resp = await rt.remote.get_json(ap_id)
    actor = parse.parse_actor(resp.data, normalizer=rt.normalizer)
    # The document must be the one we asked for: an id on another origin would let one
    # server speak for another's actors.
    if actor.id != ap_id:
        raise ProtocolError(f"actor document at {ap_id} has id {actor.id!r}")
    return actor


async def fetch_actor(rt: Runtime, ap_id: str) -> RemoteActor:
    """Fetch an actor from its origin and store it with its keys."""
    document = await fetch_actor_document(rt, ap_id)
    async with rt.db.transaction() as tx:
        actor = await store_actor(tx, document, rt.now())
        await consent.enforce(rt, tx, actor)
        return actor


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


async def refresh_on_update(rt: Runtime, actor: RemoteActor) -> bool:
    """Refetch `actor` from its origin after its Update{Person}, at most once per
    UPDATE_REFETCH_INTERVAL (counting any fetch, such as the one that just verified it).

    The attempt is stamped before the fetch, as for keys, so an origin that fails is not
    asked again at once. False when it is too soon; raises when the fetch fails.
    """
    now = rt.now()
    since = now - UPDATE_REFETCH_INTERVAL
    if actor.fetched_at > since:
        return False  # the common case costs no database write
    async with rt.db.transaction() as tx:
        if not await actor_store.claim_actor_refetch(tx, actor.id, now, since):
            return False
    await fetch_actor(rt, actor.ap_id)
    return True


async def cached_key(rt: Runtime, key_id: str) -> ResolvedKey | None:
    """The key and its owner as stored (from memory when recently read), or None."""
    now = rt.now()
    version = rt.db.version(change_store.ACTORS)
    key: ResolvedKey | None = rt.key_cache.get(key_id, now, version)
    if key is not None:
        return key
    found = await actor_store.key_with_actor(rt.db.read, key_id)
    if found is None:
        return None
    actor, pem, fetched_at = found
    key = ResolvedKey(key_id, actor.ap_id, pem, actor=actor, fetched_at=fetched_at)
    rt.key_cache.put(key_id, key, now, version)
    return key


async def fetch_key(rt: Runtime, key_id: str) -> ResolvedKey:
    """Fetch a key and its owner from the key's origin; nothing is stored yet."""
    await unblocked.before_fetch(rt, key_id)
    try:
        return await _fetch_key(rt, key_id)
    except Forbidden:
        raise
    except FedcommentsError as exc:
        raise KeyUnavailable(f"cannot use key {key_id}: {exc}") from exc


def may_refetch(rt: Runtime, key: ResolvedKey) -> bool:
    """A cached key that failed is fetched again at most once per REFETCH_INTERVAL."""
    return key.fetched_at is None or rt.now() - key.fetched_at >= REFETCH_INTERVAL


async def note_refetch(rt: Runtime, key_id: str) -> None:
    """Stamp the attempt first, so an origin that fails to answer is not asked again soon."""
    async with rt.db.transaction() as tx:
        await actor_store.touch_key(tx, key_id, rt.now())


async def remember(rt: Runtime, key: ResolvedKey) -> RemoteActor:
    """The key's owner as stored: after a verified signature, a fetched owner is saved."""
    if key.actor is not None and key.document is None:
        return key.actor
    document = key.document
    assert document is not None
    now = rt.now()

    async def work(tx: Conn) -> RemoteActor:
        actor = await store_actor(tx, document, now)
        await consent.enforce(rt, tx, actor)
        # Under the keyId it was used with (an actor id used as keyId, see _fetch_key).
        await actor_store.store_key(tx, key.key_id, actor.id, key.pem, now)
        return actor

    # Not even the sender's actor is kept if its block committed while its key was fetched.
    actor = await unblocked.unit(rt, key.owner, work)
    rt.key_cache.put(key.key_id, ResolvedKey(key.key_id, actor.ap_id, key.pem, actor=actor,
                                             fetched_at=now),
                     now, rt.db.version(change_store.ACTORS))
    return actor


async def _fetch_key(rt: Runtime, key_id: str) -> ResolvedKey:
    url, _fragment = urldefrag(key_id)
    resp = await rt.remote.get_json(url)
    actor, key = parse.parse_key_document(resp.data, key_id=key_id, normalizer=rt.normalizer)
    if actor is not None and actor.id == url:
        # Mastodon: the keyId is ACTOR#main-key and the URL serves the actor itself. A few
        # servers sign with the bare actor id as keyId: then the actor's only key counts.
        keys = own_keys(actor)
        pem = keys.get(key_id)
        if pem is None and key_id == actor.id and len(keys) == 1:
            pem = next(iter(keys.values()))
        if pem is None:
            raise ProtocolError(f"actor {actor.id} does not list key {key_id}")
        return ResolvedKey(key_id, actor.id, pem, document=actor)
    # A standalone key document (its id is the key id), or GoToSocial's stub actor served
    # at /users/NAME/main-key (its id is the actor's). Either names an owner, which must
    # be fetched from its own id and list the key back; its copy of the key is the one used.
    doc_id = actor.id if actor is not None else key.id if key is not None else None
    if key is None or key.id != key_id:
        raise ProtocolError(f"document at {url} does not describe key {key_id}")
    if doc_id is None or not same_origin(doc_id, url) or (actor is None and doc_id != key_id):
        raise ProtocolError(f"document at {url} has id {doc_id!r}")
    if not key.owner or not same_origin(key.owner, key_id):
        raise ProtocolError(f"key {key_id} has no owner on its origin")
    owner = await fetch_actor_document(rt, key.owner)
    pem = own_keys(owner).get(key_id)
    if pem is None:
        raise ProtocolError(f"owner {key.owner} does not list key {key_id}")
    return ResolvedKey(key_id, owner.id, pem, document=owner)
