"""Raw ActivityStreams 2 documents → frozen Incoming* values; the only reader of AS2 keys.

Each entry point here normalises the document (ap/jsonld.py) and then reads fixed keys,
accepting every shape real servers send: activities in parse_activities.py, objects in
parse_objects.py, actors and keys in parse_actors.py, the values they share in
parse_values.py. Failures are ProtocolError naming the field. Every key or type read must be
listed in ``jsonld_contexts.READ_TERMS``, which the fast path checks.
"""

from __future__ import annotations

from typing import Any

from fedcomments.ap.jsonld import Normalizer
from fedcomments.ap.parse_activities import _activity
from fedcomments.ap.parse_actors import _actor, _key
from fedcomments.ap.parse_collections import COLLECTION_TYPES, _collection
from fedcomments.ap.parse_objects import _object, visibility_of
from fedcomments.ap.parse_values import ACTOR_TYPES, _type, _types
from fedcomments.ap.types import (
    PUBLIC,
    Attachment,
    IncomingActivity,
    IncomingActor,
    IncomingCollection,
    IncomingObject,
    Mention,
    PublicKey,
    RepliesRef,
    Visibility,
)
from fedcomments.errors import ProtocolError

__all__ = [
    "COLLECTION_TYPES", "PUBLIC", "Attachment", "IncomingActivity", "IncomingActor",
    "IncomingCollection", "IncomingObject", "Mention", "PublicKey", "RepliesRef", "Visibility",
    "parse_activity", "parse_actor", "parse_collection", "parse_key_document", "parse_object",
    "visibility_of",
]

_KEY_TYPES = frozenset({"CryptographicKey", "Key", "Multikey"})


def parse_activity(doc: dict[str, Any], *, followers_url: str | None = None,
                   normalizer: Normalizer | None = None) -> IncomingActivity:
    """An activity; ``followers_url`` is the actor's followers collection when known.

    A type outside ACTIVITY_TYPES (FEP-044f's QuoteRequest, Bite, a vendor's reaction …) is
    returned with its type as given, its id, actor, addressing and object ids, its embedded
    object unread, so the caller can acknowledge and ignore it. Refused (ProtocolError): no
    usable id or actor, and documents of an object or actor type.

    Pass the runtime's ``normalizer``; without one a throwaway one is built (correct, slower).
    """
    node = _normalized(doc, normalizer)
    return _activity(node, followers_url, 0)


def parse_object(doc: dict[str, Any], *, followers_url: str | None = None,
                 normalizer: Normalizer | None = None) -> IncomingObject:
    """A bare object (fetched by id); activities are refused."""
    node = _normalized(doc, normalizer)
    return _object(node, followers_url, 0, None)


def parse_collection(doc: dict[str, Any], *, normalizer: Normalizer | None = None
                     ) -> IncomingCollection:
    """A collection or collection page (replies, FEP-7888 context) as a listing of item
    ids and where it continues; other types are refused."""
    node = _normalized(doc, normalizer)
    return _collection(node, 0)


def parse_actor(doc: dict[str, Any], *, normalizer: Normalizer | None = None) -> IncomingActor:
    """An actor document; other types are refused."""
    node = _normalized(doc, normalizer)
    kind = _type(node)
    if kind not in ACTOR_TYPES:
        raise ProtocolError(f"type {kind!r} is not an actor type")
    return _actor(node, 0)


def parse_key_document(
    doc: dict[str, Any], *, key_id: str | None = None, normalizer: Normalizer | None = None,
) -> tuple[IncomingActor | None, PublicKey | None]:
    """What a keyId URL returned: the actor with the key, or a standalone key document.

    Mastodon's keyId is ACTOR#main-key and the URL serves the actor; GoToSocial and Misskey
    also serve keys as their own documents with an ``owner``. From an actor the key is the
    one whose id is ``key_id`` (the first one when not given), None when absent.
    """
    node = _normalized(doc, normalizer)
    types = _types(node)
    if ACTOR_TYPES.intersection(types):
        actor = _actor(node, 0)
        keys = actor.public_keys
        key = next((k for k in keys if k.id == key_id), None) if key_id else next(iter(keys), None)
        return actor, key
    if _KEY_TYPES.intersection(types) or "publicKeyPem" in node or "publicKeyMultibase" in node:
        key = _key(node, None)
        if key is None:
            raise ProtocolError("key document has no usable publicKeyPem or publicKeyMultibase")
        return None, key
    raise ProtocolError("document is neither an actor nor a public key")


def _normalized(doc: Any, normalizer: Normalizer | None) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ProtocolError("document is not a JSON object")
    return (normalizer or Normalizer()).normalize(doc)
