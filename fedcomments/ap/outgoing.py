"""ActivityStreams documents the blog sends besides posts: Notes for owner answers and
federated reader comments, Update and Delete activities, replies collections."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fedcomments.ap.build import OBJECT_CONTEXT, PUBLIC, iso
from fedcomments.urls import Urls


@dataclass(frozen=True)
class Mentioned:
    """An actor a Note mentions: its id, the handle shown and the profile link."""

    ap_id: str
    handle: str
    url: str


def mention_html(who: Mentioned) -> str:
    """The mention link as Mastodon writes it, so it renders as a mention there."""
    username = who.handle.lstrip("@").split("@", 1)[0]
    return (f'<span class="h-card" translate="no"><a href="{html.escape(who.url)}" '
            f'class="u-url mention">@<span>{html.escape(username)}</span></a></span>')


def prefix_paragraph(content_html: str, prefix_html: str) -> str:
    """Put `prefix_html` at the start of the first paragraph (or in one of its own)."""
    if content_html.startswith("<p>"):
        return f"<p>{prefix_html} {content_html[3:]}"
    return f"<p>{prefix_html}</p>{content_html}"


def note(
    urls: Urls,
    *,
    note_id: str,
    in_reply_to: str,
    context: str,
    content: str,
    published: datetime,
    to: list[str],
    cc: list[str],
    mentions: list[Mentioned],
    url: str,
    replies: str | dict[str, Any],
    updated: datetime | None = None,
) -> dict[str, Any]:
    """A Note by the blog actor (without @context: embedded in a Create or served wrapped)."""
    doc: dict[str, Any] = {
        "id": note_id,
        "type": "Note",
        "attributedTo": urls.actor,
        "inReplyTo": in_reply_to,
        "context": context,
        "content": content,
        "published": iso(published),
        "url": url,
        "to": to,
        "cc": cc,
        "tag": [{"type": "Mention", "href": m.ap_id, "name": m.handle} for m in mentions],
        "replies": replies,
        "sensitive": False,
    }
    if updated is not None:
        doc["updated"] = iso(updated)
    return doc


def create(urls: Urls, activity_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    return _activity(urls, "Create", activity_id, obj, obj.get("published"))


def update(urls: Urls, activity_id: str, obj: dict[str, Any], when: datetime) -> dict[str, Any]:
    """Update{object}: Mastodon applies it only when the object's `updated` moved forward."""
    return _activity(urls, "Update", activity_id, obj, iso(when))


def delete(urls: Urls, activity_id: str, *, object_id: str, former_type: str, when: datetime,
           to: list[str], cc: list[str]) -> dict[str, Any]:
    tombstone = {"id": object_id, "type": "Tombstone", "formerType": former_type,
                 "deleted": iso(when)}
    return _activity(urls, "Delete", activity_id, tombstone, iso(when), to=to, cc=cc)


def _activity(urls: Urls, kind: str, activity_id: str, obj: dict[str, Any],
              published: str | None, *, to: list[str] | None = None,
              cc: list[str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": OBJECT_CONTEXT,
        "id": activity_id,
        "type": kind,
        "actor": urls.actor,
        "to": to if to is not None else obj.get("to", []),
        "cc": cc if cc is not None else obj.get("cc", []),
        "object": obj,
    }
    if published:
        doc["published"] = published
    return doc


def public_addressing(urls: Urls) -> tuple[list[str], list[str]]:
    """How the blog addresses public things: to Public, cc its followers."""
    return [PUBLIC], [urls.followers]


def replies_collection(collection_id: str, items: list[str], total: int,
                       next_page: str | None = None) -> dict[str, Any]:
    """A replies collection with its first items inline (what Mastodon reads without
    another request) and a link to the next page when there are more."""
    first: dict[str, Any] = {
        "id": f"{collection_id}?page=1",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": items,
    }
    if next_page:
        first["next"] = next_page
    return {"id": collection_id, "type": "OrderedCollection", "totalItems": total,
            "first": first}


def replies_page(collection_id: str, page: int, items: list[str], next_page: str | None
                 ) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": OBJECT_CONTEXT,
        "id": f"{collection_id}?page={page}",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": items,
    }
    if next_page:
        doc["next"] = next_page
    if page > 1:
        doc["prev"] = f"{collection_id}?page={page - 1}"
    return doc


def context_collection(collection_id: str, owner: str, total: int, first_items: list[str],
                       next_page: str | None) -> dict[str, Any]:
    """A post's conversation (FEP-7888 `context`, FEP-f228's collection of posts): the
    post and every public reply, oldest first, owned by the blog; first page inline."""
    first: dict[str, Any] = {
        "id": f"{collection_id}?page=1",
        "type": "OrderedCollectionPage",
        "partOf": collection_id,
        "orderedItems": first_items,
    }
    if next_page:
        first["next"] = next_page
    return {"@context": OBJECT_CONTEXT, "id": collection_id, "type": "OrderedCollection",
            "attributedTo": owner, "totalItems": total, "first": first}

