"""Reading a post's public thread: assembled from each comment's stored fragment, with the
missing fragments rendered and stored back, and kept in memory while the post's stamp holds.

A read is one trip to SQLite: the post with its stamp, the thread's rows with their
fragments and, for comments whose fragment is missing, what rendering them needs. The
ETag depends on the stamp and the render key only, so a matching If-None-Match is
answered before anything is rendered.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, overload

import orjson

from fedcomments import __version__
from fedcomments.errors import Gone, NotFound
from fedcomments.model import Comment
from fedcomments.runtime import Runtime
from fedcomments.services import media, thread_cache, thread_media
from fedcomments.services import thread_json as shape
from fedcomments.services.thread_cache import Entry
from fedcomments.services.thread_json import (
    Authors,
    Owner,
    Reactions,
    comment_json,
    count_visible,
    entry_of,
    safe_url,
    thread_tree,
)
from fedcomments.store import media as media_store
from fedcomments.store import threads as thread_store
from fedcomments.store.media import ThreadMedia
from fedcomments.store.rows import ts
from fedcomments.store.threads import PostRef, ThreadPost, ThreadRead, ThreadRow
from fedcomments.urls import permalink_spellings

__all__ = ["FragmentWriter", "NotModified", "Owner", "ThreadCache", "ThreadView", "build_view",
           "count_visible", "entry_of", "etag_in", "find_thread_post", "get_thread", "owner_of",
           "pictures_of", "post_ref", "render_key", "safe_url", "scratch_json",
           "single_comment_json", "thread_tree"]

log = logging.getLogger("fedcomments.thread")

#: Threads with this many comments are assembled in a worker thread.
BIG_THREAD = 1000
#: Fragments stored per write transaction (the writer is shared with the inbox).
SAVE_BATCH = 500
#: Rendered fragments waiting to be stored, at most (about 1 KiB each).
MAX_PENDING = 50_000


@dataclass(frozen=True)
class ThreadView:
    """A thread ready to send: the exact bytes and their ETag."""

    post: ThreadPost
    body: bytes
    etag: str
    #: Other renderings of the same thread (the page's HTML), made once on first use.
    renderings: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @cached_property
    def data(self) -> dict[str, Any]:
        """The JSON as objects, parsed on first use (only the HTML page needs them)."""
        return orjson.loads(self.body)  # type: ignore[no-any-return]

    def rendered(self, kind: str, make: Callable[[dict[str, Any]], Any]) -> Any:
        if kind not in self.renderings:
            self.renderings[kind] = make(self.data)
        return self.renderings[kind]


@dataclass(frozen=True)
class NotModified:
    """The client's copy (named by If-None-Match) is the current thread."""

    post: ThreadPost
    etag: str


def etag_in(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, or *)."""
    if not header:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags


def owner_of(rt: Runtime) -> Owner:
    a = rt.settings.actor
    return Owner(a.name, rt.urls.handle, rt.urls.actor, safe_url(a.icon),
                 http_images=rt.settings.federation.allow_private_addresses)


def code_checksum() -> int:
    """A checksum of the code that shapes a fragment, so an upgrade never serves fragments
    (or ETags) rendered by older code."""
    try:
        code = 0
        for module in (shape, thread_media):
            code = zlib.crc32(Path(module.__file__ or "").read_bytes(), code)
        return code
    except OSError:
        return zlib.crc32(__version__.encode())


def render_key(rt: Runtime, code: int) -> int:
    """Names everything besides the database that shapes the bytes: code and settings."""
    return zlib.crc32(repr((owner_of(rt), rt.settings.comments.max_depth,
                            rt.settings.media.proxy)).encode(), code)


def pictures_of(rt: Runtime, found: ThreadMedia | None) -> thread_media.Pictures:
    """Which image URLs a rendering shows, from the media rows read with the thread."""
    return thread_media.Pictures(owner_of(rt).image, found, proxy=rt.settings.media.proxy,
                                 base_url=rt.settings.server.base_url, now=rt.now())


def own_icon(rt: Runtime) -> str | None:
    """The blog's avatar, looked up with the thread when it is served by us."""
    return (safe_url(rt.settings.actor.icon) or None) if rt.settings.media.proxy else None


def etag_of(post: ThreadPost, key: int) -> str:
    return f'"{post.id:x}.{post.stamp:x}.{key:08x}"'


class FragmentWriter:
    """Stores rendered fragments in the background, in batches (a reader never waits for
    the writer); each is stored only if nothing cleared it since it was read. At most
    MAX_PENDING wait: beyond that they are dropped (and rendered again when next read)."""

    def __init__(self) -> None:
        #: comment id → (gen it was read at, bytes); the newest reading of each wins.
        self._pending: dict[int, tuple[int | None, bytes]] = {}
        self._key = 0
        self._task: asyncio.Future[None] | None = None

    def save(self, rt: Runtime, key: int, fragments: list[tuple[int, int | None, bytes]]
             ) -> None:
        if key != self._key:
            self._pending.clear()  # rendered under other settings: not ours to keep
            self._key = key
        pending = self._pending
        for cid, gen, body in fragments:
            old = pending.get(cid)
            if old is None and len(pending) >= MAX_PENDING:
                continue
            if old is None or (gen or 0) >= (old[0] or 0):
                pending[cid] = (gen, body)
        if pending and (self._task is None or self._task.done()):
            self._task = asyncio.ensure_future(self._run(rt))

    async def _run(self, rt: Runtime) -> None:
        while self._pending:
            batch = [(cid, gen, body) for cid, (gen, body)
                     in itertools.islice(self._pending.items(), SAVE_BATCH)]
            for cid, _, _ in batch:
                del self._pending[cid]
            try:
                async with rt.db.transaction() as tx:
                    await thread_store.save_fragments(tx, self._key, batch)
            except Exception:  # a task boundary: fragments are rendered again when missing
                log.exception("could not store %d rendered comments", len(batch))

    async def flush(self) -> None:
        """Wait until everything handed over so far is stored."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


class ThreadCache(thread_cache.ThreadCache[ThreadView]):
    """Rendered threads of one app, the writer of their fragments and the render key."""

    def __init__(self, size: int = 512, keys: int = 8192, max_bytes: int = 64 << 20) -> None:
        super().__init__(size, keys, max_bytes)
        self.fragments = FragmentWriter()
        self._key: tuple[Runtime, int] | None = None

    def key(self, rt: Runtime) -> int:
        """The render key of `rt` (settings do not change while a runtime lives)."""
        if self._key is None or self._key[0] is not rt:
            self._key = (rt, render_key(rt, code_checksum()))
        return self._key[1]


def _permalinks(ref: str) -> tuple[str, ...]:
    """The spellings of a permalink that name one post (`urls.permalink_spellings`)."""
    return permalink_spellings(ref)


def post_ref(rt: Runtime, ref: str) -> PostRef | None:
    """How `ref` names a post: an id, a permalink (trailing slash or not, any #fragment),
    or the ActivityPub id of one of our posts."""
    ref = ref.strip()
    if ref.isdigit() and len(ref) < 19:
        return PostRef(post_id=int(ref))
    if ref.startswith(("http://", "https://")):
        spellings = _permalinks(ref)
        return PostRef(permalinks=spellings,
                       ap_id=spellings[0] if rt.urls.is_local(spellings[0]) else None)
    return None


def _visible(rt: Runtime, post: ThreadPost | None) -> ThreadPost:
    if post is None or post.published > (ts(rt.now()) or ""):
        raise NotFound("no such post")
    if post.deleted:
        raise Gone("post deleted")
    return post


async def find_thread_post(rt: Runtime, ref: str) -> ThreadPost:
    """A public post by id, permalink (trailing slash or not) or ActivityPub id, in one
    query in the common case."""
    found = post_ref(rt, ref)
    conn = rt.db.read
    post: ThreadPost | None = None
    if found is not None and found.post_id is not None:
        post = await thread_store.thread_post(conn, post_id=found.post_id)
    elif found is not None:
        post = await thread_store.thread_post(conn, permalinks=found.permalinks)
        if post is None and found.ap_id is not None:
            post = await thread_store.thread_post(conn, ap_id=found.ap_id)
    return _visible(rt, post)


async def _read(rt: Runtime, ref: PostRef | None, key: int, rows: bool = True) -> ThreadRead:
    read = None if ref is None else await thread_store.read_thread(rt.db.read, ref, key, rows,
                                                                   own_icon(rt))
    _visible(rt, read.post if read is not None else None)
    assert read is not None
    return read


# --- rendering --------------------------------------------------------------------------


def _render(read: ThreadRead, owner: Owner, max_depth: int, pictures: thread_media.Pictures
            ) -> tuple[bytes, list[tuple[int, int | None, bytes]]]:
    """The thread's bytes, and the fragments that had to be rendered for it (with the gen
    each was read at)."""
    rows: list[ThreadRow] = read.rows
    made: list[tuple[int, int | None, bytes]] = []
    if read.missing:
        authors = Authors(owner, pictures)
        grouped = shape.group_reactions(read.missing_reactions)
        made = [(e.id, gen, shape.fragment(e, grouped.get(e.id), authors))
                for e, gen in zip(read.missing, read.missing_gens, strict=True)]
        filled = {cid: body for cid, _, body in made}
        rows = [r if r[3] is not None else (r[0], r[1], r[2], filled[r[0]]) for r in rows]
    reactions = Reactions(likes=read.likes, boosts=read.boosts)
    for person in read.people:
        reactions.add_person(person)
    return shape.assemble(read.post, rows, reactions, owner, max_depth, pictures), made


async def build_view(rt: Runtime, read: ThreadRead, key: int,
                     writer: FragmentWriter | None = None) -> ThreadView:
    """Assemble the thread (in a worker thread for big ones, so the event loop keeps
    serving) and hand the fragments it had to render to `writer`."""
    pictures = pictures_of(rt, read.media)
    args = (read, owner_of(rt), rt.settings.comments.max_depth, pictures)
    if len(read.rows) < BIG_THREAD:
        body, made = _render(*args)
    else:
        body, made = await asyncio.to_thread(_render, *args)
    if writer is not None:
        writer.save(rt, key, made)
    # Images shown as placeholders are fetched in the background; once made, the fragments
    # that show them are cleared (store.media.record) and the next reading shows them.
    media.request(rt, pictures.wanted)
    return ThreadView(read.post, body, etag_of(read.post, key))


# --- reading ----------------------------------------------------------------------------


@overload
async def get_thread(rt: Runtime, ref: str, cache: ThreadCache | None = None) -> ThreadView: ...


@overload
async def get_thread(rt: Runtime, ref: str, cache: ThreadCache | None,
                     unless: Callable[[str], bool] | None) -> ThreadView | NotModified: ...


async def get_thread(rt: Runtime, ref: str, cache: ThreadCache | None = None,
                     unless: Callable[[str], bool] | None = None) -> ThreadView | NotModified:
    """The public thread of a post found by `ref`, served from `cache` while nothing it
    shows changed; NotModified if `unless(etag)` says the client has the current state
    (then nothing is rendered)."""
    if cache is None:
        code = code_checksum()
        read = await _read(rt, post_ref(rt, ref), render_key(rt, code))
        return await build_view(rt, read, render_key(rt, code))
    key = cache.key(rt)
    guess = cache.post_of(ref)
    entry = cache.get(guess) if guess is not None else None
    if guess is not None and entry is None and unless is None:
        # A thread fallen out of the cache: all of it, and the database's version, in one
        # trip.
        read = await _read(rt, post_ref(rt, ref), key)
        version = read.version
    else:
        version = await cache.version.read(rt.db)
        if entry is not None and entry.version == version:
            return entry.value  # nothing at all was committed since it was rendered
        # A thread rendered before, a new spelling of a post (it may be rendered), or a
        # client that has a copy: the post and its stamp first, the thread may not have
        # changed.
        read = await _read(rt, post_ref(rt, ref), key, rows=False)
    post = read.post
    cache.remember(ref, post.id)
    entry = cache.get(post.id)
    if entry is not None and entry.stamp == post.stamp:
        entry.version = version
        return entry.value
    if unless is not None and unless(etag_of(post, key)):
        return NotModified(post, etag_of(post, key))

    async def build() -> ThreadView:
        full = read if read.complete else await _read(
            rt, PostRef(post_id=post.id), key)
        return await build_view(rt, full, key, cache.fragments)

    stale = entry.value if entry is not None else None
    view = await cache.build_once(post.id, post.stamp, build, stale)
    if view is not stale:
        # The body, and roughly what its parsed data weighs if the page asks for it.
        cache.put(post.id, Entry(version, view.post.stamp, view, size=4 * len(view.body)))
    return view


def single_comment_json(rt: Runtime, comment: Comment) -> dict[str, Any]:
    """One comment outside its thread (what its author sees while it is pending)."""
    return comment_json(entry_of(comment), 0, None, None, Authors(owner_of(rt)))


async def scratch_json(rt: Runtime, post_id: int) -> dict[str, Any]:
    """The public thread rendered from scratch (every comment and reaction read in full,
    no fragment used), with the images as they stand: the reference the assembled thread
    must equal."""
    conn = rt.db.read
    post = await thread_store.thread_post(conn, post_id=post_id)
    if post is None:
        raise NotFound("no such post")
    entries = await thread_store.public_thread(conn, post_id)
    reactions = await thread_store.reactions_for_post(conn, post_id)
    icons = [r.actor_icon for r in reactions if r.actor_icon]
    icons += [e.actor.icon for e in entries if e.actor is not None and e.actor.icon]
    icon = own_icon(rt)
    found = await media_store.thread_media(
        conn, [e.id for e in entries], [e.actor.id for e in entries if e.actor is not None],
        [*icons, *([icon] if icon else [])])
    return shape.thread_json(post, entries, reactions, owner_of(rt),
                             rt.settings.comments.max_depth, pictures_of(rt, found))
