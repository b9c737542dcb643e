"""Our own objects as the fediverse fetches them: owner and reader comments as Notes at
their ids, the replies collections of posts and comments, and each post's conversation
(its FEP-7888 `context` collection)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedcomments.ap import build, outgoing
from fedcomments.errors import NotFound
from fedcomments.model import Comment, CommentStatus, Origin, Post
from fedcomments.runtime import Runtime
from fedcomments.services import replies, thread_cache
from fedcomments.store import comments as comment_store
from fedcomments.store import conversations as conversation_store
from fedcomments.store import posts as post_store
from fedcomments.store import threads as thread_store

#: Items on one page of a context collection.
CONTEXT_PAGE = 100


@dataclass(frozen=True)
class Served:
    """A document to answer with: 200 with the object, or 410 with a Tombstone."""

    doc: dict[str, Any]
    status: int = 200
    #: Where a browser should go instead (the post's page).
    html_url: str | None = None


async def _servable(rt: Runtime, comment_id: int) -> tuple[Comment | None, Post | None]:
    """The comment and its post when we may serve it; (None, None) when it is gone.

    Remote comments live at their own origin; private, pending and rejected ones are
    never served (NotFound, as if they did not exist).
    """
    comment = await comment_store.by_id(rt.db.read, comment_id)
    if comment is None:
        if await comment_store.is_tombstoned(rt.db.read, rt.urls.comment(comment_id)):
            return None, None
        raise NotFound("no such comment")
    if comment.origin is Origin.REMOTE:
        raise NotFound("no such comment")
    if comment.status is CommentStatus.DELETED:
        return None, None
    if not comment.is_public:
        raise NotFound("no such comment")
    post = await post_store.by_id(rt.db.read, comment.post_id)
    if post is None or post.is_deleted:
        return None, None
    if post.published_at > rt.now():
        raise NotFound("no such comment")
    return comment, post


def _tombstone(rt: Runtime, comment_id: int) -> Served:
    return Served(build.tombstone(rt.urls.comment(comment_id), "Note", rt.now()), status=410)


async def comment_object(rt: Runtime, comment_id: int) -> Served:
    """GET /comments/{id}: the Note with its replies collection, or a Tombstone."""
    comment, post = await _servable(rt, comment_id)
    if comment is None or post is None:
        return _tombstone(rt, comment_id)
    doc = await replies.note_document(rt, rt.db.read, comment)
    return Served(build.with_context(doc), html_url=f"{post.ap_id}#comment-{comment.id}")


async def comment_replies(rt: Runtime, comment_id: int, page: int | None) -> Served:
    comment, post = await _servable(rt, comment_id)
    if comment is None or post is None:
        return _tombstone(rt, comment_id)
    return Served(await _collection(rt, post, comment.id, rt.urls.comment_replies(comment.id),
                                    page))


async def post_replies(rt: Runtime, post: Post, page: int | None) -> dict[str, Any]:
    """The public comments answering the post itself (their own replies hang below them)."""
    return await _collection(rt, post, None, rt.urls.post_replies(post.slug), page)


async def _collection(rt: Runtime, post: Post, parent_id: int | None, collection_id: str,
                      page: int | None) -> dict[str, Any]:
    if page is None:
        doc = await replies.replies_collection(rt, rt.db.read, post_id=post.id,
                                               parent_id=parent_id, collection_id=collection_id)
        return build.with_context(doc)
    return await replies.replies_page(rt, rt.db.read, post_id=post.id, parent_id=parent_id,
                                      collection_id=collection_id, page=page)


class ContextCache(thread_cache.ThreadCache[list[str]]):
    """The item ids of posts' context collections, valid while the post's thread stamp
    holds (it moves with every change to what the thread shows)."""


@dataclass(frozen=True)
class Conversation:
    """A page (or the whole, `page` None) of a post's context collection, and its ETag."""

    doc: dict[str, Any]
    etag: str


async def _conversation_items(rt: Runtime, post: Post, cache: ContextCache | None
                              ) -> tuple[list[str], int]:
    found = await thread_store.thread_post(rt.db.read, post_id=post.id)
    stamp = found.stamp if found is not None else 0
    hit = cache.get(post.id) if cache is not None else None
    if hit is not None and hit.stamp == stamp:
        return hit.value, stamp
    items = [post.ap_id] + [i.ap_id or rt.urls.comment(i.id)
                            for i in await conversation_store.public_items(rt.db.read, post.id)]
    if cache is not None:
        cache.put(post.id, thread_cache.Entry(0, stamp, items, size=sum(map(len, items))))
    return items, stamp


async def post_context(rt: Runtime, post: Post, page: int | None,
                       cache: ContextCache | None = None) -> Conversation:
    """GET /posts/{slug}/context: FEP-f228's collection of posts for one conversation: the
    post, then every public reply and our answers, oldest first, owned by the blog actor.
    Private, pending, withheld and deleted comments are never listed."""
    items, stamp = await _conversation_items(rt, post, cache)
    collection_id = rt.urls.post_context(post.slug)
    number = page or 1
    chunk = items[(number - 1) * CONTEXT_PAGE:number * CONTEXT_PAGE]
    following = f"{collection_id}?page={number + 1}" if number * CONTEXT_PAGE < len(items) \
        else None
    if page is None:
        doc = outgoing.context_collection(collection_id, rt.urls.actor, len(items), chunk,
                                          following)
    else:
        doc = outgoing.replies_page(collection_id, number, chunk, following)
    return Conversation(doc, f'"{post.id:x}.{stamp:x}.{page or 0}"')
