"""Remote comments: threading, import of notes and their ancestors, edits, deletes, moderation.

Only notes that answer one of our posts (directly or through a chain of replies) become
comments; their visibility comes from their own addressing and never widens later.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from fedcomments.ap import parse
from fedcomments.ap.sanitize import plain_text, sanitize_html
from fedcomments.errors import FedcommentsError
from fedcomments.model import Attachment, Comment, CommentStatus, Origin, RemoteActor
from fedcomments.model import Visibility as ModelVisibility
from fedcomments.names import same_origin
from fedcomments.runtime import Runtime
from fedcomments.services import actors, consent, media, notify, spam, unblocked
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store import consent as consent_store
from fedcomments.store import conversations as conversation_store
from fedcomments.store import posts as post_store
from fedcomments.store.comments import NewComment
from fedcomments.store.conn import Conn

log = logging.getLogger("fedcomments.comments")

#: Object types stored as comments (Question and Article are shown like notes).
NOTE_TYPES = frozenset({"Note", "Article", "Page", "Question"})
#: How far up a thread we walk to connect a reply to one of our posts.
MAX_ANCESTOR_DEPTH = 16
#: Remote GETs (objects and their authors) one incoming activity may cost us.
MAX_FETCHES_PER_ACTIVITY = 24
MAX_SUMMARY = 500
MAX_ATTACHMENTS = 16
MAX_MENTIONS = 50


@dataclass(frozen=True)
class Target:
    """Where a reply attaches: the post and, for a reply to a comment, that comment."""

    post_id: int
    parent_id: int | None = None
    #: False when the parent comment is private, pending or a deleted placeholder.
    public: bool = True


@dataclass
class Budget:
    """Remote fetches left for one activity."""

    left: int = MAX_FETCHES_PER_ACTIVITY

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


@dataclass(frozen=True)
class ImportResult:
    comment_id: int | None
    reason: str
    #: Ancestors fetched from their origins to connect it (its parent was not held).
    ancestors: int = 0


#: Why a note could not be connected to one of our threads (besides plain "not ours").
NOT_OURS = "not in any of our threads"
TOO_DEEP = "too deep"
BLOCKED = "blocked"
FETCH_FAILED = "fetch failed"


@dataclass
class _Chain:
    """Ancestors fetched from their origins, nearest first, with their authors."""

    items: list[tuple[parse.IncomingObject, RemoteActor | parse.IncomingActor]] = field(
        default_factory=list)


class _Abort(Exception):
    """Roll back an import transaction and report `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def find_target(rt: Runtime, conn: Conn, ap_id: str | None) -> Target | None:
    """The post or comment an id names, when it is in one of our live threads."""
    if not ap_id:
        return None
    if rt.urls.is_local(ap_id):
        post = await post_store.live_id_by_ap_id(conn, ap_id)
        if post is not None:
            post_id, deleted = post
            return None if deleted else Target(post_id)
    ref = await comment_store.thread_ref(conn, ap_id)
    if ref is None or ref.post_deleted:
        return None
    return Target(ref.post_id, ref.comment_id, ref.public)


def object_names(obj: parse.IncomingObject) -> list[str]:
    """Every id an object names: itself, its author, what it answers or quotes, whom it
    addresses (to, cc) and mentions. None of them may be on a blocked server."""
    names = [obj.id, obj.attributed_to, obj.in_reply_to, obj.quote_url, *obj.to, *obj.cc,
             *(m.href for m in obj.mentions)]
    return [n for n in names if n and n != parse.PUBLIC]


def check_object_origin(obj: parse.IncomingObject, actor_id: str) -> bool:
    """An object counts only from its own origin and attributed to who sent it."""
    return same_origin(obj.id, actor_id) and obj.attributed_to == actor_id


def _visibility(obj: parse.IncomingObject, followers_url: str | None) -> ModelVisibility:
    """Decided from the object's own addressing, knowing its author's followers URL."""
    return ModelVisibility(parse.visibility_of(obj.to, obj.cc, followers_url).value)


def _attachments(obj: parse.IncomingObject) -> tuple[Attachment, ...]:
    # Attachments are kept as links with their alt text; never downloaded.
    return tuple(
        Attachment(url=a.url, media_type=a.media_type,
                   name=(plain_text(a.name)[:1500] or None) if a.name else None)
        for a in obj.attachments[:MAX_ATTACHMENTS]
        if a.url.startswith(("https://", "http://"))
    )


def _summary(obj: parse.IncomingObject) -> str | None:
    return (plain_text(obj.summary)[:MAX_SUMMARY] or None) if obj.summary else None


def _new_comment(reply: PreparedNote, target: Target, parent_id: int | None,
                 status: CommentStatus) -> NewComment:
    obj, author = reply.obj, reply.author
    return NewComment(
        post_id=target.post_id,
        parent_id=parent_id,
        origin=Origin.REMOTE,
        visibility=_visibility(obj, author.followers_url),
        status=status,
        content=reply.content,
        published_at=obj.published or reply.now,
        ap_id=obj.id,
        actor_id=author.id,
        summary=_summary(obj),
        sensitive=obj.sensitive,
        language=obj.language,
        url=obj.url,
        in_reply_to=obj.in_reply_to,
        attachments=_attachments(obj),
        mentions=tuple(m.href for m in obj.mentions[:MAX_MENTIONS]),
        updated_at=obj.updated,
    )


async def moderation_status(rt: Runtime, conn: Conn, actor_id: int) -> CommentStatus:
    policy = rt.settings.moderation.policy
    if policy == "none":
        return CommentStatus.APPROVED
    if policy == "first-time" and await comment_store.author_trusted(conn, actor_id):
        return CommentStatus.APPROVED
    return CommentStatus.PENDING


async def fetch_object(rt: Runtime, url: str, budget: Budget) -> parse.IncomingObject | None:
    """A note fetched from its own origin (signed GET), or None when unusable."""
    if rt.urls.is_local(url) or await unblocked.blocked(rt, [url]) or not budget.take():
        return None
    try:
        resp = await rt.remote.get_json(url)
        obj = parse.parse_object(resp.data, normalizer=rt.normalizer)
    except (FedcommentsError, RecursionError) as exc:
        log.info("object fetch failed", extra={"url": url, "error": str(exc)})
        return None
    # The document must be what we asked for: an id elsewhere would let one server
    # put words in another's mouth.
    if obj.id != url or obj.type not in NOTE_TYPES:
        return None
    if not obj.attributed_to or not same_origin(obj.attributed_to, obj.id):
        return None
    return obj


async def _author(rt: Runtime, ap_id: str, budget: Budget
                  ) -> RemoteActor | parse.IncomingActor | None:
    """An ancestor's author: cached, or fetched now and stored only with the import."""
    if await unblocked.blocked(rt, [ap_id]):
        return None
    cached = await actor_store.by_ap_id(rt.db.read, ap_id)
    if cached is not None:
        return cached
    if not budget.take():
        return None
    try:
        return await actors.fetch_actor_document(rt, ap_id)
    except FedcommentsError as exc:
        log.info("author fetch failed", extra={"url": ap_id, "error": str(exc)})
        return None


async def _fetch_ancestors(rt: Runtime, start: str, budget: Budget
                           ) -> tuple[Target, _Chain] | str:
    """Walk inReplyTo upwards from `start` until one of our threads; or why not (BLOCKED
    also when an ancestor names a blocked server: the reply is dropped with it)."""
    chain = _Chain()
    current: str | None = start
    seen: set[str] = set()
    authors: dict[str, RemoteActor | parse.IncomingActor] = {}
    for _depth in range(MAX_ANCESTOR_DEPTH):
        if current is None or current in seen:
            return NOT_OURS
        seen.add(current)
        if await unblocked.blocked(rt, [current]):
            return BLOCKED
        obj = await fetch_object(rt, current, budget)
        if obj is None or obj.attributed_to is None:
            return FETCH_FAILED
        if await unblocked.blocked(rt, object_names(obj)):
            return BLOCKED
        author = authors.get(obj.attributed_to) or await _author(rt, obj.attributed_to, budget)
        if author is None:
            return BLOCKED if rt.blocklist.url_blocked(obj.attributed_to) else FETCH_FAILED
        authors[obj.attributed_to] = author
        chain.items.append((obj, author))
        target = await find_target(rt, rt.db.read, obj.in_reply_to)
        if target is not None:
            return target, chain
        current = obj.in_reply_to
    return TOO_DEEP


async def import_remote_reply(
    rt: Runtime, obj: parse.IncomingObject, actor: RemoteActor, activity_id: str | None,
    budget: Budget | None = None, named: Sequence[str] = (),
) -> ImportResult:
    """Turn a remote note into a comment when it answers our post or its thread.

    Nothing is stored if the sender (Forbidden), or anything in `named` (what the activity
    names) or anything an ancestor names is blocked when it commits (reason BLOCKED)."""
    if not obj.in_reply_to:
        return ImportResult(None, "not a reply")
    comment = _prepare(obj, actor, rt.now())

    async def known_parent(tx: Conn) -> ImportResult | None:
        # The common case, a reply to our post or to a comment we hold, is one unit of
        # work: the parent is looked up in the same transaction that stores the reply.
        target = await find_target(rt, tx, obj.in_reply_to)
        if target is None:
            return None
        return await _insert_thread(rt, tx, comment, activity_id, target, _Chain())

    try:
        result = await unblocked.unit(rt, actor.ap_id, known_parent, named=named)
        if result is not None:
            return result
        # Before any fetch: a replayed activity or a known object must cost nothing.
        if activity_id and await comment_store.activity_seen(rt.db.read, activity_id):
            return ImportResult(None, "duplicate activity")
        tombstoned, known = await comment_store.object_state(rt.db.read, obj.id)
        if tombstoned or known:
            return ImportResult(known, "deleted before" if tombstoned else "already known")
        # Fetches on behalf of a sender blocked a moment ago (by another process) do not
        # start: the blocks committed so far are read first.
        await unblocked.before_fetch(rt, actor.ap_id)
        found = await _fetch_ancestors(rt, obj.in_reply_to, budget or Budget())
        if isinstance(found, str):
            return ImportResult(None, found)
        target, chain = found
        everything = [*named, *(n for ancestor, _ in chain.items for n in object_names(ancestor))]
        result = await unblocked.unit(
            rt, actor.ap_id, lambda tx: _insert_thread(rt, tx, comment, activity_id, target, chain),
            named=everything)
        return ImportResult(result.comment_id, result.reason, len(chain.items))
    except _Abort as abort:
        return ImportResult(None, abort.reason)
    except unblocked.NamesBlocked:
        # A block committed meanwhile covers something the reply or an ancestor names.
        return ImportResult(None, BLOCKED)


async def import_fetched(rt: Runtime, obj: parse.IncomingObject, budget: Budget
                         ) -> ImportResult:
    """A note fetched from its own origin by id (a reply that never reached us), stored
    exactly as if it had been delivered: connected to our thread through its ancestors,
    moderated, withheld when its author says so. Only public and unlisted notes."""
    if obj.type not in NOTE_TYPES or not obj.attributed_to:
        return ImportResult(None, "not a note")
    # As for a delivered reply: nothing that names a blocked server is stored.
    if await unblocked.blocked(rt, object_names(obj)):
        return ImportResult(None, BLOCKED)
    tombstoned, known = await comment_store.object_state(rt.db.read, obj.id)
    if tombstoned or known:
        return ImportResult(known, "deleted before" if tombstoned else "already known")
    author = await _author(rt, obj.attributed_to, budget)
    if author is None:
        return ImportResult(None, FETCH_FAILED)
    followers = author.followers_url if isinstance(author, RemoteActor) else author.followers
    if not _visibility(obj, followers).is_public:
        return ImportResult(None, "private")
    if isinstance(author, parse.IncomingActor):
        document = author
        async with rt.db.transaction() as tx:
            author = await actors.store_actor(tx, document, rt.now())
            await consent.enforce(rt, tx, author)
    return await import_remote_reply(rt, obj, author, None, budget, named=object_names(obj))


@dataclass(frozen=True)
class PreparedNote:
    """A remote note made ready to store, before we know where it attaches."""

    obj: parse.IncomingObject
    author: RemoteActor
    content: str
    now: datetime


def _prepare(obj: parse.IncomingObject, author: RemoteActor, now: datetime) -> PreparedNote:
    # Sanitising is the costly part: done on the event loop, before the transaction.
    return PreparedNote(obj, author, sanitize_html(obj.content or ""), now)


async def _insert_thread(rt: Runtime, tx: Conn, reply: PreparedNote, activity_id: str | None,
                         target: Target, chain: _Chain) -> ImportResult:
    now = reply.now
    if activity_id and not await comment_store.mark_activity(tx, activity_id, now):
        raise _Abort("duplicate activity")
    # Checked inside the transaction: a Delete that landed while we fetched wins.
    tombstoned, known = await comment_store.object_state(tx, reply.obj.id)
    if tombstoned:
        return ImportResult(None, "deleted before")
    if known is not None:
        return ImportResult(known, "already known")
    parent_id = target.parent_id
    stored: dict[str, RemoteActor] = {}
    for ancestor, author in reversed(chain.items):
        a_tombstoned, a_known = await comment_store.object_state(tx, ancestor.id)
        if a_tombstoned:
            raise _Abort("ancestor deleted")
        if a_known is None:
            if isinstance(author, parse.IncomingActor):
                if author.id not in stored:
                    stored[author.id] = await actors.store_actor(tx, author, now)
                author = stored[author.id]
            prepared = _prepare(ancestor, author, now)
            status = await moderation_status(rt, tx, author.id)
            new_ancestor = _new_comment(prepared, target, parent_id, status)
            a_known = await _insert(rt, tx, new_ancestor, now, author)
            await _link_media(tx, a_known, ancestor, new_ancestor.attachments, now)
            await _store_links(rt, tx, a_known, ancestor)
        parent_id = a_known
    status = await moderation_status(rt, tx, reply.author.id)
    new = _new_comment(reply, target, parent_id, status)
    new_id = await _insert(rt, tx, new, now, reply.author)
    await _link_media(tx, new_id, reply.obj, new.attachments, now)
    await _store_links(rt, tx, new_id, reply.obj)
    return ImportResult(new_id, "created")


async def _link_media(tx: Conn, comment_id: int, obj: parse.IncomingObject,
                      attachments: tuple[Attachment, ...], now: datetime) -> None:
    await media.link_comment(tx, comment_id, obj.emojis,
                             [(a.url, a.media_type) for a in attachments], now)


async def _insert(rt: Runtime, tx: Conn, new: NewComment, now: datetime,
                  author: RemoteActor) -> int:
    """Store a fediverse comment, withheld if its author says so, and queue word of it;
    with `[spam] check_fediverse` a public one is held until the spam service has looked
    at it (through the queue)."""
    checked = new.visibility.is_public and spam.checks_fediverse(rt)
    policy = new.status
    if checked:
        new = replace(new, status=CommentStatus.PENDING)
    comment_id = await comment_store.insert(tx, new, now)
    # Before anyone hears of it: a withheld reply is news for the owner only.
    await consent.enforce_new(rt, tx, author)
    if checked:
        await spam.queue_check(rt, tx, comment_id, policy)
    else:
        await notify.comment_stored(rt, tx, comment_id)
    return comment_id


def conversation_links(rt: Runtime, obj: parse.IncomingObject
                       ) -> tuple[str | None, str | None, int | None]:
    """(remote context collection, replies collection, its size) an object names: where
    replies to it that never reached us may be found. Our own context is not one."""
    context = obj.context if obj.context and obj.context.startswith(("https://", "http://")) \
        and not rt.urls.is_local(obj.context) else None
    replies = obj.replies
    if replies is None or (replies.id is not None and not same_origin(replies.id, obj.id)):
        return context, None, None
    return context, replies.id, replies.total_items


async def _store_links(rt: Runtime, tx: Conn, comment_id: int,
                       obj: parse.IncomingObject) -> None:
    context, replies_url, total = conversation_links(rt, obj)
    if context or replies_url or total is not None:
        await conversation_store.set_links(tx, comment_id, context=context,
                                           replies_url=replies_url, replies_total=total)


_VISIBILITY_RANK = {
    ModelVisibility.PUBLIC: 3, ModelVisibility.UNLISTED: 2,
    ModelVisibility.FOLLOWERS: 1, ModelVisibility.DIRECT: 0,
}


async def apply_remote_edit(rt: Runtime, obj: parse.IncomingObject, actor: RemoteActor,
                            activity_id: str, named: Sequence[str] = ()) -> str:
    """Edit a remote comment in place; never widens its visibility, ignores stale updates.
    Refused like an import when the sender or anything in `named` is blocked."""
    edit = _prepare(obj, actor, rt.now())

    async def work(tx: Conn) -> str:
        if not await comment_store.mark_activity(tx, activity_id, edit.now):
            return "duplicate activity"
        comment = await comment_store.by_ap_id(tx, obj.id)
        if comment is None or comment.actor is None or comment.actor.id != actor.id:
            return "unknown or not theirs"
        if comment.status is CommentStatus.DELETED:
            return "deleted"
        updated = obj.updated or edit.now
        # Updates may arrive out of order (retries): only a newer version replaces ours.
        if updated <= (comment.updated_at or comment.published_at):
            return "stale update"
        await apply_version(tx, comment, edit)
        return "edited"

    return await unblocked.unit(rt, actor.ap_id, work, named=named)


def prepare_version(rt: Runtime, obj: parse.IncomingObject, author: RemoteActor) -> PreparedNote:
    """A fetched version of a remote comment, sanitised, ready for `apply_version`."""
    return _prepare(obj, author, rt.now())


def narrower(obj: parse.IncomingObject, comment: Comment) -> ModelVisibility | None:
    """The object's audience when it is narrower than the one its author gave the comment
    (a public reply made followers-only); None otherwise: visibility never widens."""
    followers = comment.actor.followers_url if comment.actor is not None else None
    visibility = _visibility(obj, followers)
    if _VISIBILITY_RANK[visibility] < _VISIBILITY_RANK[comment.audience]:
        return visibility
    return None


def changed(version: PreparedNote, comment: Comment) -> bool:
    """Whether a fetched version shows something else than the stored comment."""
    obj = version.obj
    return (version.content, _summary(obj), obj.sensitive, _attachments(obj)) != (
        comment.content, comment.summary, comment.sensitive, comment.attachments)


async def narrow(tx: Conn, comment: Comment, audience: ModelVisibility) -> None:
    """Its author gave a comment a narrower audience: a public one moves to private (kept
    for the owner); a withheld one stays withheld, remembering the narrower audience."""
    if comment.withheld is not None:
        await consent_store.set_addressed(tx, comment.id, audience.value)
    else:
        await comment_store.set_visibility(tx, comment.id, audience)


async def apply_version(tx: Conn, comment: Comment, version: PreparedNote) -> None:
    """Store a newer version of a remote comment, as an Update does: its content, content
    warning, attachments and mentions; its audience only when narrower (a withheld reply
    stays withheld, with the narrower audience remembered)."""
    obj = version.obj
    audience = narrower(obj, comment)
    if audience is not None:
        await narrow(tx, comment, audience)
    attachments = _attachments(obj)
    await comment_store.update_content(
        tx, comment.id, content=version.content, summary=_summary(obj),
        sensitive=obj.sensitive, language=obj.language, attachments=attachments,
        mentions=tuple(m.href for m in obj.mentions[:MAX_MENTIONS]),
        updated_at=obj.updated or version.now,
    )
    await _link_media(tx, comment.id, obj, attachments, version.now)


async def remove_remote(rt: Runtime, object_id: str, actor: RemoteActor, activity_id: str
                        ) -> str:
    """Delete of a note by its author: tombstone (kept if it has replies) or removal."""
    now = rt.now()

    async def work(tx: Conn) -> str:
        if not await comment_store.mark_activity(tx, activity_id, now):
            return "duplicate activity"
        comment = await comment_store.by_ap_id(tx, object_id)
        if comment is None:
            # Remember the id so a late or concurrent Create cannot bring it back; only ids
            # on the deleting actor's own origin, so nobody can pre-delete others' notes.
            if same_origin(object_id, actor.ap_id):
                await comment_store.add_tombstone(tx, object_id, now)
            return "unknown object"
        if comment.actor is None or comment.actor.id != actor.id:
            return "not theirs"
        if comment.status is not CommentStatus.DELETED:
            await notify.comment_deleted(rt, tx, comment, "author")
        return await comment_store.remove(tx, comment, now)

    return await rt.db.unit(work)


async def remove_actor_content(conn: Conn, actor_id: int, now: datetime) -> int:
    """Remove every comment of an actor (tombstones where replies hang below)."""
    count = 0
    for comment in await comment_store.by_actor(conn, actor_id):
        # Re-read: removing a reply may already have removed its deleted parent.
        fresh = await comment_store.by_id(conn, comment.id)
        if fresh is not None and fresh.status is not CommentStatus.DELETED:
            await comment_store.remove(conn, fresh, now)
            count += 1
    return count
