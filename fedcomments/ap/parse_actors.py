"""AS2 actors and their public keys: Mastodon's publicKey, Fedify's Multikeys in
assertionMethod, and standalone key documents (GoToSocial, Misskey)."""

from __future__ import annotations

import re
from typing import Any

from fedcomments.ap.parse_emoji import emojis
from fedcomments.ap.parse_values import (
    MAX_KEYS,
    MAX_MULTIBASE,
    MAX_NAME,
    MAX_PEM,
    MAX_SUMMARY,
    MAX_TAGS,
    MAX_USERNAME,
    _bool,
    _cap,
    _check_depth,
    _datetime,
    _first,
    _list,
    _natural,
    _optional_bool,
    _optional_iri,
    _pick_image,
    _pick_url,
    _required_iri,
    _text,
    _type,
    _types,
)
from fedcomments.ap.sanitize import plain_text
from fedcomments.ap.types import IncomingActor, PublicKey
from fedcomments.errors import ProtocolError

# A hashtag written in a bio: "#" not inside a word, a URL or an HTML entity, then word
# characters (Mastodon's rule, without its special cases).
_HASHTAG = re.compile(r"(?<![\w/#&])#(\w{1,100})")


def _actor(node: dict[str, Any], depth: int) -> IncomingActor:
    _check_depth(depth)
    actor_id = _required_iri(node, "id")
    endpoints = _first(node.get("endpoints"))
    shared = endpoints.get("sharedInbox") if isinstance(endpoints, dict) else None
    summary = _cap(_natural(node, "summary")[0], MAX_SUMMARY)
    return IncomingActor(
        id=actor_id,
        type=_type(node),
        preferred_username=_cap(_text(node.get("preferredUsername")), MAX_USERNAME),
        name=_cap(_natural(node, "name")[0], MAX_NAME),
        summary=summary,
        url=_pick_url(node.get("url")),
        icon=_pick_image(node.get("icon")),
        inbox=_optional_iri(node.get("inbox")),
        shared_inbox=_optional_iri(shared),
        outbox=_optional_iri(node.get("outbox")),
        followers=_optional_iri(node.get("followers")),
        public_keys=_keys(node, actor_id),
        manually_approves=_bool(node.get("manuallyApprovesFollowers")),
        published=_datetime(node.get("published")),
        emojis=emojis(node),
        indexable=_optional_bool(node.get("indexable")),
        discoverable=_optional_bool(node.get("discoverable")),
        hashtags=_profile_hashtags(node, summary),
    )


def _profile_hashtags(node: dict[str, Any], summary: str | None) -> tuple[str, ...]:
    """Mastodon lists a bio's hashtags as Hashtag tags; other servers only write them in
    the summary, so both count."""
    found: dict[str, None] = {}
    for tag in _list(node.get("tag"))[:MAX_TAGS]:
        if isinstance(tag, dict) and "Hashtag" in _types(tag):
            name = (_natural(tag, "name")[0] or "").strip().lstrip("#").strip()
            if name and len(name) <= 100:
                found[name.casefold()] = None
    if summary:
        for name in _HASHTAG.findall(plain_text(summary))[:MAX_TAGS]:
            found[name.casefold()] = None
    return tuple(found)[:MAX_TAGS]


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
