"""The owner's moderation: list, show, approve, reject, delete and answer comments; see
followers and received reports. Every change to several comments is one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from fedcomments.ap.sanitize import plain_text
from fedcomments.errors import InvalidInput, NotFound
from fedcomments.model import Comment, CommentStatus, Follower, Origin
from fedcomments.paging import Page, decode_cursor, encode_cursor, parse_limit
from fedcomments.runtime import Runtime
from fedcomments.services import local_comments, notify, replies, spam
from fedcomments.services import posts as post_service
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store import moderation as mod_store
from fedcomments.store import spam as spam_store
from fedcomments.store.moderation import STATUS_FILTERS
from fedcomments.store.moderation import ListedComment as ListedComment
from fedcomments.store.moderation import Report as Report

STATUSES = tuple(STATUS_FILTERS)
MAX_LIST = 1000
MAX_IDS = 500


@dataclass(frozen=True)
class CommentDetail:
    listed: ListedComment
    replies: int
    reactions: dict[str, int]


@dataclass(frozen=True)
class Outcome:
    """What one moderation action did to one comment."""

    id: int
    #: the comment's status afterwards ("removed" when the row is gone)
    status: str
    changed: bool
    author_trusted: bool = False


def parse_ids(values: Iterable[object]) -> list[int]:
    """Comment ids from the CLI or a JSON body: positive integers, duplicates dropped."""
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise InvalidInput(f"id: {value!r} is not a comment id", field="id")
        ids.append(int(text))
    if not ids:
        raise InvalidInput("id: at least one comment id is needed", field="id")
    if len(ids) > MAX_IDS:
        raise InvalidInput(f"id: at most {MAX_IDS} comments at once", field="id")
    return list(dict.fromkeys(ids))


async def list_comments(rt: Runtime, *, post: str | None = None, status: str = "all",
                        limit: int = 100) -> list[ListedComment]:
    return (await comments_page(rt, post=post, status=status, limit=limit)).items


async def comments_page(rt: Runtime, *, post: str | None = None, status: str = "all",
                        limit: int | str | None = 100, cursor: str | None = None
                        ) -> Page[ListedComment]:
    """One page of comments, newest first, after `cursor` (from the previous page)."""
    if status not in STATUS_FILTERS:
        raise InvalidInput(f"status: expected one of {', '.join(STATUSES)}", field="status")
    size = parse_limit(limit, maximum=MAX_LIST)
    key = decode_cursor("comments", cursor, (str, int))
    post_id = (await post_service.get_post(rt, post)).id if post else None
    items, last = await mod_store.list_comments(rt.db.read, status=status, post_id=post_id,
                                                limit=size, key=key)
    return Page(await _with_verdicts(rt, items),
                encode_cursor("comments", last) if last else None)


async def _with_verdicts(rt: Runtime, found: list[ListedComment]) -> list[ListedComment]:
    """The spam service's verdicts beside the comments (the admin decides with them)."""
    verdicts = await spam_store.verdicts(rt.db.read, [x.comment.id for x in found])
    if not verdicts:
        return found
    return [replace(x, spam=verdicts.get(x.comment.id)) for x in found]


async def get_comment(rt: Runtime, comment_id: int) -> CommentDetail:
    comment = await comment_store.by_id(rt.db.read, comment_id)
    if comment is None:
        raise NotFound(f"comment: no comment {comment_id}")
    slug = await mod_store.post_slug(rt.db.read, comment.post_id) or ""
    [listed] = await _with_verdicts(rt, [ListedComment(comment, slug)])
    return CommentDetail(listed,
                         await mod_store.reply_count(rt.db.read, comment_id),
                         await mod_store.reaction_counts(rt.db.read, comment_id))


async def _load(conn: Any, ids: list[int]) -> list[Comment]:
    """Every comment asked for, or NotFound naming the missing ones (nothing changed)."""
    found = await mod_store.existing_comment_ids(conn, ids)
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise NotFound(f"comment: no comment {', '.join(missing)}")
    comments = [await comment_store.by_id(conn, i) for i in ids]
    return [c for c in comments if c is not None]


async def approve_comments(rt: Runtime, ids: list[int], *,
                           trust_author: bool = False) -> list[Outcome]:
    """Show comments publicly (if their audience allows); optionally trust their authors."""
    outcomes: list[Outcome] = []
    async with rt.db.transaction() as tx:
        comments = await _load(tx, ids)
        for c in comments:
            if c.status is CommentStatus.DELETED:
                raise InvalidInput(f"comment: {c.id} is deleted and cannot be approved",
                                   field="id")
            if trust_author and c.actor is None:
                raise InvalidInput(f"comment: {c.id} is not from a fediverse account; "
                                   "--trust-author applies to those only", field="id")
        for c in comments:
            changed = c.status is not CommentStatus.APPROVED
            if changed:
                await comment_store.set_status(tx, c.id, CommentStatus.APPROVED)
                await spam.report(rt, tx, c, CommentStatus.APPROVED)
                await notify.comment_approved(rt, tx, c)
            if trust_author and c.actor is not None:
                await actor_store.set_trusted(tx, c.actor.id, True)
            outcomes.append(Outcome(c.id, "approved", changed,
                                    author_trusted=trust_author and c.actor is not None))
    for c in comments:
        # An approved reader comment joins the fediverse thread (after the commit).
        if c.origin is Origin.LOCAL and c.visibility.is_public:
            await local_comments.federate(rt, c.id)
    return outcomes


async def reject_comments(rt: Runtime, ids: list[int]) -> list[Outcome]:
    """Hide comments from every public surface; they are kept for audit."""
    outcomes: list[Outcome] = []
    async with rt.db.transaction() as tx:
        comments = await _load(tx, ids)
        for c in comments:
            if c.status is CommentStatus.DELETED:
                raise InvalidInput(f"comment: {c.id} is deleted", field="id")
        for c in comments:
            changed = c.status is not CommentStatus.REJECTED
            if changed:
                await comment_store.set_status(tx, c.id, CommentStatus.REJECTED)
                await spam.report(rt, tx, c, CommentStatus.REJECTED)
                if c.status is CommentStatus.APPROVED:
                    # Our own Notes (owner answers, federated reader comments) leave the
                    # fediverse thread too.
                    await replies.comment_withdrawn(rt, tx, c)
            outcomes.append(Outcome(c.id, "rejected", changed))
    return outcomes


async def delete_comments(rt: Runtime, ids: list[int]) -> list[Outcome]:
    """Delete comments: a tombstone stays where replies hang below, else the row goes."""
    outcomes: list[Outcome] = []
    now = rt.now()
    async with rt.db.transaction() as tx:
        for c in await _load(tx, ids):
            # A parent removed earlier in this loop may already be gone.
            fresh = await comment_store.by_id(tx, c.id)
            if fresh is None or fresh.status is CommentStatus.DELETED:
                outcomes.append(Outcome(c.id, "deleted" if fresh else "removed", False))
                continue
            if fresh.status is CommentStatus.APPROVED:
                await replies.comment_withdrawn(rt, tx, fresh)
            await notify.comment_deleted(rt, tx, fresh, "owner")
            how = await comment_store.remove(tx, fresh, now)
            outcomes.append(Outcome(c.id, "deleted" if how == "tombstoned" else "removed", True))
    return outcomes


async def reply_to_comment(rt: Runtime, comment_id: int, text: str) -> Comment:
    """The owner answers a comment (published by the blog actor, delivered to its author)."""
    await get_comment(rt, comment_id)
    return await replies.owner_reply(rt, comment_id, text)


async def list_followers(rt: Runtime) -> list[Follower]:
    return await actor_store.list_followers(rt.db.read, limit=100_000)


async def followers_page(rt: Runtime, *, limit: int | str | None = 100,
                         cursor: str | None = None) -> Page[Follower]:
    """One page of followers, oldest first, after `cursor`."""
    size = parse_limit(limit, maximum=MAX_LIST)
    key = decode_cursor("followers", cursor, (str, int))
    items, last = await actor_store.followers_page(rt.db.read, limit=size, key=key)
    return Page(items, encode_cursor("followers", last) if last else None)


async def list_reports(rt: Runtime) -> list[Report]:
    return (await mod_store.list_reports(rt.db.read))[0]


async def reports_page(rt: Runtime, *, limit: int | str | None = 100,
                       cursor: str | None = None) -> Page[Report]:
    """One page of received reports, newest first, after `cursor`."""
    size = parse_limit(limit, maximum=MAX_LIST)
    key = decode_cursor("reports", cursor, (str, int))
    items, last = await mod_store.list_reports(rt.db.read, limit=size, key=key)
    return Page(items, encode_cursor("reports", last) if last else None)


# --- JSON shapes (CLI --json and admin API) ---------------------------------------------


def author_json(c: Comment) -> dict[str, Any]:
    if c.actor is not None:
        return {"name": c.actor.display_name, "handle": c.actor.handle,
                "actor": c.actor.ap_id, "url": c.actor.url}
    return {"name": c.author_name or ("owner" if c.origin is Origin.OWNER else "anonymous"),
            "handle": None, "actor": None, "url": c.author_website}


def comment_json(listed: ListedComment) -> dict[str, Any]:
    c = listed.comment
    return {
        "id": c.id,
        "post": {"id": c.post_id, "slug": listed.post_slug},
        "parent_id": c.parent_id,
        "origin": c.origin.value,
        "status": c.status.value,
        "visibility": c.visibility.value,
        "author": author_json(c),
        "published": c.published_at.isoformat(),
        "updated": c.updated_at.isoformat() if c.updated_at else None,
        "text": plain_text(c.content),
        "content": c.content,
        "summary": c.summary,
        "ap_id": c.ap_id,
        "url": c.url,
        "spam": listed.spam,
        "imported": imported_json(c),
        # Kept for the owner only because its author said so (an opt-out tag …): why,
        # and the audience they gave it.
        "withheld": {"reason": c.withheld, "audience": c.audience.value}
        if c.withheld else None,
    }


def imported_json(c: Comment) -> dict[str, str] | None:
    """Where an imported comment came from (admin views only), or None."""
    if c.imported is None:
        return None
    return {"source": c.imported.source, "site": c.imported.site, "id": c.imported.id}


def comment_detail_json(d: CommentDetail) -> dict[str, Any]:
    c = d.listed.comment
    return {**comment_json(d.listed), "in_reply_to": c.in_reply_to, "language": c.language,
            "sensitive": c.sensitive, "attachments": [a.url for a in c.attachments],
            "replies": d.replies, "reactions": d.reactions,
            "deleted": c.deleted_at.isoformat() if c.deleted_at else None}


def outcome_json(o: Outcome) -> dict[str, Any]:
    return {"id": o.id, "status": o.status, "changed": o.changed,
            "author_trusted": o.author_trusted}


def follower_json(f: Follower) -> dict[str, Any]:
    a = f.actor
    return {"actor": a.ap_id, "handle": a.handle, "name": a.display_name,
            "inbox": a.shared_inbox or a.inbox, "since": f.created_at.isoformat()}


def report_json(r: Report) -> dict[str, Any]:
    return {"id": r.id, "ap_id": r.ap_id, "actor": r.actor_ap_id, "handle": r.actor_handle,
            "content": plain_text(r.content), "objects": list(r.object_ids),
            "received": r.created_at.isoformat()}
