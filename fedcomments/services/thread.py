"""The public thread of a post: a pure tree builder, its JSON shape, and a cached reader.

`thread_tree` is pure. `get_thread` reads one post, one query of comments and one of
reactions, and keeps the serialised result until the database changes (SQLite's
data_version moves on every commit by another connection: our writer, or the CLI).
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from fedcomments.errors import Gone, NotFound
from fedcomments.model import Comment
from fedcomments.runtime import Runtime
from fedcomments.services.thread_cache import Entry, ThreadCache
from fedcomments.store import comments as comment_store
from fedcomments.store import threads as thread_store
from fedcomments.store.comments import ReactionRow
from fedcomments.store.rows import dumps, ts
from fedcomments.store.threads import ThreadActor, ThreadEntry, ThreadPost

#: People shown in a reaction facepile.
FACEPILE = 8
#: Threads with this many comments are rendered in a worker thread.
BIG_THREAD = 1000
# An absolute http(s) URL with a host, no credentials, and none of the characters a URL may
# not contain (spaces, controls, quotes, angle brackets …).
_HTTP_URL = re.compile(r'https?://[^\s/?#@\\"<>^`{|}\x00-\x1f\x7f]+'
                       r'(?:[/?#][^\s"<>\\^`{|}\x00-\x1f\x7f]*)?', re.IGNORECASE)


def safe_url(url: str | None) -> str | None:
    """Only http(s) URLs reach an href or src: never javascript:, data: or relative ones."""
    if not url or len(url) > 2048 or _HTTP_URL.fullmatch(url) is None:
        return None
    return url


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
            name = row.actor_name or urlsplit(row.actor_ap_id).hostname or row.actor_ap_id
            self.people.append(Person(name, safe_url(row.actor_icon),
                                      safe_url(row.actor_url) or safe_url(row.actor_ap_id)))


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
        if url is None or (not self.http_images and url[:8].lower() != "https://"):
            return None
        return url


def author_name(entry: ThreadEntry, owner: Owner) -> str:
    if entry.origin == "owner":
        return owner.name
    if entry.actor is not None:
        return entry.actor.display_name
    return entry.author_name or "Anonymous"


# --- JSON shape -------------------------------------------------------------------------

_NO_REACTIONS: dict[str, Any] = {"likes": 0, "boosts": 0, "people": []}


def reactions_json(r: Reactions | None, owner: Owner) -> dict[str, Any]:
    if r is None:
        return _NO_REACTIONS
    return {"likes": r.likes, "boosts": r.boosts,
            "people": [{"name": p.name, "avatar": owner.image(p.avatar), "url": p.url}
                       for p in r.people]}


def _fediverse_author(a: ThreadActor, owner: Owner) -> dict[str, Any]:
    return {"kind": "fediverse", "name": a.display_name, "handle": a.handle,
            "url": safe_url(a.url) or safe_url(a.ap_id), "avatar": owner.image(a.icon),
            "website": None}


class Authors:
    """Author objects of one rendering: each fediverse actor's is built once."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self._actors: dict[int, dict[str, Any]] = {}
        self._blog = {"kind": "owner", "name": owner.name, "handle": owner.handle,
                      "url": owner.url, "avatar": owner.image(owner.avatar), "website": None}

    def of(self, c: ThreadEntry) -> dict[str, Any]:
        if c.origin == "owner":
            return self._blog
        if c.actor is not None:
            found = self._actors.get(c.actor.id)
            if found is None:
                found = self._actors[c.actor.id] = _fediverse_author(c.actor, self.owner)
            return found
        return {"kind": "reader", "name": c.author_name or "Anonymous", "handle": None,
                "url": None, "avatar": None, "website": safe_url(c.author_website)}


def _seconds(stamp: str | None) -> str | None:
    """A stored timestamp (microseconds) to the second, as HTML's <time> accepts."""
    return stamp[:19] + "Z" if stamp else None


def _attachments(raw: str) -> list[dict[str, Any]]:
    if raw in ("", "[]"):
        return []
    return [{"url": u, "media_type": a.get("media_type"), "name": a.get("name")}
            for a in json.loads(raw) if (u := safe_url(a.get("url")))]


def comment_json(c: ThreadEntry, depth: int, reply_to: dict[str, Any] | None,
                 reactions: Reactions | None, authors: Authors) -> dict[str, Any]:
    """One comment as the API and the page show it; its replies go into "replies"."""
    if c.status == "deleted":
        return {"id": c.id, "parent_id": c.parent_id, "depth": depth, "reply_to": reply_to,
                "deleted": True, "status": "deleted", "replies": []}
    return {
        "id": c.id, "parent_id": c.parent_id, "depth": depth, "reply_to": reply_to,
        "deleted": False, "status": c.status, "origin": c.origin, "ap_id": c.ap_id,
        "url": None if c.origin == "local" else safe_url(c.url) or safe_url(c.ap_id),
        "author": authors.of(c), "published": _seconds(c.published),
        "updated": _seconds(c.updated), "edited": c.updated is not None,
        "summary": c.summary or None, "sensitive": c.sensitive or bool(c.summary),
        "language": c.language, "content": c.content,
        "attachments": _attachments(c.attachments),
        "reactions": reactions_json(reactions, authors.owner), "replies": [],
    }


# --- the tree ---------------------------------------------------------------------------


def thread_tree(entries: Sequence[ThreadEntry], reactions: Iterable[ReactionRow], *,
                max_depth: int = 4, owner: Owner | None = None) -> list[dict[str, Any]]:
    """Nest comments (given oldest first) under their parents, as the API's JSON objects.

    Replies deeper than `max_depth` are listed flat after their parent, each marked with
    the author it answers ("reply_to"). A deleted placeholder stays only while a visible
    reply hangs below it; a reply whose parent is not shown (pending, private) moves to
    the top.
    """
    authors = Authors(owner or Owner("Blog", "", "", None))
    by_id = {c.id: c for c in entries}
    children: dict[int | None, list[ThreadEntry]] = defaultdict(list)
    for c in entries:
        children[c.parent_id if c.parent_id in by_id else None].append(c)
    # Pre-order walk without recursion: a reply chain may be thousands deep.
    order: list[ThreadEntry] = []
    stack = list(reversed(children[None]))
    while stack:
        c = stack.pop()
        order.append(c)
        stack.extend(reversed(children.get(c.id, ())))
    keep: dict[int, bool] = {}
    for c in reversed(order):  # every descendant is decided before its ancestor
        keep[c.id] = c.status != "deleted" or any(keep[k.id] for k in children.get(c.id, ()))
    grouped: dict[int | None, Reactions] = defaultdict(Reactions)
    for row in reactions:
        grouped[row.comment_id].add(row)
    roots: list[dict[str, Any]] = []
    todo: list[tuple[ThreadEntry, int, list[dict[str, Any]], dict[str, Any] | None]] = [
        (c, 0, roots, None) for c in reversed(children[None]) if keep[c.id]]
    while todo:
        c, depth, container, reply_to = todo.pop()
        node = comment_json(c, depth, reply_to, grouped.get(c.id), authors)
        container.append(node)
        kids = [k for k in reversed(children.get(c.id, ())) if keep[k.id]]
        if depth < max_depth:
            todo.extend((k, depth + 1, node["replies"], None) for k in kids)
        else:
            name = ("a deleted comment" if c.status == "deleted"
                    else author_name(c, authors.owner))
            to = {"id": c.id, "name": name}
            todo.extend((k, depth, container, to) for k in kids)
    return roots


def count_visible(nodes: Iterable[dict[str, Any]]) -> int:
    total = 0
    stack = list(nodes)
    while stack:
        node = stack.pop()
        total += not node["deleted"]
        stack.extend(node["replies"])
    return total


def entry_of(comment: Comment) -> ThreadEntry:
    """A stored comment as a thread entry (for one comment shown outside its thread)."""
    a = comment.actor
    actor = ThreadActor(a.id, a.ap_id, a.username, a.domain, a.name, a.url, a.icon) if a else None
    return ThreadEntry(
        comment.id, comment.parent_id, comment.origin.value, comment.status.value,
        comment.content, ts(comment.published_at) or "", ts(comment.updated_at),
        comment.summary, comment.sensitive, comment.language, comment.url, comment.ap_id,
        dumps([x.__dict__ for x in comment.attachments]), comment.author_name,
        comment.author_website, actor)


def single_comment_json(rt: Runtime, comment: Comment) -> dict[str, Any]:
    """One comment outside its thread (what its author sees while it is pending)."""
    return comment_json(entry_of(comment), 0, None, None, Authors(owner_of(rt)))


def post_json(post: ThreadPost) -> dict[str, Any]:
    return {"id": post.id, "url": post.permalink, "ap_id": post.ap_id, "title": post.title,
            "summary": post.summary, "published": _seconds(post.published)}


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ThreadView:
    """A thread ready to send: its JSON data, the exact bytes and their ETag."""

    post: ThreadPost
    data: dict[str, Any]
    body: bytes
    etag: str
    #: Other renderings of the same data (the page's HTML), made once on first use.
    renderings: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def rendered(self, kind: str, make: Callable[[dict[str, Any]], Any]) -> Any:
        if kind not in self.renderings:
            self.renderings[kind] = make(self.data)
        return self.renderings[kind]


def owner_of(rt: Runtime) -> Owner:
    a = rt.settings.actor
    return Owner(a.name, rt.urls.handle, rt.urls.actor, safe_url(a.icon),
                 http_images=rt.settings.federation.allow_private_addresses)


def _permalinks(ref: str) -> tuple[str, str]:
    """The permalink as given (without a fragment), and with/without its trailing slash."""
    bare = ref.split("#", 1)[0]
    return bare, bare[:-1] if bare.endswith("/") else bare + "/"


async def find_thread_post(rt: Runtime, ref: str) -> ThreadPost:
    """A public post by id, permalink (trailing slash or not) or ActivityPub id, in one
    query in the common case."""
    ref = ref.strip()
    conn = rt.db.read
    post: ThreadPost | None = None
    if ref.isdigit() and len(ref) < 19:
        post = await thread_store.thread_post(conn, post_id=int(ref))
    elif ref.startswith(("http://", "https://")):
        spellings = _permalinks(ref)
        post = await thread_store.thread_post(conn, permalinks=spellings)
        if post is None and rt.urls.is_local(spellings[0]):
            post = await thread_store.thread_post(conn, ap_id=spellings[0])
    if post is None or post.published > (ts(rt.now()) or ""):
        raise NotFound("no such post")
    if post.deleted:
        raise Gone("post deleted")
    return post


def render(post: ThreadPost, entries: list[ThreadEntry], reactions: list[ReactionRow],
           owner: Owner, max_depth: int) -> ThreadView:
    """The pure part of a rendering: tree, JSON, bytes and ETag."""
    roots = thread_tree(entries, reactions, max_depth=max_depth, owner=owner)
    post_reactions = Reactions()
    for row in reactions:
        if row.comment_id is None:
            post_reactions.add(row)
    data = {
        "post": post_json(post),
        "count": count_visible(roots),
        "reactions": reactions_json(post_reactions, owner),
        "comments": roots,
    }
    body = orjson.dumps(data)
    # The stamp names the state of the thread; the checksum covers what else shapes the
    # bytes (settings, this code's version) so that a restart never reuses a stale tag.
    etag = f'"{post.id:x}.{post.stamp:x}.{zlib.crc32(body):08x}"'
    return ThreadView(post, data, body, etag)


async def build_view(rt: Runtime, post: ThreadPost) -> ThreadView:
    """One query for the comments, one for the reactions, then pure code: in a worker
    thread for big threads, so the event loop keeps serving meanwhile."""
    entries = await thread_store.public_thread(rt.db.read, post.id)
    reactions = await comment_store.reactions_for_post(rt.db.read, post.id)
    args = (post, entries, reactions, owner_of(rt), rt.settings.comments.max_depth)
    if len(entries) < BIG_THREAD:
        return render(*args)
    return await asyncio.to_thread(render, *args)


async def get_thread(rt: Runtime, ref: str, cache: ThreadCache[ThreadView] | None = None
                     ) -> ThreadView:
    """The public thread of a post found by `ref`; served from `cache` while nothing it
    shows changed."""
    if cache is None:
        return await build_view(rt, await find_thread_post(rt, ref))
    version = await cache.version.read(rt.db)
    post_id = cache.post_of(ref)
    entry = cache.get(post_id) if post_id is not None else None
    if entry is not None and entry.version == version:
        return entry.value  # nothing at all was committed since it was rendered
    # Something changed somewhere: look the post up again (its stamp comes in the same row)
    # and keep the rendering if its thread did not change.
    post = await find_thread_post(rt, ref)
    cache.remember(ref, post.id)
    entry = cache.get(post.id)
    if entry is not None and entry.stamp == post.stamp:
        entry.version = version
        return entry.value
    # The comments are read after the stamp: what is filed is never older than its stamp.
    stale = entry.value if entry is not None else None
    view = await cache.build_once(post.id, post.stamp, lambda: build_view(rt, post), stale)
    if view is not stale:
        # The body, and roughly what the data behind it weighs.
        cache.put(post.id, Entry(version, post.stamp, view, size=4 * len(view.body)))
    return view
