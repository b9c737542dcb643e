"""`fedcomments export`: every post and comment as one JSON document (the format is in the
README and formats/fedjson.py), written piece by piece so memory stays small, and read
back by `fedcomments import fedcomments`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import orjson

from fedcomments.formats.fedjson import FORMAT, SOURCE, VERSION
from fedcomments.model import Comment, ImportKey, Post, RemoteActor
from fedcomments.runtime import Runtime
from fedcomments.services import posts as post_service
from fedcomments.store import export as export_store
from fedcomments.store import posts as post_store
from fedcomments.store.export import ExportedComment, ExportedReaction
from fedcomments.urls import site_key

#: Comments read per query.
PAGE = 500


def _dump(value: Any) -> str:
    return orjson.dumps(value).decode()


async def export_json(rt: Runtime, *, post: str | None = None, public_only: bool = False
                      ) -> AsyncIterator[str]:
    """The export document in pieces: every comment the admin can see (held, rejected and
    private ones too unless `public_only`, which also leaves emails out), of every post or
    of `post` (id, slug or permalink)."""
    only = await post_service.get_post(rt, post) if post else None
    now = rt.now()
    header = {"format": FORMAT, "version": VERSION, "exported_at": now.isoformat(),
              "server": {"base_url": rt.urls.base_url, "actor": rt.urls.actor},
              "public_only": public_only}
    yield _dump(header)[:-1] + ',\n"posts": ['
    posts = [only] if only else await _all_posts(rt)
    first = True
    for p in posts:
        if public_only and (p.is_deleted or p.published_at > now):
            continue
        reactions = await export_store.reactions_of(rt.db.read, post_id=p.id)
        yield ("\n" if first else ",\n") + _dump(_post(p, reactions))
        first = False
    yield '\n],\n"comments": ['
    site = site_key(rt.urls.base_url)
    after, first = 0, True
    while page := await export_store.comments_after(
            rt.db.read, after, PAGE, post_id=only.id if only else None, public_only=public_only,
            now=now):
        by_comment: dict[int, list[ExportedReaction]] = defaultdict(list)
        for r in await export_store.reactions_of(
                rt.db.read, comment_ids=[e.comment.id for e in page]):
            if r.comment_id is not None:
                by_comment[r.comment_id].append(r)
        for e in page:
            doc = _comment(e, site, by_comment.get(e.comment.id, []), public_only)
            yield ("\n" if first else ",\n") + _dump(doc)
            first = False
        after = page[-1].comment.id
    yield "\n]}\n"


async def _all_posts(rt: Runtime) -> list[Post]:
    # Posts are few (one per blog post); deleted ones too, their comments may stay.
    found: list[Post] = []
    key = None
    while True:
        page, key = await post_store.posts_page(rt.db.read, include_deleted=True, limit=1000,
                                                key=key)
        found.extend(page)
        if key is None:
            return found


def _actor(a: RemoteActor) -> dict[str, Any]:
    return {"id": a.ap_id, "type": a.type, "username": a.username, "name": a.name,
            "url": a.url, "icon": a.icon, "inbox": a.inbox, "shared_inbox": a.shared_inbox,
            "followers_url": a.followers_url}


def _reaction(r: ExportedReaction) -> dict[str, Any]:
    return {"type": r.type, "ap_id": r.ap_id, "actor": _actor(r.actor),
            "created": r.created.isoformat()}


def _post(p: Post, reactions: list[ExportedReaction]) -> dict[str, Any]:
    return {"id": p.id, "url": p.permalink, "ap_id": p.ap_id, "slug": p.slug, "title": p.title,
            "published": p.published_at.isoformat(),
            "deleted": p.deleted_at.isoformat() if p.deleted_at else None,
            "reactions": [_reaction(r) for r in reactions]}


def _key(key: ImportKey) -> dict[str, str]:
    return {"source": key.source, "site": key.site, "id": key.id}


def _comment(e: ExportedComment, site: str, reactions: list[ExportedReaction],
             public_only: bool) -> dict[str, Any]:
    c: Comment = e.comment
    # A comment keeps the key it was first stored under, so moving it again (or importing
    # its original export here too) never makes a second copy.
    key = c.imported or ImportKey(SOURCE, site, str(c.id))
    parent = None
    if c.parent_id is not None:
        parent = e.parent_imported or ImportKey(SOURCE, site, str(c.parent_id))
    author: dict[str, Any] = {
        "name": c.actor.display_name if c.actor else c.author_name,
        "email": None if public_only else e.author_email,
        "website": c.author_website,
        "actor": _actor(c.actor) if c.actor else None,
    }
    return {
        "id": c.id, "post": e.post_permalink, "key": _key(key),
        "parent": _key(parent) if parent else None, "parent_id": c.parent_id,
        "origin": c.origin.value, "status": c.status.value, "visibility": c.visibility.value,
        "author": author, "published": c.published_at.isoformat(),
        "updated": c.updated_at.isoformat() if c.updated_at else None,
        "deleted": c.deleted_at.isoformat() if c.deleted_at else None,
        "content": c.content, "summary": c.summary, "sensitive": c.sensitive,
        "language": c.language, "ap_id": c.ap_id, "url": c.url, "in_reply_to": c.in_reply_to,
        "attachments": [a.__dict__ for a in c.attachments], "mentions": list(c.mentions),
        "reactions": [_reaction(r) for r in reactions],
    }
