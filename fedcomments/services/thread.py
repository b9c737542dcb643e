"""The public thread of a post: a pure tree builder, its JSON shape, and a cached reader.

`thread_tree` is pure. `get_thread` reads one post, one query of comments and one of
reactions, and keeps the serialised result until the database changes (SQLite's
data_version moves on every commit by another connection: our writer, or the CLI).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fedcomments.errors import Gone, NotFound
from fedcomments.model import Comment, CommentStatus, Origin, Post
from fedcomments.runtime import Runtime
from fedcomments.store import comments as comment_store
from fedcomments.store import posts as post_store
from fedcomments.store.comments import ReactionRow
from fedcomments.store.db import Database

#: People shown in a reaction facepile.
FACEPILE = 8


@dataclass(frozen=True)
class Person:
    name: str
    avatar: str | None
    url: str | None


@dataclass
class Reactions:
    likes: int = 0
    boosts: int = 0
    people: list[Person] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, row: ReactionRow) -> None:
        if row.type == "like":
            self.likes += 1
        else:
            self.boosts += 1
        if row.actor_ap_id not in self._seen and len(self.people) < FACEPILE:
            self._seen.add(row.actor_ap_id)
            self.people.append(Person(row.actor_name or _short(row.actor_ap_id),
                                      safe_url(row.actor_icon),
                                      safe_url(row.actor_url) or safe_url(row.actor_ap_id)))


@dataclass
class ThreadNode:
    comment: Comment
    #: Indentation level, 0 for top-level comments, never above the thread's max depth.
    depth: int
    replies: list[ThreadNode] = field(default_factory=list)
    #: Set when the comment is shown flat below its parent: (parent id, parent author).
    reply_to: tuple[int, str] | None = None
    reactions: Reactions = field(default_factory=Reactions)


@dataclass(frozen=True)
class Owner:
    """How the blog actor's own answers are shown, and which images the pages may load."""

    name: str
    handle: str
    url: str
    avatar: str | None
    #: Pages allow https images only; local development (private addresses allowed) meets
    #: http:// avatars on loopback instances, and its page policy allows them too.
    http_images: bool = False

    def image(self, url: str | None) -> str | None:
        url = safe_url(url)
        if url is None or (not self.http_images and not url.lower().startswith("https://")):
            return None
        return url


def safe_url(url: str | None) -> str | None:
    """Only http(s) URLs reach an href or src: never javascript:, data: or relative ones."""
    if not url or len(url) > 2048:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _short(ap_id: str) -> str:
    return urlsplit(ap_id).hostname or ap_id


def author_name(comment: Comment, owner: Owner) -> str:
    if comment.origin is Origin.OWNER:
        return owner.name
    if comment.actor is not None:
        return comment.actor.display_name
    return comment.author_name or "Anonymous"


def thread_tree(comments: Sequence[Comment], reactions: Iterable[ReactionRow], *,
                max_depth: int = 4, owner: Owner | None = None) -> list[ThreadNode]:
    """Nest comments (given oldest first) under their parents.

    Replies deeper than `max_depth` are listed flat after their parent, each marked with
    the author it answers. A deleted placeholder stays only while a visible reply hangs
    below it; a reply whose parent is not shown (pending, private) moves to the top.
    """
    owner = owner or Owner("Blog", "", "", None)
    by_id = {c.id: c for c in comments}
    children: dict[int | None, list[Comment]] = defaultdict(list)
    for c in comments:
        children[c.parent_id if c.parent_id in by_id else None].append(c)
    # Pre-order walk without recursion: a reply chain may be thousands deep.
    order: list[Comment] = []
    stack = list(reversed(children[None]))
    while stack:
        c = stack.pop()
        order.append(c)
        stack.extend(reversed(children[c.id]))
    keep: dict[int, bool] = {}
    for c in reversed(order):  # every descendant is decided before its ancestor
        keep[c.id] = c.status is not CommentStatus.DELETED or any(
            keep[k.id] for k in children[c.id])
    grouped: dict[int | None, Reactions] = defaultdict(Reactions)
    for row in reactions:
        grouped[row.comment_id].add(row)
    roots: list[ThreadNode] = []
    todo: list[tuple[Comment, int, list[ThreadNode], tuple[int, str] | None]] = [
        (c, 0, roots, None) for c in reversed(children[None]) if keep[c.id]]
    while todo:
        c, depth, container, reply_to = todo.pop()
        node = ThreadNode(c, depth, reply_to=reply_to,
                          reactions=grouped.get(c.id) or Reactions())
        container.append(node)
        kids = [k for k in reversed(children[c.id]) if keep[k.id]]
        if depth < max_depth:
            todo.extend((k, depth + 1, node.replies, None) for k in kids)
        else:
            name = "a deleted comment" if c.status is CommentStatus.DELETED else author_name(
                c, owner)
            todo.extend((k, depth, container, (c.id, name)) for k in kids)
    return roots


def count_visible(nodes: Iterable[ThreadNode]) -> int:
    total = 0
    stack = list(nodes)
    while stack:
        node = stack.pop()
        total += node.comment.status is not CommentStatus.DELETED
        stack.extend(node.replies)
    return total


# --- JSON shape -------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def reactions_json(r: Reactions, owner: Owner) -> dict[str, Any]:
    return {"likes": r.likes, "boosts": r.boosts,
            "people": [{"name": p.name, "avatar": owner.image(p.avatar), "url": p.url}
                       for p in r.people]}


def author_json(c: Comment, owner: Owner) -> dict[str, Any]:
    if c.origin is Origin.OWNER:
        return {"kind": "owner", "name": owner.name, "handle": owner.handle, "url": owner.url,
                "avatar": owner.image(owner.avatar), "website": None}
    if c.actor is not None:
        a = c.actor
        return {"kind": "fediverse", "name": a.display_name, "handle": a.handle,
                "url": safe_url(a.url) or safe_url(a.ap_id), "avatar": owner.image(a.icon),
                "website": None}
    return {"kind": "reader", "name": c.author_name or "Anonymous", "handle": None, "url": None,
            "avatar": None, "website": safe_url(c.author_website)}


def comment_json(node: ThreadNode, owner: Owner) -> dict[str, Any]:
    """One comment and its replies; a pure function of the node (the cache relies on it)."""
    c = node.comment
    base: dict[str, Any] = {
        "id": c.id, "parent_id": c.parent_id, "depth": node.depth,
        "reply_to": ({"id": node.reply_to[0], "name": node.reply_to[1]}
                     if node.reply_to else None),
    }
    if c.status is CommentStatus.DELETED:
        base.update(deleted=True, status="deleted")
    else:
        original = None if c.origin is Origin.LOCAL else safe_url(c.url) or safe_url(c.ap_id)
        base.update(
            deleted=False, status=c.status.value, origin=c.origin.value, ap_id=c.ap_id,
            url=original,
            author=author_json(c, owner), published=_iso(c.published_at),
            updated=_iso(c.updated_at), edited=c.updated_at is not None,
            summary=c.summary or None, sensitive=c.sensitive or bool(c.summary),
            language=c.language, content=c.content,
            attachments=[{"url": u, "media_type": a.media_type, "name": a.name}
                         for a in c.attachments if (u := safe_url(a.url))],
            reactions=reactions_json(node.reactions, owner),
        )
    base["replies"] = [comment_json(r, owner) for r in node.replies]
    return base


def single_comment_json(rt: Runtime, comment: Comment) -> dict[str, Any]:
    """One comment outside its thread (what its author sees while it is pending)."""
    return comment_json(ThreadNode(comment, 0), owner_of(rt))


def post_json(post: Post) -> dict[str, Any]:
    return {"id": post.id, "url": post.permalink, "ap_id": post.ap_id, "title": post.title,
            "summary": post.summary, "published": _iso(post.published_at)}


# --- reading, with a cache --------------------------------------------------------------


@dataclass(frozen=True)
class ThreadView:
    """A thread ready to send: its JSON data, the exact bytes and their ETag."""

    post: Post
    data: dict[str, Any]
    body: bytes
    etag: str


class DataVersion:
    """`PRAGMA data_version`, read at most once at a time.

    A caller joins a read only if it started after the caller arrived; otherwise it waits
    for the next one. So a commit that finished before a request began is always seen,
    while a burst of concurrent requests shares one or two queries.
    """

    def __init__(self) -> None:
        self._started = 0
        self._generation = 0
        self._task: asyncio.Future[int] | None = None

    async def read(self, db: Database) -> int:
        arrived = self._started
        while True:
            task = self._task
            if task is not None and self._generation > arrived:
                return await asyncio.shield(task)
            if task is None or task.done():
                self._started += 1
                self._generation = self._started
                self._task = asyncio.ensure_future(db.data_version())
                return await asyncio.shield(self._task)
            await asyncio.wait([task])


class ThreadCache:
    """Serialised threads by request key, valid while the database is unchanged."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self.version = DataVersion()
        self._entries: OrderedDict[str, tuple[int, ThreadView]] = OrderedDict()

    def get(self, key: str, version: int) -> ThreadView | None:
        hit = self._entries.get(key)
        if hit is None or hit[0] != version:
            return None
        self._entries.move_to_end(key)
        return hit[1]

    def put(self, key: str, version: int, view: ThreadView) -> None:
        self._entries[key] = (version, view)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


def owner_of(rt: Runtime) -> Owner:
    a = rt.settings.actor
    return Owner(a.name, rt.urls.handle, rt.urls.actor, safe_url(a.icon),
                 http_images=rt.settings.federation.allow_private_addresses)


async def find_public_post(rt: Runtime, ref: str) -> Post:
    """A post by id, permalink (with or without its trailing slash) or ActivityPub id."""
    ref = ref.strip()
    conn = rt.db.read
    post: Post | None = None
    if ref.isdigit() and len(ref) < 19:
        post = await post_store.by_id(conn, int(ref))
    elif ref.startswith(("http://", "https://")):
        bare = ref.split("#", 1)[0]
        other = bare[:-1] if bare.endswith("/") else bare + "/"
        for candidate in (bare, other):
            post = await post_store.by_permalink(conn, candidate)
            if post is not None:
                break
        if post is None and rt.urls.is_local(bare):
            post = await post_store.by_ap_id(conn, bare)
    if post is None or post.published_at > rt.now():
        raise NotFound("no such post")
    if post.is_deleted:
        raise Gone("post deleted")
    return post


async def build_view(rt: Runtime, post: Post) -> ThreadView:
    """One query for the comments, one for the reactions, then pure code."""
    comments = await comment_store.thread_rows(rt.db.read, post.id)
    reactions = await comment_store.reactions_for_post(rt.db.read, post.id)
    owner = owner_of(rt)
    roots = thread_tree(comments, reactions, max_depth=rt.settings.comments.max_depth,
                        owner=owner)
    post_reactions = Reactions()
    for row in reactions:
        if row.comment_id is None:
            post_reactions.add(row)
    data = {
        "post": post_json(post),
        "count": count_visible(roots),
        "reactions": reactions_json(post_reactions, owner),
        "comments": [comment_json(n, owner) for n in roots],
    }
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return ThreadView(post, data, body, etag)


async def get_thread(rt: Runtime, ref: str, cache: ThreadCache | None = None) -> ThreadView:
    """The public thread of a post found by `ref`; served from `cache` while nothing changed."""
    if cache is None:
        return await build_view(rt, await find_public_post(rt, ref))
    version = await cache.version.read(rt.db)
    view = cache.get(ref, version)
    if view is not None:
        return view
    view = await build_view(rt, await find_public_post(rt, ref))
    cache.put(ref, version, view)
    return view
