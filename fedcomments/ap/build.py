"""Domain objects → ActivityStreams documents, WebFinger, NodeInfo and host-meta."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import quoteattr

from fedcomments.model import Post
from fedcomments.urls import Urls

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
AS2_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
AS2_MEDIA_TYPE = "application/activity+json"

# The extension terms we emit, defined inline the way Mastodon does, so consumers that
# compact with their own context (Mastodon, Misskey) read them without fetching anything.
ACTOR_CONTEXT: list[Any] = [
    AS2_CONTEXT,
    SECURITY_CONTEXT,
    {
        "toot": "http://joinmastodon.org/ns#",
        "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
        "discoverable": "toot:discoverable",
        "indexable": "toot:indexable",
    },
]
OBJECT_CONTEXT: list[Any] = [
    AS2_CONTEXT,
    {
        "Hashtag": "as:Hashtag",
        "sensitive": "as:sensitive",
        "toot": "http://joinmastodon.org/ns#",
    },
]


def iso(value: datetime) -> str:
    """AS2 timestamps: UTC, second precision, `Z` (what every implementation parses)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ActorProfile:
    """What the actor document says about the blog (settings + keys)."""

    type: str
    username: str
    name: str
    summary_html: str
    blog_url: str
    icon: str | None
    public_key_pem: str
    published: datetime
    discoverable: bool
    indexable: bool


def actor(urls: Urls, profile: ActorProfile) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": ACTOR_CONTEXT,
        "id": urls.actor,
        "type": profile.type,
        "preferredUsername": profile.username,
        "name": profile.name,
        "summary": profile.summary_html,
        "url": profile.blog_url or urls.actor,
        "inbox": urls.inbox,
        "outbox": urls.outbox,
        "followers": urls.followers,
        "following": urls.following,
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "publicKey": {
            "id": urls.key_id,
            "owner": urls.actor,
            "publicKeyPem": profile.public_key_pem,
        },
        "manuallyApprovesFollowers": False,
        "discoverable": profile.discoverable,
        "indexable": profile.indexable,
        "published": iso(profile.published),
    }
    if profile.icon:
        doc["icon"] = {"type": "Image", "url": profile.icon}
    return doc


def _hashtag(urls: Urls, tag: str) -> dict[str, str]:
    return {"type": "Hashtag", "name": f"#{tag}", "href": f"{urls.base_url}/tags/{tag}"}


def article(urls: Urls, post: Post) -> dict[str, Any]:
    """The Article for a post, without @context (embedded in activities)."""
    content = post.content or (f"<p>{_escape(post.summary)}</p>" if post.summary else "")
    link = f'<p><a href="{_escape(post.permalink)}">{_escape(post.permalink)}</a></p>'
    doc: dict[str, Any] = {
        "id": post.ap_id,
        "type": "Article",
        "attributedTo": urls.actor,
        "name": post.title,
        "summary": post.summary or None,
        "content": content + link,
        "url": post.permalink,
        "published": iso(post.published_at),
        "updated": iso(post.updated_at) if post.updated_at else None,
        "to": [PUBLIC],
        "cc": [urls.followers],
        "tag": [_hashtag(urls, t) for t in post.tags],
        "replies": urls.post_replies(post.slug),
        "context": urls.post_context(post.slug),
        "sensitive": False,
    }
    if post.image:
        doc["image"] = {"type": "Image", "url": post.image}
    return {k: v for k, v in doc.items() if v is not None}


def with_context(doc: dict[str, Any], context: list[Any] | None = None) -> dict[str, Any]:
    return {"@context": context or OBJECT_CONTEXT, **doc}


def tombstone(ap_id: str, former_type: str, deleted: datetime) -> dict[str, Any]:
    return {
        "@context": AS2_CONTEXT,
        "id": ap_id,
        "type": "Tombstone",
        "formerType": former_type,
        "deleted": iso(deleted),
    }


def create(urls: Urls, activity_id: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": activity_id,
        "type": "Create",
        "actor": urls.actor,
        "published": obj.get("published"),
        "to": obj.get("to", []),
        "cc": obj.get("cc", []),
        "object": obj,
    }


def ordered_collection(
    collection_id: str, total: int, first: str | None = None, items: list[Any] | None = None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS2_CONTEXT,
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total,
    }
    if items is not None:
        doc["orderedItems"] = items
    elif first and total:
        doc["first"] = first
    return doc


def ordered_page(
    page_id: str, part_of: str, items: list[Any], next_page: str | None, prev_page: str | None
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": AS2_CONTEXT,
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
        "orderedItems": items,
    }
    if next_page:
        doc["next"] = next_page
    if prev_page:
        doc["prev"] = prev_page
    return doc


# --- discovery ----------------------------------------------------------------------


def webfinger(urls: Urls, profile_page: str) -> dict[str, Any]:
    return {
        "subject": urls.acct,
        "aliases": [urls.actor],
        "links": [
            {"rel": "self", "type": AS2_MEDIA_TYPE, "href": urls.actor},
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": profile_page,
            },
        ],
    }


def host_meta(urls: Urls) -> str:
    template = quoteattr(f"{urls.base_url}/.well-known/webfinger?resource={{uri}}")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template={template}/>\n'
        "</XRD>\n"
    )


def nodeinfo_links(urls: Urls) -> dict[str, Any]:
    return {
        "links": [
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": f"{urls.base_url}/nodeinfo/2.1",
            }
        ]
    }


def nodeinfo(version: str, *, users: int, posts: int, comments: int, name: str) -> dict[str, Any]:
    return {
        "version": "2.1",
        "software": {
            "name": "fedcomments",
            "version": version,
        },
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": False,
        "usage": {
            "users": {"total": users, "activeMonth": users, "activeHalfyear": users},
            "localPosts": posts,
            "localComments": comments,
        },
        "metadata": {"nodeName": name},
    }


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def accept_follow(urls: Urls, activity_id: str, follow_id: str | None, follower: str
                  ) -> dict[str, Any]:
    """Accept{Follow}; the embedded Follow lets Mastodon match it even without the id."""
    follow: dict[str, Any] = {"type": "Follow", "actor": follower, "object": urls.actor}
    if follow_id:
        follow = {"id": follow_id, **follow}
    return {
        "@context": AS2_CONTEXT,
        "id": activity_id,
        "type": "Accept",
        "actor": urls.actor,
        "to": [follower],
        "object": follow,
    }


def serialize(doc: dict[str, Any]) -> bytes:
    """The exact bytes we sign and send (compact, UTF-8)."""
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
