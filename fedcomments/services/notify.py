"""Word of new comments: webhook events, mail to the owner (held, published, digest) and
to readers who asked to hear of replies, all queued in the transaction of the change.

The hooks run inside the caller's transaction (inbox units included): they await only the
connection, and cost nothing when neither mail nor a webhook is configured.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from fedcomments.ap.sanitize import plain_text
from fedcomments.model import Comment, CommentStatus, JobKind, Origin, Post, RemoteActor
from fedcomments.names import host_of
from fedcomments.runtime import Runtime
from fedcomments.services import links, mail
from fedcomments.store import comments as comment_store
from fedcomments.store import local_comments as local_store
from fedcomments.store import notify as notify_store
from fedcomments.store import posts as post_store
from fedcomments.store import queue
from fedcomments.store import spam as spam_store
from fedcomments.store.conn import Conn
from fedcomments.urls import comment_on_blog

log = logging.getLogger("fedcomments.notify")

EVENTS = ("comment.created", "comment.held", "comment.approved", "comment.deleted",
          "report.created", "follower.added")
#: Header carrying `sha256=` and the hex HMAC-SHA256 of the body under the webhook secret.
SIGNATURE_HEADER = "X-Fedcomments-Signature"
EVENT_HEADER = "X-Fedcomments-Event"
DIGEST_PERIODS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
#: A reader's address gets at most this many confirmation requests a day (the form must
#: not become a way to flood someone else's mailbox); each subscription needs its own.
CONFIRMATIONS_PER_DAY = 3
#: How often housekeeping looks for a digest that is due and prunes spent links.
CHECK_INTERVAL = timedelta(minutes=1)
OWNER_INBOX = "mail:owner"


def enabled(rt: Runtime) -> bool:
    n = rt.settings.notify
    return bool(n.smtp_host or n.webhook_url)


def link_secret(rt: Runtime) -> bytes:
    """Links are signed with a key derived from the blog's private key (links.py)."""
    return rt.keys.private_pem.encode()


# --- what is said about a comment ----------------------------------------------------------


def _author(c: Comment) -> dict[str, Any]:
    if c.actor is not None:
        return {"name": c.actor.display_name, "handle": c.actor.handle,
                "actor": c.actor.ap_id, "url": c.actor.url}
    return {"name": c.author_name or "anonymous", "handle": None, "actor": None,
            "url": c.author_website}


def _author_line(c: Comment) -> str:
    a = _author(c)
    return f"{a['name']} ({a['handle']})" if a["handle"] else str(a["name"])


def public_url(c: Comment, post: Post) -> str | None:
    return comment_on_blog(post.permalink, c.id) if c.is_public else None


def facts(c: Comment, post: Post, spam: str | None = None) -> mail.CommentFacts:
    return mail.CommentFacts(
        id=c.id, author=_author_line(c), text=plain_text(c.content), post_title=post.title,
        post_url=post.permalink, url=public_url(c, post), status=c.status.value,
        private=not c.visibility.is_public, published=c.published_at, spam=spam)


def comment_payload(c: Comment, post: Post, spam: str | None) -> dict[str, Any]:
    """A comment in a webhook event. A reader's email address is never part of it."""
    return {
        "id": c.id, "parent_id": c.parent_id, "origin": c.origin.value,
        "status": c.status.value, "visibility": c.visibility.value, "author": _author(c),
        "text": plain_text(c.content), "content": c.content,
        "published": c.published_at.isoformat(), "url": public_url(c, post),
        "ap_id": c.ap_id, "spam": spam,
        "post": {"id": post.id, "slug": post.slug, "title": post.title,
                 "permalink": post.permalink},
    }


def envelope(rt: Runtime, to: str) -> mail.Envelope:
    n = rt.settings.notify
    domain = host_of(rt.settings.server.base_url) or "localhost"
    # An IP address is written as a domain literal on the right of the @ (RFC 5321 4.1.3).
    literal = f"[{domain}]" if ":" in domain or domain.replace(".", "").isdigit() else domain
    return mail.Envelope(sender=n.sender or f"fedcomments@{literal}", to=to,
                         blog_name=rt.settings.actor.name, domain=domain)


def _config(rt: Runtime) -> str | None:
    source = rt.settings.source
    return None if source.startswith("<") else source


# --- queueing ------------------------------------------------------------------------------


async def _webhook(rt: Runtime, tx: Conn, event: str, data: dict[str, Any],
                   now: datetime) -> None:
    url = rt.settings.notify.webhook_url
    if not url:
        return
    event_id = uuid.uuid4().hex
    body = json.dumps({"event": event, "id": event_id, "created": now.isoformat(),
                       "blog": rt.settings.server.base_url, "data": data},
                      ensure_ascii=False, separators=(",", ":")).encode()
    await queue.enqueue(tx, activity_id=f"webhook:{event}:{event_id}", inbox=url, body=body,
                        now=now, kind=JobKind.WEBHOOK)


def mail_body(sender: str, to: str, message: bytes) -> bytes:
    """A mail job's body: the envelope as one JSON line, then the message."""
    return json.dumps({"from": sender, "to": [to]}).encode() + b"\n" + message


def split_mail_body(body: bytes) -> tuple[str, list[str], bytes]:
    head, _, message = body.partition(b"\n")
    envelope_ = json.loads(head)
    return str(envelope_["from"]), [str(t) for t in envelope_["to"]], message


async def _mail(rt: Runtime, tx: Conn, key: str, inbox: str, env: mail.Envelope,
                message: bytes, now: datetime) -> bool:
    """Queue one mail; `key` makes it once-only (a second approval mails nobody twice)."""
    return await queue.enqueue(tx, activity_id=f"mail:{key}", inbox=inbox,
                               body=mail_body(env.sender, env.to, message), now=now,
                               kind=JobKind.MAIL, host=f"smtp:{rt.settings.notify.smtp_host}")


async def _spam_verdict(rt: Runtime, tx: Conn, comment_id: int) -> str | None:
    if not rt.settings.spam.enabled:
        return None
    check = await spam_store.get(tx, comment_id)
    return check.verdict if check else None


# --- the hooks -----------------------------------------------------------------------------


async def comment_stored(rt: Runtime, tx: Conn, comment_id: int) -> None:
    """A new comment (from the fediverse, the form, or the owner's answer) was stored in
    `tx`."""
    if not enabled(rt):
        return
    c = await comment_store.by_id(tx, comment_id)
    if c is None:
        return
    post = await post_store.by_id(tx, c.post_id)
    if post is None:
        return
    now = rt.now()
    if c.origin is Origin.OWNER:
        # The owner knows what they wrote; the reader they answer may want to hear of it.
        if c.visibility.is_public:
            await _reply_mail(rt, tx, c, post, now)
        return
    spam = await _spam_verdict(rt, tx, c.id)
    payload = comment_payload(c, post, spam)
    await _webhook(rt, tx, "comment.created", payload, now)
    n = rt.settings.notify
    if c.status is CommentStatus.PENDING:
        await _webhook(rt, tx, "comment.held", payload, now)
        if n.to:
            await _held_mail(rt, tx, c, post, spam, now)
        return
    if c.status is not CommentStatus.APPROVED:
        return
    private = not c.visibility.is_public
    if n.to and (private or n.digest == "off"):
        env = envelope(rt, n.to)
        await _mail(rt, tx, f"published:{c.id}", OWNER_INBOX, env, mail.published_comment(
            env, facts(c, post, spam), config=_config(rt), now=now), now)
    elif n.to:
        await notify_store.add_digest_item(tx, c.id, now)
    if not private:
        await _reply_mail(rt, tx, c, post, now)


async def _held_mail(rt: Runtime, tx: Conn, c: Comment, post: Post, spam: str | None,
                     now: datetime) -> None:
    secret = link_secret(rt)
    nonce = links.moderation_nonce()
    base = rt.settings.server.base_url

    def url(action: str) -> str:
        return f"{base}/moderate/{links.moderation_token(secret, c.id, action, nonce, now)}"

    env = envelope(rt, rt.settings.notify.to)
    await _mail(rt, tx, f"held:{c.id}", OWNER_INBOX, env, mail.held_comment(
        env, facts(c, post, spam), approve_url=url("approve"), reject_url=url("reject"),
        config=_config(rt), now=now), now)


async def comment_approved(rt: Runtime, tx: Conn, c: Comment) -> None:
    """The owner approved a held comment (`c` as it was before) in `tx`."""
    if not enabled(rt):
        return
    post = await post_store.by_id(tx, c.post_id)
    fresh = await comment_store.by_id(tx, c.id)
    if post is None or fresh is None:
        return
    now = rt.now()
    await _webhook(rt, tx, "comment.approved",
                   comment_payload(fresh, post, await _spam_verdict(rt, tx, c.id)), now)
    if fresh.is_public:
        await _reply_mail(rt, tx, fresh, post, now)


async def comment_deleted(rt: Runtime, tx: Conn, c: Comment, by: str) -> None:
    """A comment was deleted (by its author or the owner: `by`) in `tx`."""
    if not rt.settings.notify.webhook_url:
        return
    post = await post_store.by_id(tx, c.post_id)
    if post is None:
        return
    payload = {**comment_payload(c, post, None), "deleted_by": by}
    await _webhook(rt, tx, "comment.deleted", payload, rt.now())


async def report_created(rt: Runtime, tx: Conn, *, actor: RemoteActor, content: str,
                         objects: list[str]) -> None:
    if not rt.settings.notify.webhook_url:
        return
    await _webhook(rt, tx, "report.created", {
        "actor": actor.ap_id, "handle": actor.handle, "content": content, "objects": objects,
    }, rt.now())


async def follower_added(rt: Runtime, tx: Conn, actor: RemoteActor) -> None:
    if not rt.settings.notify.webhook_url:
        return
    await _webhook(rt, tx, "follower.added", {
        "actor": actor.ap_id, "handle": actor.handle, "name": actor.display_name,
        "url": actor.url,
    }, rt.now())


# --- readers who asked to hear of replies -------------------------------------------------


async def subscribe_reader(rt: Runtime, tx: Conn, comment_id: int, email: str,
                           post: Post) -> None:
    """Remember that the author of `comment_id` wants mail about replies, once the
    address confirms it (double opt-in for each subscription: a confirmed address does not
    vouch for a comment someone else wrote with it)."""
    now = rt.now()
    sub = await notify_store.subscriber_for(tx, email, now)
    await notify_store.subscribe(tx, comment_id, sub.id, now)
    sent = await notify_store.confirmations_since(tx, sub.id, now - timedelta(days=1))
    if sent >= CONFIRMATIONS_PER_DAY:
        return
    secret = link_secret(rt)
    base = rt.settings.server.base_url
    unsubscribe = f"{base}/unsubscribe/{links.unsubscribe_token(secret, sub.id)}"
    token = links.confirm_token(secret, sub.id, comment_id, now)
    env = envelope(rt, email)
    message = mail.confirm_address(
        env, post_title=post.title, confirm_url=f"{base}/subscriptions/confirm/{token}",
        unsubscribe_url=unsubscribe, now=now)
    await _mail(rt, tx, f"confirm:{sub.id}:{comment_id}", f"mail:subscriber/{sub.id}", env,
                message, now)
    await notify_store.confirmation_sent(tx, sub.id, comment_id, now)


async def _reply_mail(rt: Runtime, tx: Conn, reply: Comment, post: Post,
                      now: datetime) -> None:
    """Mail the author of the comment `reply` answers, if they asked and confirmed.
    Fediverse authors hear of replies from their own instance, never from us."""
    if not rt.settings.notify.mail or reply.parent_id is None:
        return
    sub = await notify_store.confirmed_subscriber(tx, reply.parent_id)
    if sub is None:
        return
    if reply.origin is Origin.LOCAL and await local_store.author_email(tx, reply.id) == (
            sub.email):
        return  # answering oneself
    parent = await comment_store.by_id(tx, reply.parent_id)
    if parent is None:
        return
    unsubscribe = (f"{rt.settings.server.base_url}/unsubscribe/"
                   f"{links.unsubscribe_token(link_secret(rt), sub.id)}")
    env = envelope(rt, sub.email)
    message = mail.reply_notice(env, facts(reply, post), your_text=plain_text(parent.content),
                                unsubscribe_url=unsubscribe, now=now)
    await _mail(rt, tx, f"reply:{reply.id}:{sub.id}", f"mail:subscriber/{sub.id}", env,
                message, now)


# --- housekeeping ---------------------------------------------------------------------------


async def send_digest(rt: Runtime) -> int:
    """Queue the owner's digest once its period has passed since its oldest comment;
    returns how many comments it carries (0: not due, or nothing to say)."""
    n = rt.settings.notify
    period = DIGEST_PERIODS.get(n.digest)
    if period is None or not n.to:
        return 0
    now = rt.now()
    oldest = await notify_store.oldest_digest_item(rt.db.read)
    if oldest is None or now - oldest < period:
        return 0
    async with rt.db.transaction() as tx:
        items: list[mail.CommentFacts] = []
        for comment_id in await notify_store.take_digest_items(tx):
            c = await comment_store.by_id(tx, comment_id)
            post = await post_store.by_id(tx, c.post_id) if c else None
            # Rejected or deleted since: the owner has seen to it already.
            if c is None or post is None or c.status is not CommentStatus.APPROVED:
                continue
            items.append(facts(c, post, await _spam_verdict(rt, tx, c.id)))
        if items:
            env = envelope(rt, n.to)
            await _mail(rt, tx, f"digest:{uuid.uuid4().hex}", OWNER_INBOX, env,
                        mail.digest(env, items, period=n.digest, now=now), now)
    return len(items)


async def periodic(rt: Runtime) -> None:
    """Housekeeping's share: the digest when due; spent links past their expiry."""
    if not enabled(rt):
        return
    count = await send_digest(rt)
    if count:
        log.info("digest queued", extra={"comments": count})
    async with rt.db.transaction() as tx:
        await notify_store.prune_links(tx, rt.now())
