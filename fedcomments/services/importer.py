"""`fedcomments import`: comments from WordPress, Disqus, Isso or another fedcomments brought
into their threads, idempotently and quietly.

Each comment is keyed by its source (system, site, id): importing the same export again
changes nothing, a newer one adds only what is new. Posts are matched by permalink
(`urls.permalink_key`) and created when missing, counted as announced so nothing is ever
sent for them; no comment is federated either. Records are pulled from the parser in
batches (on a worker thread: parsing and file reads would block the event loop), each
batch in its own short write transaction, so a running server keeps answering. Before
the first write the whole file is read once without writing, so a malformed export is
refused with nothing stored.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fedcomments.ap.sanitize import sanitize_html
from fedcomments.errors import InvalidInput
from fedcomments.formats import disqus, fedjson, wxr
from fedcomments.formats.records import (
    ActorRecord,
    CommentRecord,
    PostReactions,
    PostRecord,
    ReactionRecord,
    Record,
    Skipped,
)
from fedcomments.formats.text import markdown_html, wordpress_html
from fedcomments.model import CommentStatus, ImportKey, Origin, Visibility
from fedcomments.names import canonical_url, host_of
from fedcomments.runtime import Runtime
from fedcomments.services import posts as post_service
from fedcomments.services.actors import own_host
from fedcomments.services.local_comments import clean_name
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store import imports as import_store
from fedcomments.store import isso_file
from fedcomments.store import posts as post_store
from fedcomments.store.actors import ActorFields
from fedcomments.store.comments import NewComment
from fedcomments.store.conn import Conn
from fedcomments.urls import permalink_key, site_key

log = logging.getLogger("fedcomments.import")

#: Records per write transaction: long enough to be cheap, short enough that a running
#: server's inbox never waits long for the write lock.
BATCH = 200
MAX_WEBSITE = 500
MAX_ATTACHMENTS = 16
MAX_MENTIONS = 50
MAX_EMAIL = 254
#: Progress is told every this many records.
PROGRESS_EVERY = 500

RecordSource = Callable[[], Iterator[Record]]
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class ImportOptions:
    #: Import spam and trashed comments too (as rejected: never shown).
    keep_spam: bool = False
    #: Import pingbacks, trackbacks and webmentions too (as comments from the linking site).
    keep_pingbacks: bool = False
    dry_run: bool = False


@dataclass
class ImportReport:
    source: str
    dry_run: bool
    #: Records read from the file.
    read: int = 0
    #: Comments imported (would be, in a dry run), by their status here.
    imported: Counter[str] = field(default_factory=Counter)
    #: Comments already here (imported before, or the same fediverse object).
    existing: int = 0
    posts_created: int = 0
    posts_matched: int = 0
    reactions: int = 0
    #: Records not imported, by reason (spam, trash, pingback, post not published, …).
    skipped: Counter[str] = field(default_factory=Counter)
    #: Replies whose parent is not in the export (shown at the top of their thread).
    orphans: int = 0

    @property
    def comments(self) -> int:
        return sum(self.imported.values())


@dataclass
class _Pass:
    """What one pass over the file remembers: posts by permalink key, actors by id."""

    rt: Runtime
    options: ImportOptions
    report: ImportReport
    posts: dict[str, int]
    #: Posts this pass found already here, and those it created (a dry run counts those
    #: with negative ids).
    matched: set[int] = field(default_factory=set)
    created: set[int] = field(default_factory=set)
    #: Fediverse actors' row ids (a cache, emptied when it grows large).
    actors: dict[str, int] = field(default_factory=dict)
    #: This server as the site of its own export's keys.
    site: str = ""


async def import_records(rt: Runtime, source: str, records: RecordSource,
                         options: ImportOptions, progress: Progress | None = None
                         ) -> ImportReport:
    """Read `records()` once without writing (the dry run, and the check that the whole
    file is readable), then, unless `options.dry_run`, once more writing batch by batch."""
    checked = await _run(rt, source, records, ImportOptions(
        options.keep_spam, options.keep_pingbacks, dry_run=True), None)
    if options.dry_run:
        return checked
    if progress is not None:
        progress(0, checked.read)
    report = await _run(rt, source, records, options,
                        (lambda n: progress(n, checked.read)) if progress else None)
    log.info("import done", extra={"source": source, "comments": report.comments,
                                   "existing": report.existing,
                                   "posts_created": report.posts_created})
    return report


async def _run(rt: Runtime, source: str, records: RecordSource, options: ImportOptions,
               progress: Callable[[int], None] | None) -> ImportReport:
    report = ImportReport(source=source, dry_run=options.dry_run)
    index = {permalink_key(link): post_id
             for post_id, link in await post_store.all_permalinks(rt.db.read)}
    state = _Pass(rt, options, report, index, site=site_key(rt.urls.base_url))
    stream = records()
    try:
        while batch := await asyncio.to_thread(_take, stream, BATCH):
            if options.dry_run:
                for record in batch:
                    await _one(state, rt.db.read, record)
            else:
                async with rt.db.transaction() as tx:
                    for record in batch:
                        await _one(state, tx, record)
            before = report.read
            report.read += len(batch)
            if progress is not None and (report.read // PROGRESS_EVERY
                                         != before // PROGRESS_EVERY or len(batch) < BATCH):
                progress(report.read)
        if not options.dry_run:
            async with rt.db.transaction() as tx:
                await import_store.link_waiting_replies(tx)
            report.orphans = await import_store.count_waiting(rt.db.read, source)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
    report.posts_created = len(state.created)
    report.posts_matched = len(state.matched)
    return report


def _take(stream: Iterator[Record], n: int) -> list[Record]:
    return list(itertools.islice(stream, n))


async def _one(state: _Pass, conn: Conn, record: Record) -> None:
    if isinstance(record, Skipped):
        state.report.skipped[record.reason] += 1
    elif isinstance(record, PostReactions):
        post_id = await _post(state, conn, record.post, None)
        state.report.reactions += await _reactions(state, conn, record.reactions, post_id, None)
    else:
        await _comment(state, conn, record)


def _skip_reason(state: _Pass, c: CommentRecord) -> str | None:
    if c.kind != "comment" and not state.options.keep_pingbacks:
        return c.kind
    if c.status in ("spam", "trash") and not state.options.keep_spam:
        return c.status
    if c.origin == "remote":
        assert c.actor is not None and c.ap_id is not None
        if state.rt.blocklist.url_blocked(c.actor.ap_id) or state.rt.blocklist.url_blocked(
                c.ap_id):
            return "blocked here"
    return None


async def _comment(state: _Pass, conn: Conn, c: CommentRecord) -> None:
    report = state.report
    reason = _skip_reason(state, c)
    if reason is not None:
        report.skipped[reason] += 1
        return
    if await import_store.by_key(conn, c.key) is not None:
        report.existing += 1
        return
    if await import_store.deleted_here(conn, c.key):
        report.skipped["deleted here before"] += 1
        return
    if await _here_already(state, conn, c):
        report.existing += 1
        return
    if c.ap_id and c.origin == "remote":
        tombstoned, known = await comment_store.object_state(conn, c.ap_id)
        if known is not None:
            report.existing += 1
            return
        if tombstoned:
            report.skipped["deleted here before"] += 1
            return
    post_id = await _post(state, conn, c.post, c.published)
    status = _status(c)
    report.imported[status.value] += 1
    if state.options.dry_run:
        return
    parent_id, waiting = await _parent(conn, c.parent, post_id)
    actor_id = await _actor(state, conn, c.actor) if c.origin == "remote" else None
    deleted = status is CommentStatus.DELETED
    comment_id = await comment_store.insert(conn, NewComment(
        post_id=post_id, parent_id=parent_id, origin=Origin(c.origin),
        visibility=Visibility(c.visibility), status=status,
        content="" if deleted else _html(c), published_at=c.published, updated_at=c.updated,
        ap_id=c.ap_id if c.origin == "remote" else None, actor_id=actor_id,
        author_name=_name(state, c.author_name) if actor_id is None else None,
        author_email=None if deleted or actor_id is not None else _email(c.author_email),
        author_website=_website(c.author_website) if actor_id is None else None,
        summary=c.summary, sensitive=c.sensitive, language=c.language,
        url=_website(c.url) if c.origin == "remote" else None,
        in_reply_to=c.in_reply_to if c.origin == "remote" else None,
        attachments=tuple(a for a in c.attachments if _website(a.url, 2048))[:MAX_ATTACHMENTS],
        mentions=c.mentions[:MAX_MENTIONS], imported=c.key, import_parent=waiting,
    ), state.rt.now())
    if c.origin == "owner":
        # The blog's own answers are Notes at our ids, like every answer the owner writes.
        await comment_store.set_ap_id(conn, comment_id, state.rt.urls.comment(comment_id))
    report.reactions += await _reactions(state, conn, c.reactions, post_id, comment_id)


async def _here_already(state: _Pass, conn: Conn, c: CommentRecord) -> bool:
    """Whether `c` is one of this server's own comments (its export imported back here):
    its key names this server and the comment under that id is on the same post, from the
    same time (ids of deleted comments can be taken again)."""
    if (c.key.source, c.key.site) != (fedjson.SOURCE, state.site) or not c.key.id.isdigit():
        return False
    here = await import_store.post_and_time(conn, int(c.key.id))
    return here is not None and here == (state.posts.get(permalink_key(c.post.permalink)),
                                         c.published)


def _status(c: CommentRecord) -> CommentStatus:
    if c.status in ("spam", "trash", "rejected"):
        return CommentStatus.REJECTED
    return CommentStatus(c.status)


async def _parent(conn: Conn, parent: ImportKey | None, post_id: int
                  ) -> tuple[int | None, str | None]:
    """The parent's id when it is here already, else the key to link it by later."""
    if parent is None:
        return None, None
    found = await import_store.by_key(conn, parent)
    if found is not None and found[1] == post_id:
        return found[0], None
    return None, import_store.parent_ref(parent)


async def _post(state: _Pass, conn: Conn, post: PostRecord, first_comment: datetime | None
                ) -> int:
    key = permalink_key(post.permalink)
    post_id = state.posts.get(key)
    if post_id is None:
        if state.options.dry_run:
            post_id = -1 - len(state.created)
        else:
            published = post.published or first_comment or state.rt.now()
            created = await post_service.add_imported_post(state.rt, conn, post.permalink,
                                                           post.title, published,
                                                           deleted_at=post.deleted)
            post_id = created.id
        state.posts[key] = post_id
        state.created.add(post_id)
    elif post_id not in state.created:
        state.matched.add(post_id)
    return post_id


async def _actor(state: _Pass, conn: Conn, actor: ActorRecord | None) -> int:
    """A fediverse author known here, or stored from the export (never fetched now: the
    next signed request from them refreshes it)."""
    assert actor is not None
    if actor.ap_id in state.actors:
        return state.actors[actor.ap_id]
    if len(state.actors) > 10_000:
        state.actors.clear()
    known = await actor_store.by_ap_id(conn, actor.ap_id)
    if known is not None:
        actor_id = known.id
    else:
        # The host in its one spelling, and inboxes only on it, as for a fetched actor.
        actor_id = await actor_store.upsert(conn, ActorFields(
            ap_id=actor.ap_id, domain=host_of(actor.ap_id),
            type=actor.type, username=actor.username, name=actor.name,
            summary=None, url=_website(actor.url), icon=_website(actor.icon),
            inbox=_own_inbox(actor.inbox, actor.ap_id),
            shared_inbox=_own_inbox(actor.shared_inbox, actor.ap_id),
            followers_url=actor.followers_url), state.rt.now())
    state.actors[actor.ap_id] = actor_id
    return actor_id


def _own_inbox(url: str | None, actor_id: str) -> str | None:
    return own_host(canonical_url(url), actor_id) if url else None


async def _reactions(state: _Pass, conn: Conn, reactions: tuple[ReactionRecord, ...],
                     post_id: int, comment_id: int | None) -> int:
    if state.options.dry_run:
        return len(reactions)
    if not reactions:
        return 0
    target = await import_store.object_id(conn, post_id, comment_id) or state.rt.urls.comment(
        comment_id or 0)
    added = 0
    for r in reactions:
        if state.rt.blocklist.url_blocked(r.actor.ap_id):
            continue
        actor_id = await _actor(state, conn, r.actor)
        added += await comment_store.add_reaction(
            conn, ap_id=r.ap_id or f"{target}#import-{r.type}-{actor_id}", type_=r.type,
            actor_id=actor_id, post_id=post_id, comment_id=comment_id,
            target_ap_id=target, now=r.created)
    return added


def _html(c: CommentRecord) -> str:
    """The comment's text as HTML the way its system showed it, then sanitised like every
    comment (nh3 with the same allowlist)."""
    if c.text_format == "wordpress":
        raw = wordpress_html(c.content)
    elif c.text_format == "markdown":
        raw = markdown_html(c.content)
    else:
        raw = c.content
    return sanitize_html(raw)


def _name(state: _Pass, name: str | None) -> str | None:
    if not name:
        return None
    cleaned = clean_name(name)[: state.rt.settings.comments.max_name_length]
    return cleaned or None


def _email(email: str | None) -> str | None:
    email = (email or "").strip().lower()
    return email if "@" in email and len(email) <= MAX_EMAIL else None


def _website(url: str | None, limit: int = MAX_WEBSITE) -> str | None:
    """Only an http(s) address is kept (never javascript:, data: or relative)."""
    url = (url or "").strip()
    if not url or len(url) > limit or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def report_json(r: ImportReport) -> dict[str, Any]:
    """Stable JSON shape of an import's report (`import --json`)."""
    return {
        "source": r.source, "dry_run": r.dry_run, "read": r.read,
        "imported": r.comments, "statuses": dict(sorted(r.imported.items())),
        "existing": r.existing, "posts_created": r.posts_created,
        "posts_matched": r.posts_matched, "reactions": r.reactions,
        "skipped": dict(sorted(r.skipped.items())), "orphans": r.orphans,
    }


#: The systems `fedcomments import` reads.
FORMATS = ("wordpress", "disqus", "isso", "fedcomments")


def open_export(fmt: str, path: Path, site: str | None = None) -> RecordSource:
    """The records of the export at `path` in format `fmt` (read when iterated). Isso's
    database does not know the blog's address: `site` gives it."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format: one of {', '.join(FORMATS)}", field="format")
    if not path.is_file():
        raise InvalidInput(f"file: {path} is not a readable file", field="file")
    if fmt == "isso":
        if not site:
            raise InvalidInput("--site: Isso keeps page paths only; give the blog's address "
                               "(e.g. --site https://blog.example)", field="site")
        return lambda: isso_file.read(path, site)
    if site:
        raise InvalidInput(f"--site: only for isso ({fmt} exports name their site)",
                           field="site")
    reader = {"wordpress": wxr.read, "disqus": disqus.read, "fedcomments": fedjson.read}[fmt]
    return lambda: reader(path)
