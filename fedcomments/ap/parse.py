"""Raw ActivityStreams 2 documents → frozen Incoming* values; the only reader of AS2 keys.

Each entry point normalises the document (ap/jsonld.py) and then reads fixed keys, accepting
every shape real servers send. Failures are ProtocolError naming the field. Every key or type
read here must be listed in ``jsonld.READ_TERMS``, which the fast path checks.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

from fedcomments.ap.iri import hostname, http_scheme
from fedcomments.ap.jsonld import VOCABULARY_NAMESPACES, Normalizer
from fedcomments.ap.sanitize import plain_text, text_to_html
from fedcomments.ap.types import (
    PUBLIC,
    Attachment,
    IncomingActivity,
    IncomingActor,
    IncomingObject,
    Mention,
    PublicKey,
    Visibility,
)
from fedcomments.errors import ProtocolError

__all__ = [
    "ACTIVITY_TYPES", "ACTOR_TYPES", "OBJECT_TYPES", "PUBLIC", "Attachment", "IncomingActivity",
    "IncomingActor", "IncomingObject", "Mention", "PublicKey", "Visibility", "parse_activity",
    "parse_actor", "parse_key_document", "parse_object", "visibility_of",
]

ACTIVITY_TYPES = frozenset({
    "Accept", "Add", "Announce", "Arrive", "Block", "Create", "Delete", "Dislike", "Flag",
    "Follow", "Ignore", "Invite", "Join", "Leave", "Like", "Listen", "Move", "Offer", "Read",
    "Reject", "Remove", "TentativeAccept", "TentativeReject", "Travel", "Undo", "Update",
    "View", "EmojiReact",
})
ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})
#: ActivityStreams object types (Question included: Mastodon's polls are objects). A document
#: of one of these, or of an actor type, is never read as an activity.
OBJECT_TYPES = frozenset({
    "Article", "Audio", "Collection", "CollectionPage", "Document", "Event", "Image", "Link",
    "Mention", "Note", "OrderedCollection", "OrderedCollectionPage", "Page", "Place", "Profile",
    "Question", "Relationship", "Tombstone", "Video",
})
_KNOWN_TYPES = ACTIVITY_TYPES | ACTOR_TYPES
# PeerTube attributes a video to [account (Person), channel (Group)]: the Person wrote it.
_AUTHOR_TYPES = frozenset({"Person", "Service", "Application", "Organization"})
_KEY_TYPES = frozenset({"CryptographicKey", "Key", "Multikey"})
# Spellings of the Public collection: full IRI, compact (pyld's output), bare term.
_PUBLIC_SPELLINGS = frozenset({PUBLIC, "as:Public", "Public"})

MAX_DEPTH = 8
MAX_IRI = 2048
MAX_CONTENT = 100_000
MAX_SUMMARY = 10_000
MAX_NAME = 1_000
MAX_USERNAME = 256
MAX_MEDIA_TYPE = 255
MAX_RECIPIENTS = 1_000
MAX_TAGS = 100
MAX_ATTACHMENTS = 20
MAX_LINKS = 20
MAX_OBJECTS = 100
MAX_KEYS = 10
MAX_PEM = 16_384
MAX_MULTIBASE = 4_096
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
_UNSAFE_IN_ID = re.compile(r"[\x00-\x20\x7f\s]")
_NO_LANGUAGE = ("und", "@none")


# -- entry points -------------------------------------------------------------------------

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


def visibility_of(to: tuple[str, ...], cc: tuple[str, ...],
                  followers_url: str | None = None) -> Visibility:
    """Public in ``to`` → public; in ``cc`` → unlisted; a followers collection → followers."""
    if PUBLIC in to:
        return Visibility.PUBLIC
    if PUBLIC in cc:
        return Visibility.UNLISTED
    for recipient in (*to, *cc):
        if recipient == followers_url or recipient.endswith("/followers"):
            return Visibility.FOLLOWERS
    return Visibility.DIRECT


# -- documents ----------------------------------------------------------------------------

def _normalized(doc: Any, normalizer: Normalizer | None) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ProtocolError("document is not a JSON object")
    return (normalizer or Normalizer()).normalize(doc)


def _activity(node: dict[str, Any], followers_url: str | None, depth: int) -> IncomingActivity:
    _check_depth(depth)
    activity_id = _required_iri(node, "id")
    kind = _type(node)
    if kind in OBJECT_TYPES or kind in ACTOR_TYPES:
        raise ProtocolError(f"type {kind!r} is not an activity type")
    actor = _pick_actor(node.get("actor"), "actor")
    if actor is None:
        raise ProtocolError("actor is missing")
    if kind not in ACTIVITY_TYPES:
        return _unknown_activity(node, activity_id, kind, actor)
    objects = _list(node.get("object"))[:MAX_OBJECTS]
    object_ids = tuple(_checked(i, "object") for i in map(_id_of, objects) if i is not None)
    embedded = objects[0] if len(objects) == 1 and isinstance(objects[0], dict) else None
    obj: IncomingObject | None = None
    inner: IncomingActivity | None = None
    object_actor: IncomingActor | None = None
    # An embedded node without a type is only a reference (pyld would reduce it to its id).
    if embedded is not None and _types(embedded):
        embedded_kind = _type(embedded)
        try:
            if embedded_kind in ACTIVITY_TYPES:
                inner = _activity(embedded, None, depth + 1)
            elif embedded_kind in ACTOR_TYPES:
                object_actor = _actor(embedded, depth + 1)
            else:
                obj = _object(embedded, followers_url, depth + 1, actor)
        except ProtocolError as exc:
            raise ProtocolError(f"object: {exc}") from exc
    content, _language = _natural(node, "content")
    if content is None:
        # Misskey names the reaction in content and in _misskey_reaction; read either.
        content = _text(node.get("_misskey_reaction"))
    return IncomingActivity(
        id=activity_id,
        type=kind,
        actor=actor,
        object_id=object_ids[0] if object_ids else None,
        object=obj,
        inner=inner,
        target=_reference(node, "target"),
        to=_recipients(node, "to"),
        cc=_recipients(node, "cc"),
        published=_datetime(node.get("published")),
        content=_cap(content, MAX_SUMMARY),
        object_ids=object_ids,
        object_actor=object_actor,
    )


def _unknown_activity(node: dict[str, Any], activity_id: str, kind: str,
                      actor: str) -> IncomingActivity:
    """An activity of a type we do not handle, read leniently: nothing in it is acted upon,
    so an odd object (an embedded quote, a custom emoji) must not turn it into a 400."""
    object_ids = tuple(i for i in map(_id_of, _list(node.get("object"))[:MAX_OBJECTS])
                       if i is not None and _valid_iri(i))
    return IncomingActivity(
        id=activity_id,
        type=kind,
        actor=actor,
        object_id=object_ids[0] if object_ids else None,
        object=None,
        inner=None,
        target=_optional_iri(node.get("target")),
        to=_recipients(node, "to"),
        cc=_recipients(node, "cc"),
        published=_datetime(node.get("published")),
        content=None,
        object_ids=object_ids,
    )


def _object(node: dict[str, Any], followers_url: str | None, depth: int,
            sender: str | None) -> IncomingObject:
    _check_depth(depth)
    object_id = _required_iri(node, "id")
    kind = _type(node)
    if kind in ACTIVITY_TYPES:
        raise ProtocolError(f"type {kind!r} is an activity, not an object")
    attributed_to = _pick_actor(node.get("attributedTo"), "attributedTo")
    if sender is not None and attributed_to not in (None, sender):
        followers_url = None  # the sender's followers say nothing about someone else's post
    content, language = _natural(node, "content")
    if content is None:
        # Misskey's MFM source; it sends rendered HTML in content too, so this is a fallback.
        source = _text(node.get("_misskey_content"))
        content = text_to_html(source[:MAX_CONTENT]) if source else ""
    name, name_language = _natural(node, "name")
    summary, summary_language = _natural(node, "summary")
    to, cc = _recipients(node, "to"), _recipients(node, "cc")
    warning = plain_text(summary[:MAX_SUMMARY]) or None if summary else None
    hashtags = _hashtags(node)
    # A content warning hides the post, so it counts as sensitive: Mastodon and Misskey set
    # the flag with every CW, but some Mastodon documents carry a CW without it. Pleroma
    # marks #nsfw posts sensitive too.
    tags = {tag.casefold() for tag in hashtags}
    return IncomingObject(
        id=object_id,
        type=kind,
        attributed_to=attributed_to,
        in_reply_to=_reference(node, "inReplyTo"),
        context=_opaque_id(node.get("context")) or _opaque_id(node.get("conversation")),
        content=content[:MAX_CONTENT],
        language=language or name_language or summary_language,
        summary=warning,
        sensitive=_bool(node.get("sensitive")) or warning is not None or "nsfw" in tags,
        name=_cap(name, MAX_NAME),
        url=_pick_url(node.get("url")),
        published=_datetime(node.get("published")),
        updated=_datetime(node.get("updated")),
        to=to,
        cc=cc,
        visibility=visibility_of(to, cc, followers_url),
        mentions=_mentions(node),
        hashtags=hashtags,
        attachments=_attachments(node),
        quote_url=_quote(node),
    )


def _actor(node: dict[str, Any], depth: int) -> IncomingActor:
    _check_depth(depth)
    actor_id = _required_iri(node, "id")
    endpoints = _first(node.get("endpoints"))
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    return IncomingActor(
        id=actor_id,
        type=_type(node),
        preferred_username=_cap(_text(node.get("preferredUsername")), MAX_USERNAME),
        name=_cap(_natural(node, "name")[0], MAX_NAME),
        summary=_cap(_natural(node, "summary")[0], MAX_SUMMARY),
        url=_pick_url(node.get("url")),
        icon=_pick_image(node.get("icon")),
        inbox=_optional_iri(node.get("inbox")),
        shared_inbox=_optional_iri(shared),
        outbox=_optional_iri(node.get("outbox")),
        followers=_optional_iri(node.get("followers")),
        public_keys=_keys(node, actor_id),
        manually_approves=_bool(node.get("manuallyApprovesFollowers")),
        published=_datetime(node.get("published")),
    )


def _keys(node: dict[str, Any], actor_id: str) -> tuple[PublicKey, ...]:
    found: list[PublicKey] = []
    # Fedify (FEP-521a) lists Multikeys in assertionMethod besides Mastodon's publicKey.
    candidates = [*_list(node.get("publicKey")), *_list(node.get("assertionMethod"))]
    for item in candidates[:MAX_KEYS]:
        if isinstance(item, dict):
            key = _key(item, actor_id)
            if key is not None and all(k.id != key.id for k in found):
                found.append(key)
    return tuple(found)


def _key(node: dict[str, Any], actor_id: str | None) -> PublicKey | None:
    """One key, or None when unusable; a standalone key (no actor_id) must name its owner."""
    key_id = _optional_iri(node.get("id"))
    owner_value = node.get("owner", node.get("controller"))
    owner = _optional_iri(owner_value) if owner_value is not None else actor_id
    if key_id is None or owner is None:
        if actor_id is None:
            raise ProtocolError("key document needs an http(s) id and owner")
        return None
    pem = (_text(node.get("publicKeyPem")) or "").strip()
    if pem.startswith("-----BEGIN ") and len(pem) <= MAX_PEM:
        return PublicKey(id=key_id, owner=owner, pem=pem)
    multibase = (_text(node.get("publicKeyMultibase")) or "").strip()
    if "Multikey" in _types(node) and multibase.startswith("z") \
            and len(multibase) <= MAX_MULTIBASE:
        return PublicKey(id=key_id, owner=owner, pem="", multibase=multibase)
    return None


# -- object parts ---------------------------------------------------------------------------

def _recipients(node: dict[str, Any], key: str) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for item in _list(node.get(key))[:MAX_RECIPIENTS]:
        recipient = _id_of(item)
        if recipient in _PUBLIC_SPELLINGS:
            found[PUBLIC] = None
        elif recipient is not None and _valid_iri(recipient):
            found[recipient] = None
    return tuple(found)


def _mentions(node: dict[str, Any]) -> tuple[Mention, ...]:
    found: dict[str, Mention] = {}
    for tag in _list(node.get("tag"))[:MAX_TAGS]:
        if isinstance(tag, dict) and "Mention" in _types(tag):
            href = _optional_iri(tag.get("href"))
            if href is not None and href not in found:
                found[href] = Mention(href=href, name=_cap(_natural(tag, "name")[0], MAX_NAME))
    return tuple(found.values())


def _hashtags(node: dict[str, Any]) -> tuple[str, ...]:
    found: dict[str, str] = {}
    for tag in _list(node.get("tag"))[:MAX_TAGS]:
        if isinstance(tag, dict) and "Hashtag" in _types(tag):
            name = (_natural(tag, "name")[0] or "").strip().lstrip("#").strip()
            if name and len(name) <= MAX_USERNAME:
                found.setdefault(name.casefold(), name)
    return tuple(found.values())


def _attachments(node: dict[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    for item in _list(node.get("attachment"))[:MAX_ATTACHMENTS]:
        if not isinstance(item, dict):
            continue
        kind = _type(item) if _types(item) else "Document"
        links = _links(item) if kind == "Link" else _links(item.get("url"))
        if not links:
            continue
        url, link_type = links[0]
        # Owncast puts the alt text in content rather than name.
        alt = _natural(item, "name")[0] or _natural(item, "content")[0]
        found.append(Attachment(
            url=url,
            media_type=_cap(_text(item.get("mediaType")) or link_type, MAX_MEDIA_TYPE),
            name=_cap(alt, MAX_NAME),
            type=kind,
        ))
    return tuple(found)


def _quote(node: dict[str, Any]) -> str | None:
    # FEP-044f (Mastodon 4.4+, Fedify), Misskey and Pleroma, Misskey again, Fedibird.
    for key in ("quote", "quoteUrl", "_misskey_quote", "quoteUri"):
        url = _optional_iri(node.get(key))
        if url is not None:
            return url
    return None


def _links(value: Any) -> list[tuple[str, str | None]]:
    """(href, mediaType) of a url/href value: a string, a Link or Image, or a list of them."""
    found: list[tuple[str, str | None]] = []
    for item in _list(value)[:MAX_LINKS]:
        if isinstance(item, str):
            href, media_type = item, None
        elif isinstance(item, dict):
            href = _id_of(_first(item.get("href")))
            if href is None:  # an Image whose url is a string or a Link
                inner = _first(item.get("url"))
                href = _id_of(inner.get("href") if isinstance(inner, dict) else inner)
            media_type = _text(item.get("mediaType"))
        else:
            continue
        if href is not None and _valid_iri(href):
            found.append((href, media_type))
    return found


def _pick_url(value: Any) -> str | None:
    """The page for humans: the text/html link when there are several (PeerTube)."""
    links = _links(value)
    for wanted in ("text/html", None):
        for href, media_type in links:
            if media_type == wanted:
                return href
    return links[0][0] if links else None


def _pick_image(value: Any) -> str | None:
    links = _links(value)
    return links[0][0] if links else None


# -- values ----------------------------------------------------------------------------------

def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _text(value: Any) -> str | None:
    """A string, or the string of a JSON-LD value object ({"@value": …}), or the first one."""
    for item in _list(value):
        if isinstance(item, str):
            return item
        if isinstance(item, dict) and isinstance(item.get("@value"), str):
            return item["@value"]
    return None


def _bool(value: Any) -> bool:
    item = _first(value)
    if isinstance(item, dict):
        item = item.get("@value")
    return item is True or (isinstance(item, str) and item.lower() == "true")


def _cap(value: str | None, limit: int) -> str | None:
    return value[:limit] if value is not None else None


def _natural(node: dict[str, Any], key: str) -> tuple[str | None, str | None]:
    """A natural-language property as (text, language), from ``key`` or ``keyMap``.

    pyld files a plain value under the document's default language ("und" in Pleroma's
    context) into the map, so "und" counts as the plain value. Several languages: the one
    matching the plain value, else the first by tag (pyld sorts language maps).
    """
    plain = _text(node.get(key))
    entries: list[tuple[str, str]] = []
    language_map = node.get(key + "Map")
    if isinstance(language_map, dict):
        for language, value in language_map.items():
            text = _text(value)
            if isinstance(language, str) and text is not None:
                entries.append((language.lower(), text))
    if plain is None:
        plain = next((text for lang, text in entries if lang in _NO_LANGUAGE), None)
    tagged = sorted(entry for entry in entries if entry[0] not in _NO_LANGUAGE)
    if plain is None:
        return (tagged[0][1], _language_tag(tagged[0][0])) if tagged else (None, None)
    match = next((lang for lang, text in tagged if text == plain), None)
    return plain, _language_tag(match) if match else None


def _language_tag(tag: str) -> str | None:
    """BCP 47 in its usual case (pt-BR, zh-Hant); pyld lowercases tags, senders do not."""
    if len(tag) > 35 or not _LANGUAGE.fullmatch(tag):
        return None
    first, *rest = tag.split("-")
    parts = [first.lower()]
    for part in rest:
        parts.append(part.upper() if len(part) == 2 else part.title() if len(part) == 4
                     else part.lower())
    return "-".join(parts)


def _datetime(value: Any) -> datetime | None:
    """xsd:dateTime with or without fractions or Z; no zone means UTC; junk means None."""
    text = _text(value)
    if not text or len(text) > 64:
        return None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _types(node: dict[str, Any]) -> tuple[str, ...]:
    return tuple(t for t in _list(node.get("type")) if isinstance(t, str))


def _type(node: dict[str, Any]) -> str:
    types = _types(node)
    if not types:
        raise ProtocolError("type is missing")
    return next((t for t in types if t in _KNOWN_TYPES), types[0])[:MAX_USERNAME]


def _id_of(value: Any) -> str | None:
    item = _first(value)
    if isinstance(item, str):
        return item
    if isinstance(item, dict) and isinstance(item.get("id"), str):
        return item["id"]
    return None


# Actor, followers and collection ids recur in every activity an instance sends.
@functools.lru_cache(maxsize=4096)
def _valid_iri(value: str) -> bool:
    if len(value) > MAX_IRI or _UNSAFE_IN_ID.search(value) \
            or value.startswith(VOCABULARY_NAMESPACES):
        return False
    try:
        return http_scheme(value) is not None and bool(hostname(value))
    except ValueError:
        return False


def _checked(value: str, field: str) -> str:
    if not _valid_iri(value):
        raise ProtocolError(f"{field} is not an absolute http(s) URL: {value[:200]!r}")
    return value


def _required_iri(node: dict[str, Any], field: str) -> str:
    value = _id_of(node.get(field))
    if value is None:
        raise ProtocolError(f"{field} is missing")
    return _checked(value, field)


def _reference(node: dict[str, Any], field: str) -> str | None:
    """An optional id (IRI, embedded object or list: the first); invalid ones are errors."""
    value = _id_of(node.get(field))
    return None if value is None else _checked(value, field)


def _optional_iri(value: Any) -> str | None:
    """An id used as a link: invalid or missing ones are dropped, not errors."""
    iri = _id_of(value)
    return iri if iri is not None and _valid_iri(iri) else None


def _opaque_id(value: Any) -> str | None:
    """A conversation id: Mastodon's ostatus conversation is a tag: URI, not http(s)."""
    found = _id_of(value)
    if not found or len(found) > MAX_IRI or _UNSAFE_IN_ID.search(found):
        return None
    return found


def _pick_actor(value: Any, field: str) -> str | None:
    """The first author-like entry of an IRI, embedded actor or list; None when absent."""
    items = [i for i in _list(value) if _id_of(i) is not None]
    if not items:
        return None
    typed = [i for i in items if isinstance(i, dict)]
    chosen = next((i for i in typed if _AUTHOR_TYPES.intersection(_types(i))), None) \
        or next((i for i in typed if ACTOR_TYPES.intersection(_types(i))), None) \
        or items[0]
    return _checked(_id_of(chosen) or "", field)


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ProtocolError(f"objects nest deeper than {MAX_DEPTH} levels")
