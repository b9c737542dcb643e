"""Atom feeds of the public comments: one per post (made from its public thread, so they
show exactly what the thread shows) and one of the whole blog's latest comments. Held,
rejected, private and deleted comments never appear."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedcomments import __version__
from fedcomments.feeds import atom
from fedcomments.model import Post
from fedcomments.runtime import Runtime
from fedcomments.services import thread as thread_service
from fedcomments.services.thread_json import Authors, comment_fields
from fedcomments.store import posts as post_store
from fedcomments.store import threads as thread_store
from fedcomments.store.rows import ts
from fedcomments.urls import comment_on_blog

#: Comments a feed carries, newest first (feed readers keep what they saw).
FEED_SIZE = 50


@dataclass(frozen=True)
class AtomDocument:
    """A feed to send; `body` is None when the client's copy (If-None-Match) is current."""

    body: bytes | None
    etag: str


@functools.cache
def _code_key() -> str:
    """Names the code that shapes the feed's bytes, so an upgrade changes every ETag (read
    once per process)."""
    key = zlib.crc32(__version__.encode())
    for module in (atom.__file__, __file__):
        with contextlib.suppress(OSError):
            key = zlib.crc32(Path(module).read_bytes(), key)
    return f"{key:08x}"


def _blog_person(rt: Runtime) -> atom.Person:
    return atom.Person(rt.settings.actor.name, rt.urls.actor)


def _entry(rt: Runtime, node: dict[str, Any], post_title: str, permalink: str) -> atom.Entry:
    author = node["author"]
    name = author.get("name") or "Anonymous"
    published = node["published"] or ""
    return atom.Entry(
        id=node["ap_id"] or rt.urls.comment(node["id"]),
        title=f"{name} on “{post_title}”",
        link=comment_on_blog(permalink, node["id"]),
        author=atom.Person(name, author.get("url") or author.get("website")),
        published=published, updated=node["updated"] or published,
        content_html=node["content"] or "", summary=node["summary"],
        via=node["url"])


def _visible(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if not node["deleted"]:
            yield node
        stack.extend(node["replies"])


async def post_feed(rt: Runtime, post: Post, cache: thread_service.ThreadCache | None,
                    known: Callable[[str], bool] | None = None) -> AtomDocument:
    """The feed of one public post's comments; nothing is rendered when `known(etag)`
    says the client has it."""
    code = _code_key()

    def etag_of(thread_etag: str) -> str:
        return f'"{thread_etag.strip(chr(34))}.{code}"'

    unless = (lambda etag: known(etag_of(etag))) if known is not None else None
    view = await thread_service.get_thread(rt, str(post.id), cache, unless)
    if isinstance(view, thread_service.NotModified) or (
            known is not None and known(etag_of(view.etag))):
        # A thread served from memory comes back whole even when the client has it.
        return AtomDocument(None, etag_of(view.etag))

    def render(data: dict[str, Any]) -> bytes:
        nodes = sorted(_visible(data["comments"]), key=lambda n: (n["published"] or "", n["id"]),
                       reverse=True)[:FEED_SIZE]
        entries = [_entry(rt, n, post.title, post.permalink) for n in nodes]
        newest = max((e.updated for e in entries), default=None)
        return atom.atom_bytes(atom.Feed(
            id=rt.urls.post_comments_feed(post.slug),
            title=f"Comments on “{post.title}”",
            self_url=rt.urls.post_comments_feed(post.slug), alternate=post.permalink,
            updated=newest or (ts(post.updated_at or post.published_at) or ""),
            author=_blog_person(rt), entries=entries))

    return AtomDocument(view.rendered("atom", render), etag_of(view.etag))


async def blog_feed(rt: Runtime, known: Callable[[str], bool] | None = None) -> AtomDocument:
    """The feed of the blog's latest public comments, under every live post."""
    found = await thread_store.latest_public(rt.db.read, ts(rt.now()) or "", FEED_SIZE)
    authors = Authors(thread_service.owner_of(rt))
    entries = []
    for post, entry in found:
        node = {"id": entry.id, **comment_fields(entry, None, authors)}
        entries.append(_entry(rt, node, post.title, post.permalink))
    name = rt.settings.actor.name
    newest = max((e.updated for e in entries), default=None)
    if newest is None:
        latest = await post_store.list_published(rt.db.read, rt.now(), limit=1, offset=0)
        newest = ts(latest[0].published_at) if latest else "2000-01-01T00:00:00Z"
    body = atom.atom_bytes(atom.Feed(
        id=rt.urls.comments_feed, title=f"Comments on {name}",
        subtitle=f"The latest comments on {name}, from the fediverse and the blog",
        self_url=rt.urls.comments_feed, alternate=rt.settings.actor.url or rt.urls.base_url,
        updated=newest or "",
        author=_blog_person(rt), entries=entries))
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    if known is not None and known(etag):
        return AtomDocument(None, etag)
    return AtomDocument(body, etag)
