"""The blog answering in its threads: the owner's replies and approved reader comments
become Notes from the blog actor, stored as comments, served at their ids and delivered
to the people they answer — Mastodon then threads them and notifies."""

from __future__ import annotations

import html
import logging
from typing import Any

from fedcomments.ap import outgoing
from fedcomments.ap.build import PUBLIC
from fedcomments.ap.sanitize import text_to_html
from fedcomments.errors import FedcommentsError, Gone, InvalidInput, NotFound
from fedcomments.model import Comment, CommentStatus, Origin, Post, RemoteActor, Visibility
from fedcomments.runtime import Runtime
from fedcomments.services import actors, notify, publish
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store import posts as post_store
from fedcomments.store import queue
from fedcomments.store import replies as reply_store
from fedcomments.store.comments import NewComment
from fedcomments.store.conn import Conn

log = logging.getLogger("fedcomments.replies")

MAX_TEXT = 5_000
#: Remote people one answer may address (parent author, mentions, thread branch).
MAX_PARTICIPANTS = 20
MAX_BRANCH_DEPTH = 64
#: Replies listed inline in a Note's `replies` collection before paging.
REPLIES_PAGE = 50


def object_id(rt: Runtime, comment: Comment) -> str:
    """A comment's ActivityPub id: its own, or ours for a local comment never federated."""
    return comment.ap_id or rt.urls.comment(comment.id)


def _validated_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("text: must not be empty", field="text")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text: at most {MAX_TEXT} characters", field="text")
    return text


async def _live_post(conn: Conn, post_id: int) -> Post:
    post = await post_store.by_id(conn, post_id)
    if post is None or post.is_deleted:
        raise Gone("the comment's post was deleted")
    return post


def _answerable(parent: Comment) -> None:
    if parent.status is CommentStatus.DELETED:
        raise Gone(f"comment {parent.id} was deleted")
    if parent.status is CommentStatus.REJECTED:
        raise InvalidInput(f"comment {parent.id} was rejected; approve it before answering",
                           field="id")
    # A public answer under a comment nobody can see would dangle in the thread; a
    # private comment is never shown, so it can be answered whatever its status.
    if parent.status is CommentStatus.PENDING and parent.visibility.is_public:
        raise InvalidInput(f"comment {parent.id} is pending; approve it before answering",
                           field="id")


async def _resolve(rt: Runtime, ap_id: str) -> RemoteActor | None:
    """A known actor, or fetched once; None when it cannot be reached (it is skipped)."""
    known = await actor_store.by_ap_id(rt.db.read, ap_id)
    if known is not None:
        return known
    try:
        return await actors.get_actor(rt, ap_id)
    except FedcommentsError as exc:
        log.info("mentioned actor unreachable", extra={"actor": ap_id, "error": str(exc)})
        return None


async def _recipients(rt: Runtime, parent: Comment, private: bool) -> list[RemoteActor]:
    """Who an answer addresses, parent's author first.

    A public answer reaches the parent's author, the people it mentions and the authors
    (and mentions) further up that branch of the thread; a private one only the parent's
    own audience: its author and the people it mentions.
    """
    wanted: list[str] = []
    if parent.actor is not None:
        wanted.append(parent.actor.ap_id)
    wanted += parent.mentions
    current = parent
    for _depth in range(MAX_BRANCH_DEPTH if not private else 0):
        if current.parent_id is None:
            break
        ancestor = await comment_store.by_id(rt.db.read, current.parent_id)
        if ancestor is None:
            break
        if ancestor.visibility.is_public and ancestor.status in (CommentStatus.APPROVED,
                                                                 CommentStatus.PENDING):
            if ancestor.actor is not None:
                wanted.append(ancestor.actor.ap_id)
            wanted += ancestor.mentions
        current = ancestor
    found: list[RemoteActor] = []
    for ap_id in dict.fromkeys(wanted):
        if len(found) >= MAX_PARTICIPANTS:
            break
        if rt.urls.is_local(ap_id) or rt.blocklist.url_blocked(ap_id):
            continue
        actor = await _resolve(rt, ap_id)
        if actor is not None and publish.allowed(rt, actor, publish.preferred_inbox(actor)):
            found.append(actor)
    return found


def _mentioned(actor: RemoteActor) -> outgoing.Mentioned:
    return outgoing.Mentioned(ap_id=actor.ap_id, handle=actor.handle,
                              url=actor.url or actor.ap_id)


async def owner_reply(rt: Runtime, comment_id: int, text: str) -> Comment:
    """The owner answers comment `comment_id` with plain `text` (links and line breaks
    kept); stored, then delivered in the same transaction as its storage."""
    text = _validated_text(text)
    parent = await comment_store.by_id(rt.db.read, comment_id)
    if parent is None:
        raise NotFound(f"no comment {comment_id}")
    _answerable(parent)
    post = await _live_post(rt.db.read, parent.post_id)
    private = not parent.visibility.is_public
    recipients = await _recipients(rt, parent, private)
    content = text_to_html(text)
    if parent.actor is not None and recipients and recipients[0].ap_id == parent.actor.ap_id:
        content = outgoing.prefix_paragraph(content, outgoing.mention_html(
            _mentioned(recipients[0])))
    now = rt.now()
    async with rt.db.transaction() as tx:
        fresh = await comment_store.by_id(tx, comment_id)
        if fresh is None:
            raise NotFound(f"no comment {comment_id}")
        _answerable(fresh)
        new_id = await comment_store.insert(tx, NewComment(
            post_id=post.id, parent_id=parent.id, origin=Origin.OWNER,
            # The same private audience for a private comment; otherwise to the author,
            # cc Public (unlisted, like Mastodon's replies) and the followers.
            visibility=Visibility.DIRECT if private else Visibility.UNLISTED,
            status=CommentStatus.APPROVED, content=content, published_at=now,
            author_name=rt.settings.actor.name, source=text,
            in_reply_to=object_id(rt, parent), mentions=tuple(a.ap_id for a in recipients),
        ), now)
        ap_id = rt.urls.comment(new_id)
        await comment_store.set_ap_id(tx, new_id, ap_id)
        comment = await comment_store.by_id(tx, new_id)
        assert comment is not None
        note = await note_document(rt, tx, comment)
        inboxes = [i for a in recipients if (i := publish.preferred_inbox(a))]
        if not private:
            inboxes += await publish.follower_inboxes(rt, tx)
        count = await publish.fan_out(rt, tx, outgoing.create(rt.urls, f"{ap_id}#create", note),
                                      inboxes, now)
        await notify.comment_stored(rt, tx, new_id)
    log.info("owner reply", extra={"comment": new_id, "parent": parent.id, "deliveries": count})
    return comment


async def federate_local_comment(rt: Runtime, comment_id: int) -> None:
    """Send an approved reader comment into the fediverse thread, as a Note by the blog
    naming the reader, to the author of the fediverse comment it answers.

    Idempotent: the Create's id is derived from the comment, so calling it again (a second
    approval) enqueues nothing new.
    """
    comment = await comment_store.by_id(rt.db.read, comment_id)
    if comment is None:
        raise NotFound(f"no comment {comment_id}")
    if comment.origin is not Origin.LOCAL:
        raise InvalidInput(f"comment {comment_id} is not a reader comment", field="id")
    if not comment.is_public:
        raise InvalidInput(f"comment {comment_id} is not approved and public", field="id")
    await _live_post(rt.db.read, comment.post_id)
    now = rt.now()
    async with rt.db.transaction() as tx:
        ap_id = comment.ap_id or rt.urls.comment(comment.id)
        if comment.ap_id is None:
            # Replies from the fediverse name this id in inReplyTo; it must find the comment.
            await comment_store.set_ap_id(tx, comment.id, ap_id)
            comment = await comment_store.by_id(tx, comment.id)
            assert comment is not None
        parent_author = await _remote_parent_author(rt, tx, comment)
        note = await note_document(rt, tx, comment)
        inboxes = [i for i in [publish.preferred_inbox(parent_author)] if i] if (
            parent_author is not None) else []
        count = await publish.fan_out(rt, tx, outgoing.create(rt.urls, f"{ap_id}#create", note),
                                      inboxes, now)
    log.info("reader comment federated", extra={"comment": comment_id, "deliveries": count})


async def comment_withdrawn(rt: Runtime, tx: Conn, comment: Comment) -> int:
    """Delete{Tombstone} for one of our Notes (owner answer or federated reader comment)
    to every inbox its Create went to. Call it in the transaction that deletes it."""
    if comment.origin is Origin.REMOTE or comment.ap_id is None:
        return 0
    inboxes = await queue.inboxes_of(tx, f"{comment.ap_id}#create")
    now = rt.now()
    activity = outgoing.delete(rt.urls, f"{comment.ap_id}#delete-{int(now.timestamp())}",
                               object_id=comment.ap_id, former_type="Note", when=now,
                               to=[PUBLIC], cc=[])
    if not comment.visibility.is_public:
        activity["to"] = list(comment.mentions)
    return await publish.fan_out(rt, tx, activity, inboxes, now)


async def comment_edited(rt: Runtime, tx: Conn, comment_id: int) -> int:
    """Update{Note} with the comment as it now stands (its `updated_at` set by the caller,
    since Mastodon ignores an Update whose `updated` did not move) to the same inboxes."""
    comment = await comment_store.by_id(tx, comment_id)
    if comment is None or comment.origin is Origin.REMOTE or comment.ap_id is None:
        return 0
    inboxes = await queue.inboxes_of(tx, f"{comment.ap_id}#create")
    now = rt.now()
    note = await note_document(rt, tx, comment)
    activity = outgoing.update(rt.urls, f"{comment.ap_id}#update-{int(now.timestamp())}",
                               note, now)
    return await publish.fan_out(rt, tx, activity, inboxes, now)


async def _remote_parent_author(rt: Runtime, conn: Conn, comment: Comment) -> RemoteActor | None:
    if comment.parent_id is None:
        return None
    parent = await comment_store.by_id(conn, comment.parent_id)
    if parent is None or parent.actor is None or not parent.visibility.is_public:
        return None
    actor = parent.actor
    return actor if publish.allowed(rt, actor, publish.preferred_inbox(actor)) else None


async def note_document(rt: Runtime, conn: Conn, comment: Comment) -> dict[str, Any]:
    """The Note for an owner or local comment (no @context), the same whether it is
    delivered or fetched at its id."""
    post = await post_store.by_id(conn, comment.post_id)
    assert post is not None
    parent = await comment_store.by_id(conn, comment.parent_id) if comment.parent_id else None
    in_reply_to = comment.in_reply_to or (object_id(rt, parent) if parent else post.ap_id)
    if comment.origin is Origin.LOCAL:
        author = await _remote_parent_author(rt, conn, comment)
        mentioned = [_mentioned(author)] if author is not None else []
        name = html.escape(comment.author_name or "A reader", quote=False)
        content = f"<p>{name} wrote:</p>{comment.content}"
        if mentioned:
            content = outgoing.prefix_paragraph(content, outgoing.mention_html(mentioned[0]))
    else:
        mentioned = []
        for ap_id in comment.mentions:
            actor = await actor_store.by_ap_id(conn, ap_id)
            mentioned.append(_mentioned(actor) if actor is not None
                             else outgoing.Mentioned(ap_id=ap_id, handle=ap_id, url=ap_id))
        content = comment.content
    to, cc = _addressing(rt, comment, [m.ap_id for m in mentioned])
    return outgoing.note(
        rt.urls, note_id=object_id(rt, comment), in_reply_to=in_reply_to,
        context=rt.urls.post_context(post.slug), content=content,
        published=comment.published_at, to=to, cc=cc, mentions=mentioned,
        url=rt.urls.comment(comment.id),
        replies=await replies_collection(rt, conn, post_id=post.id, parent_id=comment.id,
                                         collection_id=rt.urls.comment_replies(comment.id)),
        updated=comment.updated_at,
    )


def _addressing(rt: Runtime, comment: Comment, mentioned: list[str]) -> tuple[list[str],
                                                                                  list[str]]:
    if not comment.visibility.is_public:
        return mentioned, []
    followers = [rt.urls.followers] if comment.origin is Origin.OWNER else []
    if not mentioned:
        return [PUBLIC], followers
    return mentioned[:1], [PUBLIC, *followers, *mentioned[1:]]


async def replies_collection(rt: Runtime, conn: Conn, *, post_id: int, parent_id: int | None,
                             collection_id: str) -> dict[str, Any]:
    """The public comments directly under a post or a comment, first page inline."""
    total, refs = await reply_store.children(conn, post_id=post_id, parent_id=parent_id,
                                             limit=REPLIES_PAGE)
    items = [r.ap_id or rt.urls.comment(r.id) for r in refs]
    following = f"{collection_id}?page=2" if total > REPLIES_PAGE else None
    return outgoing.replies_collection(collection_id, items, total, following)


async def replies_page(rt: Runtime, conn: Conn, *, post_id: int, parent_id: int | None,
                       collection_id: str, page: int) -> dict[str, Any]:
    total, refs = await reply_store.children(conn, post_id=post_id, parent_id=parent_id,
                                             limit=REPLIES_PAGE,
                                             offset=(page - 1) * REPLIES_PAGE)
    items = [r.ap_id or rt.urls.comment(r.id) for r in refs]
    following = f"{collection_id}?page={page + 1}" if page * REPLIES_PAGE < total else None
    return outgoing.replies_page(collection_id, page, items, following)
