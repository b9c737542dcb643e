"""Comments readers post through the form: defences, moderation, and their 15-minute secret.

Defences, in order: Origin check, honeypot, signed form token (missing/forged/expired →
refused; too fast → moderation), per-IP rate limit, field validation, duplicate check,
link limit (→ moderation). Nothing is stored unless every check passed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fedcomments.ap.sanitize import text_to_html
from fedcomments.errors import FedcommentsError, Forbidden, NotFound
from fedcomments.model import Comment, CommentStatus, Origin, Visibility
from fedcomments.runtime import Runtime
from fedcomments.services import notify, replies, spam
from fedcomments.services.reader_guard import (
    Client,
    FormErrors,
    check_origin,
    client_key,
    token_age,
)
from fedcomments.services.thread import find_thread_post
from fedcomments.store import comments as comment_store
from fedcomments.store import local_comments as local_store
from fedcomments.store import posts as post_store
from fedcomments.store.comments import NewComment
from fedcomments.store.conn import Conn
from fedcomments.store.threads import ThreadPost

log = logging.getLogger("fedcomments.comments")

FIELDS = ("post", "parent", "name", "email", "website", "text", "token", "homepage", "notify")
#: The honeypot: hidden from people (CSS, aria-hidden, tabindex -1), filled in by bots.
HONEYPOT = "homepage"
MAX_EMAIL = 254
MAX_WEBSITE = 500
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
# Bidi embeddings, overrides, isolates and marks, the BOM and line/paragraph separators:
# they let a name display as something it is not, or break the layout around it.
_INVISIBLE = dict.fromkeys(map(ord, "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                                    "\u2066\u2067\u2068\u2069\ufeff\u2028\u2029"))


class RateLimited(FedcommentsError):
    http_status = 429
    exit_code = 1

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many comments from your network; try again in {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class Posted:
    comment: Comment
    #: Lets the author see the comment while pending and edit or delete it for a while.
    secret: str
    edit_until: datetime
    #: Why the comment waits for approval (empty when published).
    held_because: tuple[str, ...] = field(default_factory=tuple)

    @property
    def pending(self) -> bool:
        return self.comment.status is CommentStatus.PENDING


# --- validation -------------------------------------------------------------------------


def clean_name(value: str) -> str:
    """Control characters, bidi overrides and extra whitespace removed."""
    text = value.translate(_INVISIBLE)
    text = "".join(c for c in text if c.isspace() or unicodedata.category(c) != "Cc")
    return " ".join(text.split())


def _website(value: str) -> str:
    value = value.strip()
    if value and "://" not in value and not value.lower().startswith(("javascript:", "data:")):
        value = "https://" + value
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if (parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname
            or parts.username is not None
            or any(c.isspace() or c in '"<>\\^`{|}' or ord(c) < 32 for c in value)):
        raise ValueError("must be a web address like https://example.org")
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise FormErrors({"body": "every field must be a string"})
    return value


@dataclass(frozen=True)
class CommentForm:
    post: str
    parent: int | None
    name: str
    email: str
    website: str
    text: str
    token: str
    honeypot: str
    #: "Email me when someone replies" was ticked.
    notify: bool = False


def comment_form(fields: Mapping[str, Any]) -> CommentForm:
    """The form's fields from JSON or form data; unknown fields are refused."""
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise FormErrors({unknown[0]: "unknown field"})
    values = {k: _text(fields.get(k)) for k in FIELDS}
    parent = values["parent"].strip()
    if parent and not (parent.isdigit() and len(parent) < 19):
        raise FormErrors({"parent": "must be a comment id"})
    return CommentForm(post=values["post"].strip(), parent=int(parent) if parent else None,
                       name=values["name"], email=values["email"], website=values["website"],
                       text=values["text"], token=values["token"].strip(),
                       honeypot=values["homepage"],
                       notify=values["notify"].strip().lower() in ("1", "on", "true", "yes"))


@dataclass(frozen=True)
class _Clean:
    name: str
    email: str | None
    website: str | None
    text: str
    html: str


def validate(rt: Runtime, form: CommentForm) -> _Clean:
    """Every field checked; all errors reported at once, each under its field name."""
    limits = rt.settings.comments
    errors: dict[str, str] = {}
    name = clean_name(form.name)
    if not name:
        errors["name"] = "please give a name"
    elif len(name) > limits.max_name_length:
        errors["name"] = f"at most {limits.max_name_length} characters"
    email = form.email.strip().lower()
    if len(email) > MAX_EMAIL:
        errors["email"] = f"at most {MAX_EMAIL} characters"
    elif email and not _EMAIL.fullmatch(email):
        errors["email"] = "not an email address"
    website: str | None = None
    if len(form.website.strip()) > MAX_WEBSITE:
        errors["website"] = f"at most {MAX_WEBSITE} characters"
    elif form.website.strip():
        try:
            website = _website(form.website)
        except ValueError as exc:
            errors["website"] = str(exc)
    text = form.text.replace("\r\n", "\n").replace("\r", "\n").strip()
    html = text_to_html(text) if text else ""
    if not html:
        errors["text"] = "please write a comment"
    elif len(text) > limits.max_text_length:
        errors["text"] = f"at most {limits.max_text_length} characters (you wrote {len(text)})"
    if form.notify and not email and "email" not in errors:
        errors["email"] = "give your email address to hear of replies"
    if errors:
        raise FormErrors(errors)
    return _Clean(name, email or None, website, text, html)


# --- the service ------------------------------------------------------------------------


async def _parent(conn: Conn, post: ThreadPost, parent_id: int | None) -> Comment | None:
    if parent_id is None:
        return None
    parent = await comment_store.by_id(conn, parent_id)
    if parent is None or parent.post_id != post.id or not parent.is_public:
        raise FormErrors({"parent": "the comment you answer is not available"})
    return parent


async def _moderation(rt: Runtime, conn: Conn, clean: _Clean, age: float) -> list[str]:
    """Reasons to hold the comment for approval (none: it is published at once)."""
    reasons: list[str] = []
    policy = rt.settings.moderation.policy
    if policy == "all":
        reasons.append("every comment is approved by hand")
    elif policy == "first-time" and not (
            clean.email and await local_store.reader_trusted(conn, clean.name, clean.email)):
        reasons.append("first comment under this name and email")
    if age < rt.settings.comments.min_form_seconds:
        reasons.append("sent too quickly after the form was shown")
    if clean.html.count("<a ") > rt.settings.comments.max_links:
        reasons.append("too many links")
    return reasons


async def post_comment(rt: Runtime, form: CommentForm, client: Client) -> Posted:
    """Check, store and (when approved) federate a reader's comment."""
    check_origin(rt, client)
    if form.honeypot.strip():
        raise FormErrors({"form": "this looks automated and was not saved"})
    if not form.post:
        raise FormErrors({"post": "which post is this comment for?"})
    post = await find_thread_post(rt, form.post)
    age = token_age(rt, form.token, post.id)
    clean = validate(rt, form)
    key = client_key(rt, client.ip)
    # Asked before the transaction: a slow spam service must never hold the writer.
    verdict = await _spam_check(rt, post, form, clean, client)
    now = rt.now()
    limits = rt.settings.comments
    secret = secrets.token_urlsafe(24)
    async with rt.db.transaction() as tx:
        # Counted inside the write transaction, so two requests at once cannot both pass.
        recent, oldest = await local_store.count_since(tx, key, now - timedelta(minutes=1))
        if recent >= limits.rate_limit_per_minute:
            wait = 60 - (now - oldest).total_seconds() if oldest else 60
            raise RateLimited(max(1, int(wait + 0.999)))
        parent = await _parent(tx, post, form.parent)
        if await local_store.is_duplicate(tx, post_id=post.id, source=clean.text,
                                          client_key=key, author_name=clean.name):
            raise FormErrors({"text": "you already posted this comment"})
        reasons = await _moderation(rt, tx, clean, age)
        if verdict is not None and verdict.spam:
            reasons.append("the spam service flagged it")
        status = CommentStatus.PENDING if reasons else CommentStatus.APPROVED
        comment_id = await comment_store.insert(tx, NewComment(
            post_id=post.id, parent_id=parent.id if parent else None, origin=Origin.LOCAL,
            visibility=Visibility.PUBLIC, status=status, content=clean.html, published_at=now,
            author_name=clean.name, author_email=clean.email, author_website=clean.website,
            source=clean.text, in_reply_to=parent.ap_id if parent else post.ap_id,
            edit_secret_hash=_hash(secret), client_key=key,
        ), now)
        await _word_of(rt, tx, comment_id, post.id, form, clean, verdict)
        comment = await comment_store.by_id(tx, comment_id)
    assert comment is not None
    if status is CommentStatus.APPROVED:
        await federate(rt, comment_id)
    until = now + timedelta(minutes=limits.edit_window_minutes)
    return Posted(comment, secret, until, tuple(reasons))


async def _spam_check(rt: Runtime, post: ThreadPost, form: CommentForm, clean: _Clean,
                      client: Client) -> spam.Verdict | None:
    if not spam.enabled(rt):
        return None
    return await spam.check(rt, spam.reader_params(
        post.permalink, name=clean.name, email=clean.email, website=clean.website,
        text=clean.text, ip=client.ip, user_agent=client.user_agent,
        referrer=client.referer or "", reply=form.parent is not None, now=rt.now()))


async def _edit_spam_check(rt: Runtime, comment: Comment, text: str, client: Client
                           ) -> spam.Verdict | None:
    """The spam service's word on an edited text (a comment judged ham must not be
    turned into spam afterwards)."""
    if not spam.enabled(rt):
        return None
    post = await post_store.by_id(rt.db.read, comment.post_id)
    email = await local_store.author_email(rt.db.read, comment.id)
    return await spam.check(rt, spam.reader_params(
        post.permalink if post else "", name=comment.author_name or "", email=email,
        website=comment.author_website, text=text, ip=client.ip,
        user_agent=client.user_agent, referrer=client.referer or "",
        reply=comment.parent_id is not None, now=rt.now()))


async def _word_of(rt: Runtime, tx: Conn, comment_id: int, post_id: int, form: CommentForm,
                   clean: _Clean, verdict: spam.Verdict | None) -> None:
    """In the comment's transaction: the spam verdict, the reader's wish to hear of
    replies (mail configured and an address given), and word to the owner."""
    if verdict is not None:
        await spam.record(rt, tx, comment_id, verdict)
    if form.notify and clean.email and rt.settings.notify.mail:
        post = await post_store.by_id(tx, post_id)
        if post is not None:
            await notify.subscribe_reader(rt, tx, comment_id, clean.email, post)
    await notify.comment_stored(rt, tx, comment_id)


async def federate(rt: Runtime, comment_id: int) -> None:
    """Hand an approved local comment to the replies service (fediverse delivery)."""
    try:
        await replies.federate_local_comment(rt, comment_id)
    except FedcommentsError as exc:
        # The comment is stored and shown; federation is retried by approving it again.
        log.warning("could not federate local comment",
                    extra={"comment": comment_id, "error": str(exc)})


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def _own(rt: Runtime, comment_id: int, secret: str, *, editing: bool) -> Comment:
    """The comment if `secret` is its author's (and, to change it, still in the window)."""
    found = await local_store.with_secret(rt.db.read, comment_id)
    if (found is None or found.secret_hash is None or not secret
            or not hmac.compare_digest(found.secret_hash, _hash(secret))
            or found.comment.status in (CommentStatus.DELETED, CommentStatus.REJECTED)):
        raise NotFound("no such comment, or the secret does not match")
    window = timedelta(minutes=rt.settings.comments.edit_window_minutes)
    if editing and rt.now() > found.comment.created_at + window:
        raise Forbidden(f"comments can be changed only within "
                        f"{rt.settings.comments.edit_window_minutes} minutes")
    return found.comment


async def own_comment(rt: Runtime, comment_id: int, secret: str) -> Comment:
    """What the author sees of their comment, pending ones included."""
    return await _own(rt, comment_id, secret, editing=False)


async def edit_comment(rt: Runtime, comment_id: int, secret: str, text: Any,
                       client: Client) -> Comment:
    check_origin(rt, client)
    comment = await _own(rt, comment_id, secret, editing=True)
    limit = rt.settings.comments.max_text_length
    source = _text(text).replace("\r\n", "\n").replace("\r", "\n").strip()
    html = text_to_html(source) if source else ""
    if not html:
        raise FormErrors({"text": "please write a comment"})
    if len(source) > limit:
        raise FormErrors({"text": f"at most {limit} characters (you wrote {len(source)})"})
    # Asked before the transaction, as for a new comment: the new text is what will show.
    verdict = await _edit_spam_check(rt, comment, source, client)
    # An edit must not slip past moderation what the original text would not have.
    hold = (rt.settings.moderation.policy == "all"
            or html.count("<a ") > rt.settings.comments.max_links
            or (verdict is not None and verdict.spam))
    async with rt.db.transaction() as tx:
        await local_store.update_text(tx, comment.id, content=html, source=source,
                                      updated_at=rt.now())
        if verdict is not None:
            await spam.record(rt, tx, comment.id, verdict)
        if hold and comment.status is CommentStatus.APPROVED:
            await comment_store.set_status(tx, comment.id, CommentStatus.PENDING)
            # Back in moderation: whoever received it must not keep the unreviewed text.
            await replies.comment_withdrawn(rt, tx, comment)
        elif comment.status is CommentStatus.APPROVED:
            # Mastodon and others show the edit when an Update with a newer `updated` comes.
            await replies.comment_edited(rt, tx, comment.id)
        updated = await comment_store.by_id(tx, comment.id)
    assert updated is not None
    return updated


async def delete_comment(rt: Runtime, comment_id: int, secret: str, client: Client) -> str:
    """Remove the comment (a "deleted" placeholder stays if replies hang below it)."""
    check_origin(rt, client)
    comment = await _own(rt, comment_id, secret, editing=True)
    async with rt.db.transaction() as tx:
        await replies.comment_withdrawn(rt, tx, comment)
        await notify.comment_deleted(rt, tx, comment, "author")
        return await comment_store.remove(tx, comment, rt.now())
