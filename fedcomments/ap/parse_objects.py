"""AS2 objects (the posts that become comments): content and language, content warnings,
addressing and visibility, mentions, hashtags, attachments and quotes."""

from __future__ import annotations

from typing import Any

from fedcomments.ap.parse_emoji import emojis
from fedcomments.ap.parse_values import (
    _UNSAFE_IN_ID,
    ACTIVITY_TYPES,
    MAX_ATTACHMENTS,
    MAX_CONTENT,
    MAX_IRI,
    MAX_MEDIA_TYPE,
    MAX_NAME,
    MAX_SUMMARY,
    MAX_TAGS,
    MAX_USERNAME,
    _bool,
    _cap,
    _check_depth,
    _count,
    _datetime,
    _first,
    _id_of,
    _links,
    _list,
    _natural,
    _opaque_id,
    _optional_iri,
    _pick_actor,
    _pick_url,
    _recipients,
    _reference,
    _required_iri,
    _text,
    _type,
    _types,
)
from fedcomments.ap.sanitize import plain_text, text_to_html
from fedcomments.ap.types import (
    PUBLIC,
    Attachment,
    IncomingObject,
    Mention,
    RepliesRef,
    Visibility,
)
from fedcomments.errors import ProtocolError


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
        emojis=emojis(node),
        replies=_replies(node, object_id),
    )


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


def _replies(node: dict[str, Any], object_id: str) -> RepliesRef | None:
    """The replies collection an object names: read on every incoming reply, so only its
    id (usually the object's id plus a path: checked cheaply), its size and how many items
    it lists inline; backfilling fetches it in full."""
    item = _first(node.get("replies"))
    if item is None:
        return None
    total, listed = None, 0
    if isinstance(item, dict):
        total = _count(item.get("totalItems"))
        first = _first(item.get("first"))
        for holder in (item, first):
            if isinstance(holder, dict):
                listed += len(_list(holder.get("orderedItems") or holder.get("items")))
    ref = _id_of(item)
    if ref is not None and not _extends(ref, object_id) and _optional_iri(ref) is None:
        ref = None
    if ref is None and total is None and not listed:
        return None
    return RepliesRef(ref, total, listed)


def _extends(ref: str, base: str) -> bool:
    """`ref` is `base` (a checked IRI) plus a path or query with no unsafe character."""
    return (len(ref) <= MAX_IRI and ref.startswith(base) and ref[len(base):len(base) + 1]
            in ("/", "?") and _UNSAFE_IN_ID.search(ref, len(base)) is None)


def _quote(node: dict[str, Any]) -> str | None:
    # FEP-044f (Mastodon 4.4+, Fedify), Misskey and Pleroma, Misskey again, Fedibird.
    for key in ("quote", "quoteUrl", "_misskey_quote", "quoteUri"):
        url = _optional_iri(node.get(key))
        if url is not None:
            return url
    return None
