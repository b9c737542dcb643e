"""Shared readers of AS2 values for the parse modules: JSON-LD's many spellings of one value
(a string, a value object, a list, an embedded node) read as plain Python values, ids checked
to be http(s) IRIs, addressing, links; and the type names and size limits they all apply.
Every key read here must be listed in ``jsonld_contexts.READ_TERMS``."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

from fedcomments.ap.jsonld_contexts import VOCABULARY_NAMESPACES
from fedcomments.ap.types import PUBLIC
from fedcomments.errors import ProtocolError
from fedcomments.names import canonical_url

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


def _recipients(node: dict[str, Any], key: str) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for item in _list(node.get(key))[:MAX_RECIPIENTS]:
        recipient = _id_of(item)
        if recipient in _PUBLIC_SPELLINGS:
            found[PUBLIC] = None
        elif recipient is not None and (iri := _iri(recipient)) is not None:
            found[iri] = None
    return tuple(found)


def _links(value: Any) -> list[tuple[str, str | None]]:
    """(href, mediaType) of a url/href value: a string, a Link or Image, or a list of them."""
    found: list[tuple[str, str | None]] = []
    href: str | None
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
        if href is not None and (iri := _iri(href)) is not None:
            found.append((iri, media_type))
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
            return str(item["@value"])
    return None


def _bool(value: Any) -> bool:
    item = _first(value)
    if isinstance(item, dict):
        item = item.get("@value")
    return item is True or (isinstance(item, str) and item.lower() == "true")


def _optional_bool(value: Any) -> bool | None:
    """A boolean that may be absent: None when the document does not say (or says junk)."""
    item = _first(value)
    if isinstance(item, dict):
        item = item.get("@value")
    if isinstance(item, bool):
        return item
    if isinstance(item, str) and item.lower() in ("true", "false"):
        return item.lower() == "true"
    return None


def _count(value: Any) -> int | None:
    """A non-negative integer (totalItems): a number, a value object or digits; else None."""
    item = _first(value)
    if isinstance(item, dict):
        item = item.get("@value")
    if isinstance(item, str) and item.isdigit() and len(item) < 16:
        item = int(item)
    if isinstance(item, float) and item.is_integer():
        item = int(item)
    if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < 1 << 53:
        return item
    return None


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
        return str(item["id"])
    return None


# Actor, followers and collection ids recur in every activity an instance sends.
@functools.lru_cache(maxsize=4096)
def _iri(value: str) -> str | None:
    """An absolute http(s) IRI with its host in its one spelling (see names.canonical_url:
    `https://Bücher.example/u` is read as `https://xn--bcher-kva.example/u`, the way a
    block on that domain is stored), or None when it is not one."""
    if len(value) > MAX_IRI or _UNSAFE_IN_ID.search(value) \
            or value.startswith(VOCABULARY_NAMESPACES):
        return None
    try:
        return canonical_url(value)
    except ValueError:
        return None


def _checked(value: str, field: str) -> str:
    iri = _iri(value)
    if iri is None:
        raise ProtocolError(f"{field} is not an absolute http(s) URL: {value[:200]!r}")
    return iri


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
    return _iri(iri) if iri is not None else None


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
