"""The thread's JSON, pure: each comment's shape, the reference tree builder, and the
assembly of a thread from stored per-comment fragments (bytes) that gives the same JSON.

A fragment is everything a comment shows that does not depend on where it sits in the
tree: `{"id", "parent_id", "depth", "reply_to", <fragment>, "replies"}` is one comment.
Nothing reader-specific or time-relative goes into a fragment.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from fedcomments.model import Comment
from fedcomments.names import handle
from fedcomments.services.thread_media import Pictures
from fedcomments.store.comments import ReactionRow
from fedcomments.store.rows import dumps, ts
from fedcomments.store.threads import ThreadActor, ThreadEntry, ThreadPost, ThreadRow

#: People shown in a reaction facepile.
FACEPILE = 8
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
        self.add_person(row)

    def add_person(self, row: ReactionRow) -> None:
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


def reply_to_name(entry: ThreadEntry, owner: Owner) -> str:
    """How a reply flattened below `entry` names the comment it answers."""
    return "a deleted comment" if entry.status == "deleted" else author_name(entry, owner)


_NO_REACTIONS: dict[str, Any] = {"likes": 0, "boosts": 0, "people": []}


def reactions_json(r: Reactions | None, owner: Owner,
                   pictures: Pictures | None = None) -> dict[str, Any]:
    if r is None:
        return _NO_REACTIONS
    pictures = pictures or Pictures(owner.image)
    people = []
    for p in r.people:
        one, two = pictures.avatar(p.avatar, "face")
        people.append({"name": p.name, "avatar": one, "url": p.url, "avatar_2x": two})
    return {"likes": r.likes, "boosts": r.boosts, "people": people}


def _fediverse_author(a: ThreadActor, pictures: Pictures) -> dict[str, Any]:
    one, two = pictures.avatar(a.icon)
    # A handle only for a WebFinger-valid name: `admin@other.example` from a server's
    # preferredUsername is shown as a name, never as @admin@other.example@server.
    return {"kind": "fediverse", "name": a.display_name, "handle": handle(a.username, a.domain),
            "url": safe_url(a.url) or safe_url(a.ap_id), "avatar": one,
            "website": None, "avatar_2x": two, "emojis": pictures.actor_emojis(a.id)}


class Authors:
    """Author objects of one rendering: each fediverse actor's is built once. `pictures`
    decides which image URLs are shown (default: remote ones, hot-linked)."""

    def __init__(self, owner: Owner, pictures: Pictures | None = None) -> None:
        self.owner = owner
        self.pictures = pictures or Pictures(owner.image)
        self._actors: dict[int, dict[str, Any]] = {}
        one, two = self.pictures.avatar(owner.avatar)
        self._blog: dict[str, Any] = {"kind": "owner", "name": owner.name, "handle": owner.handle,
                      "url": owner.url, "avatar": one, "website": None, "avatar_2x": two,
                      "emojis": []}

    def of(self, c: ThreadEntry) -> dict[str, Any]:
        if c.origin == "owner":
            return self._blog
        if c.actor is not None:
            found = self._actors.get(c.actor.id)
            if found is None:
                found = self._actors[c.actor.id] = _fediverse_author(c.actor, self.pictures)
            return found
        return {"kind": "reader", "name": c.author_name or "Anonymous", "handle": None,
                "url": None, "avatar": None, "website": safe_url(c.author_website),
                "avatar_2x": None, "emojis": []}


def _seconds(stamp: str | None) -> str | None:
    """A stored timestamp (microseconds) to the second, as HTML's <time> accepts."""
    return stamp[:19] + "Z" if stamp else None


def _attachments(raw: str, cid: int, pictures: Pictures) -> list[dict[str, Any]]:
    if raw in ("", "[]"):
        return []
    return [{"url": u, "media_type": a.get("media_type"), "name": a.get("name"),
             "thumbnail": pictures.thumbnail(cid, u)}
            for a in json.loads(raw) if (u := safe_url(a.get("url")))]


_DELETED: dict[str, Any] = {"deleted": True, "status": "deleted"}


def comment_fields(c: ThreadEntry, reactions: Reactions | None,
                   authors: Authors) -> dict[str, Any]:
    """What a comment shows wherever it sits in the tree (its fragment, as a dict)."""
    if c.status == "deleted":
        return _DELETED
    return {
        "deleted": False, "status": c.status, "origin": c.origin, "ap_id": c.ap_id,
        # FEP-5feb: the author said `indexable: false`; pages mark it data-nosnippet.
        "nosnippet": c.actor is not None and c.actor.indexable is False,
        "url": None if c.origin == "local" else safe_url(c.url) or safe_url(c.ap_id),
        "author": authors.of(c), "published": _seconds(c.published),
        "updated": _seconds(c.updated), "edited": c.updated is not None,
        "summary": c.summary or None, "sensitive": c.sensitive or bool(c.summary),
        "language": c.language, "content": c.content,
        "attachments": _attachments(c.attachments, c.id, authors.pictures),
        "reactions": reactions_json(reactions, authors.owner, authors.pictures),
        "emojis": authors.pictures.comment_emojis(c.id),
    }


def comment_json(c: ThreadEntry, depth: int, reply_to: dict[str, Any] | None,
                 reactions: Reactions | None, authors: Authors) -> dict[str, Any]:
    """One comment as the API and the page show it; its replies go into "replies"."""
    return {"id": c.id, "parent_id": c.parent_id, "depth": depth, "reply_to": reply_to,
            **comment_fields(c, reactions, authors), "replies": []}


def fragment(c: ThreadEntry, reactions: Reactions | None, authors: Authors) -> bytes:
    """The stored bytes of a comment: its fields as JSON members, without the braces."""
    return orjson.dumps(comment_fields(c, reactions, authors))[1:-1]


def group_reactions(rows: Iterable[ReactionRow]) -> dict[int | None, Reactions]:
    grouped: dict[int | None, Reactions] = defaultdict(Reactions)
    for row in rows:
        grouped[row.comment_id].add(row)
    return grouped


# --- the reference tree -----------------------------------------------------------------


def thread_tree(entries: Sequence[ThreadEntry], reactions: Iterable[ReactionRow], *,
                max_depth: int = 4, owner: Owner | None = None,
                pictures: Pictures | None = None) -> list[dict[str, Any]]:
    """Nest comments (given oldest first) under their parents, as the API's JSON objects.

    Replies deeper than `max_depth` are listed flat after their parent, each marked with
    the author it answers ("reply_to"). A deleted placeholder stays only while a visible
    reply hangs below it; a reply whose parent is not shown (pending, private) moves to
    the top. `assemble` builds the same from fragments; this is its reference.
    """
    authors = Authors(owner or Owner("Blog", "", "", None), pictures)
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
    grouped = group_reactions(reactions)
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
            to = {"id": c.id, "name": reply_to_name(c, authors.owner)}
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
    actor = ThreadActor(a.id, a.ap_id, a.username, a.domain, a.name, a.url, a.icon,
                        a.indexable) if a else None
    return ThreadEntry(
        comment.id, comment.parent_id, comment.origin.value, comment.status.value,
        comment.content, ts(comment.published_at) or "", ts(comment.updated_at),
        comment.summary, comment.sensitive, comment.language, comment.url, comment.ap_id,
        dumps([x.__dict__ for x in comment.attachments]), comment.author_name,
        comment.author_website, actor)


def post_json(post: ThreadPost) -> dict[str, Any]:
    return {"id": post.id, "url": post.permalink, "ap_id": post.ap_id, "title": post.title,
            "summary": post.summary, "published": _seconds(post.published),
            # The Atom feed of the thread (web/feeds.py serves it under the post's id).
            "comments_feed": f"{post.ap_id}/comments.atom"}


def thread_json(post: ThreadPost, entries: Sequence[ThreadEntry],
                reactions: Sequence[ReactionRow], owner: Owner, max_depth: int,
                pictures: Pictures | None = None) -> dict[str, Any]:
    """The whole answer of the thread API, from scratch (the reference for `assemble`)."""
    roots = thread_tree(entries, reactions, max_depth=max_depth, owner=owner,
                        pictures=pictures)
    post_reactions = Reactions()
    for row in reactions:
        if row.comment_id is None:
            post_reactions.add(row)
    return {"post": post_json(post), "count": count_visible(roots),
            "reactions": reactions_json(post_reactions, owner, pictures), "comments": roots}


# --- assembly from fragments ------------------------------------------------------------

_NULL = b"null"
# A comment's start: a separator (b"" or b","), id, parent, depth and reply_to; its fragment
# and the start of its replies follow as pieces of their own (the fragments, the bulk of
# the bytes, are copied once: by the final join).
_HEAD = b'%b{"id":%d,"parent_id":%d,"depth":%d,"reply_to":%b,'
_HEAD_ROOT = b'%b{"id":%d,"parent_id":null,"depth":%d,"reply_to":%b,'
_NO_REPLIES = b',"replies":[]}'
_REPLIES = b',"replies":['
_DELETED_NAME = "a deleted comment"


def _reply_to(cid: int, deleted: int, body: bytes) -> bytes:
    """`reply_to` of replies flattened below a comment: its id and its author's name, cut
    from its fragment. Every author object starts with "kind", "name", "handle", and a
    quote inside a JSON string is always escaped, so `","handle":` ends the name."""
    if deleted:
        return b'{"id":%d,"name":"%b"}' % (cid, _DELETED_NAME.encode())
    start = body.index(b'"name":', body.index(b'"author":{"kind":"')) + 7
    return b'{"id":%d,"name":%b}' % (cid, body[start:body.index(b',"handle":', start)])


def assemble(post: ThreadPost, rows: Sequence[ThreadRow], reactions: Reactions,
             owner: Owner, max_depth: int, pictures: Pictures | None = None) -> bytes:
    """The thread API's bytes from rows (oldest first) that each carry their fragment:
    the same JSON as `thread_json`, built by joining bytes (no object per comment)."""
    present = {r[0] for r in rows}
    children: dict[int | None, list[ThreadRow]] = {}
    roots: list[ThreadRow] = []
    deleted = False
    for r in rows:
        parent = r[1]
        if parent is None or parent not in present:
            roots.append(r)
        else:
            kids = children.get(parent)
            if kids is None:
                children[parent] = [r]
            else:
                kids.append(r)
        deleted = deleted or bool(r[2])
    if deleted:
        children[None] = roots
        _prune_deleted(children)
        roots = children.pop(None, [])
    out = [b'{"post":', orjson.dumps(post_json(post)), b',"count":', b"", b',"reactions":',
           orjson.dumps(reactions_json(reactions, owner, pictures)), b',"comments":[']
    append = out.append
    get = children.get
    count = 0
    sep = b""
    # Without recursion (a reply chain may be thousands deep): one frame per open list of
    # siblings; `closing` ends the comment whose replies they are (None: flattened replies
    # continue the list their parent is in).
    frames: list[tuple[Iterator[ThreadRow], int, bytes, bytes | None]] = []
    it: Iterator[ThreadRow] = iter(roots)
    depth, reply_to, closing = 0, _NULL, None
    while True:
        for cid, parent, dead, body in it:
            assert body is not None  # the caller rendered every missing fragment first
            if not dead:
                count += 1
            if parent is None:
                append(_HEAD_ROOT % (sep, cid, depth, reply_to))
            else:
                append(_HEAD % (sep, cid, parent, depth, reply_to))
            append(body)
            kids = get(cid)
            if kids is None:
                append(_NO_REPLIES)
                sep = b","
            elif depth < max_depth:
                append(_REPLIES)
                frames.append((it, depth, reply_to, closing))
                it, depth, reply_to, closing = iter(kids), depth + 1, _NULL, b"]}"
                sep = b""
                break
            else:
                append(_NO_REPLIES)
                sep = b","
                frames.append((it, depth, reply_to, closing))
                it, reply_to, closing = iter(kids), _reply_to(cid, dead, body), None
                break
        else:
            if closing is not None:
                append(closing)
                sep = b","
            if not frames:
                break
            it, depth, reply_to, closing = frames.pop()
    append(b"]}")
    out[3] = b"%d" % count
    return b"".join(out)


def _prune_deleted(children: dict[int | None, list[ThreadRow]]) -> None:
    """Drop deleted comments with no visible reply below them (a placeholder is shown only
    to keep replies threaded)."""
    order: list[ThreadRow] = []
    stack = list(children.get(None, ()))
    while stack:
        r = stack.pop()
        order.append(r)
        stack.extend(children.get(r[0], ()))
    keep: set[int] = set()
    for r in reversed(order):  # every descendant is decided before its ancestor
        kids = children.get(r[0])
        if kids is not None:
            kids[:] = [k for k in kids if k[0] in keep]
            if not kids:
                del children[r[0]]
        if not r[2] or r[0] in children:
            keep.add(r[0])
    roots = children.get(None)
    if roots is not None:
        roots[:] = [r for r in roots if r[0] in keep]
