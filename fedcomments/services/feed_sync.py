"""Posts from the blog's own feeds ([blog] feeds): new entries become posts announced as
`posts add` does (a new feed's old entries quietly), changed ones send Update, entries that
leave the feed are left alone; matched by guid/id, then by permalink."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fedcomments.config import FeedSettings
from fedcomments.errors import FedcommentsError, InvalidInput
from fedcomments.feeds.read import ACCEPT, FeedEntry, parse_feed
from fedcomments.model import Post, PostInput
from fedcomments.remote import RemoteClient, RemoteSettings
from fedcomments.runtime import Runtime, user_agent
from fedcomments.services import posts as post_service
from fedcomments.store import feeds as feed_store
from fedcomments.store import posts as post_store
from fedcomments.store.conn import Conn
from fedcomments.urls import permalink_spellings

log = logging.getLogger("fedcomments.feeds")

#: A blog's feed with full articles can be a few megabytes; more is not a feed.
MAX_FEED_BYTES = 4 << 20
#: Failed polls back off (doubling from the poll interval) up to this.
MAX_BACKOFF = timedelta(hours=6)


@dataclass(frozen=True)
class EntryOutcome:
    """What a poll did (or, in a dry run, would do) with one entry."""

    action: str  # "added", "updated" or "skipped"
    id: str
    url: str | None
    title: str
    post_id: int | None = None
    #: Added posts only: sent to followers (else imported quietly).
    announced: bool = False
    reason: str | None = None


@dataclass(frozen=True)
class FeedOutcome:
    url: str
    status: str  # "ok", "not-modified" or "failed"
    first_poll: bool
    format: str | None = None
    error: str | None = None
    entries: list[EntryOutcome] = field(default_factory=list)

    def of(self, action: str) -> list[EntryOutcome]:
        return [e for e in self.entries if e.action == action]

    def as_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "entries"}
        for action in ("added", "updated", "skipped"):
            data[action] = [{k: v for k, v in asdict(e).items() if k != "action"}
                            for e in self.of(action)]
        return data


class FeedClients:
    """The HTTP clients feeds are fetched with: the runtime's, and one that may reach
    private addresses for feeds the owner marked `allow_private` (started on first use)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        self._private: RemoteClient | None = None

    async def for_feed(self, feed: FeedSettings) -> RemoteClient:
        if not feed.allow_private or self._rt.settings.federation.allow_private_addresses:
            return self._rt.remote
        if self._private is None:
            self._private = RemoteClient(
                RemoteSettings(allow_private_addresses=True,
                               user_agent=user_agent(self._rt.settings)),
                is_blocked=self._rt.blocklist.domain_blocked)
            await self._private.start()
        return self._private

    async def close(self) -> None:
        private, self._private = self._private, None
        if private is not None:
            await private.close()


@contextlib.asynccontextmanager
async def feed_clients(rt: Runtime) -> AsyncIterator[FeedClients]:
    clients = FeedClients(rt)
    try:
        yield clients
    finally:
        await clients.close()


def configured_feed(rt: Runtime, url: str) -> FeedSettings:
    for feed in rt.settings.blog.feeds:
        if feed.url == url.strip():
            return feed
    raise InvalidInput(f"feed: {url} is not one of [blog] feeds in {rt.settings.source}",
                       field="feed")


async def sync_feeds(rt: Runtime, *, feed: str | None = None, dry_run: bool = False
                     ) -> list[FeedOutcome]:
    """Poll every configured feed (or the one named) now, due or not."""
    if not rt.settings.blog.feeds:
        raise InvalidInput(f"feed: no [blog] feeds in {rt.settings.source}", field="feed")
    feeds = [configured_feed(rt, feed)] if feed is not None else list(rt.settings.blog.feeds)
    async with feed_clients(rt) as clients:
        return [await poll_feed(rt, f, clients, dry_run=dry_run) for f in feeds]


async def poll_due(rt: Runtime, clients: FeedClients) -> list[FeedOutcome]:
    """Poll the feeds whose time has come (a new feed at once)."""
    done = []
    for feed in rt.settings.blog.feeds:
        state = await feed_store.feed_state(rt.db.read, feed.url)
        if state is None or state.next_poll_at <= rt.now():
            done.append(await poll_feed(rt, feed, clients))
    return done


async def polling(rt: Runtime, interval: float = 1.0) -> None:
    """Poll the blog's feeds when due, looking every `interval` seconds; runs until
    cancelled. Runs beside housekeeping, once per database."""
    if not rt.settings.blog.feeds:
        return
    async with feed_clients(rt) as clients:
        while True:
            try:
                await poll_due(rt, clients)
            except Exception:  # a task boundary: log and try again next time
                log.exception("polling the blog's feeds failed")
            await asyncio.sleep(interval)


# --- one poll -------------------------------------------------------------------------------


async def poll_feed(rt: Runtime, feed: FeedSettings, clients: FeedClients, *,
                    dry_run: bool = False) -> FeedOutcome:
    """Fetch one feed (conditionally) and apply its entries; failures are recorded with a
    backoff, and logged once per streak."""
    now = rt.now()
    state = await feed_store.feed_state(rt.db.read, feed.url)
    if state is None and not dry_run:
        async with rt.db.transaction() as tx:
            await feed_store.add_feed(tx, feed.url, now)
        state = await feed_store.feed_state(rt.db.read, feed.url)
    added_at = state.added_at if state is not None else now
    first = state is None or state.polled_at is None
    # A dry run shows what the feed holds now, so it never asks for a 304.
    etag = None if dry_run or state is None else state.etag
    modified = None if dry_run or state is None else state.last_modified
    try:
        client = await clients.for_feed(feed)
        doc = await client.get_document(feed.url, accept=ACCEPT, max_bytes=MAX_FEED_BYTES,
                                        etag=etag, last_modified=modified)
        if doc.status == 304:
            outcome = FeedOutcome(feed.url, "not-modified", first)
        else:
            parsed = await asyncio.to_thread(parse_feed, doc.body, doc.url,
                                             doc.headers.get("Content-Type", ""))
            entries, twins = _unique(parsed.entries)
            # Oldest first, so followers see the posts in the order they were written.
            outcomes = [await _apply(rt, feed.url, e, added_at, first, dry_run)
                        for e in reversed(entries)]
            outcome = FeedOutcome(feed.url, "ok", first, parsed.format,
                                  entries=[*reversed(outcomes), *twins])
    except Exception as exc:  # a feed's boundary: the other feeds still get their turn
        if not isinstance(exc, FedcommentsError):
            log.exception("reading feed %s failed", feed.url)
        error = str(exc) or type(exc).__name__
        if not dry_run:
            await _failed(rt, feed, error, state.failures if state else 0)
        return FeedOutcome(feed.url, "failed", first, error=error)
    if not dry_run:
        new_etag = doc.headers.get("ETag") if doc.status == 200 else etag
        new_modified = doc.headers.get("Last-Modified") if doc.status == 200 else modified
        async with rt.db.transaction() as tx:
            await feed_store.polled(tx, feed.url, now=now, next_poll=now + _interval(rt),
                                    etag=new_etag, last_modified=new_modified)
        if state is not None and state.failures:
            log.info("feed %s is readable again after %d failed polls", feed.url,
                     state.failures, extra={"feed": feed.url, "failures": state.failures})
        if outcome.of("added") or outcome.of("updated"):
            log.info("feed %s: %d added, %d updated", feed.url, len(outcome.of("added")),
                     len(outcome.of("updated")), extra={"feed": feed.url})
    return outcome


def _interval(rt: Runtime) -> timedelta:
    return timedelta(seconds=rt.settings.blog.poll_interval)


def backoff(rt: Runtime, failures: int) -> timedelta:
    """The wait after the `failures`-th failed poll in a row: the poll interval, doubling."""
    interval = _interval(rt)
    wait: timedelta = min(interval * 2 ** min(failures - 1, 20), max(MAX_BACKOFF, interval))
    return wait


async def _failed(rt: Runtime, feed: FeedSettings, error: str, before: int) -> None:
    wait = backoff(rt, before + 1)
    async with rt.db.transaction() as tx:
        await feed_store.failed(tx, feed.url, error=error, next_poll=rt.now() + wait)
    if before == 0:
        # One line per streak: the recovery is logged too, nothing in between.
        log.warning("feed %s cannot be read (%s); retrying with backoff", feed.url, error,
                    extra={"feed": feed.url, "error": error})
    else:
        log.debug("feed %s still cannot be read (%s)", feed.url, error)


def _unique(entries: tuple[FeedEntry, ...]) -> tuple[list[FeedEntry], list[EntryOutcome]]:
    """The entries with distinct ids (the first of each, as feed readers keep it), and
    the later twins reported as skipped."""
    seen: set[str] = set()
    out, twins = [], []
    for entry in entries:
        if entry.id and entry.id in seen:
            twins.append(EntryOutcome("skipped", entry.id, entry.permalink, entry.title,
                                      reason="the same id as an earlier entry of the feed"))
            continue
        seen.add(entry.id)
        out.append(entry)
    return out, twins


def fingerprint(entry: FeedEntry) -> str:
    """What the feed says of an entry that a post shows; its change sends an Update."""
    shown = [entry.permalink, entry.title, entry.summary, list(entry.tags), entry.image]
    return hashlib.sha256(json.dumps(shown).encode()).hexdigest()


async def _apply(rt: Runtime, feed_url: str, entry: FeedEntry, added_at: datetime,
                 first: bool, dry_run: bool) -> EntryOutcome:
    """Add, update or skip one entry. Only entries dated after the feed was first seen are
    announced (undated ones from the second poll on); the post an entry is found by its
    guid/id in this feed, else by permalink in any spelling the server accepts, so a post
    registered by hand or through a second feed of the blog is never duplicated."""
    def outcome(action: str, post: Post | None = None, **more: Any) -> EntryOutcome:
        return EntryOutcome(action, entry.id, entry.permalink, entry.title,
                            post.id if post else None, **more)

    if entry.problem is not None or entry.permalink is None:
        return outcome("skipped", reason=entry.problem or "no link")
    seen = fingerprint(entry)

    async def record(tx: Conn, post: Post) -> None:
        await feed_store.link_entry(tx, feed_url, entry.id, post.id, seen, rt.now())

    read = rt.db.read
    link = await feed_store.entry_link(read, feed_url, entry.id)
    post = await post_store.by_id(read, link.post_id) if link is not None else None
    if post is None:
        post = await post_store.by_permalinks(read, permalink_spellings(entry.permalink))
    data = PostInput(permalink=entry.permalink, title=entry.title, summary=entry.summary,
                     tags=entry.tags, image=entry.image, published_at=entry.published)
    try:
        if post is None:
            post_service.check_post(data)
            announce = (entry.published > added_at if entry.published is not None
                        else not first)
            if not dry_run:
                post = (await post_service.add_post(rt, data, announce=announce,
                                                    after=record)).post
            return outcome("added", post, announced=announce)
        if post.is_deleted:
            # The owner deleted it: a feed that still lists it does not bring it back.
            return outcome("skipped", post, reason="the post was deleted")
        if link is None:
            # Registered by hand or through another feed: this entry is that post from
            # now on, and the owner's version stays until the entry changes.
            if not dry_run:
                async with rt.db.transaction() as tx:
                    await record(tx, post)
            return outcome("skipped", post, reason="already registered")
        if link.fingerprint == seen:
            return outcome("skipped", post, reason="unchanged")
        permalink = (post.permalink if post.permalink in permalink_spellings(entry.permalink)
                     else entry.permalink)
        change = PostInput(permalink=permalink, title=entry.title, summary=entry.summary,
                           content=post.content, tags=entry.tags, image=entry.image,
                           published_at=post.published_at)
        post_service.check_post(change)
        if not dry_run:
            post = await post_service.update_post(rt, str(post.id), change, after=record)
        return outcome("updated", post)
    except InvalidInput as exc:
        return outcome("skipped", post, reason=str(exc))
