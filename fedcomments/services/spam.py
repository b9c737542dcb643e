"""The optional spam check against an Akismet-compatible service: reader comments before
they are stored, fediverse replies through the queue, and the owner's decisions reported
back (approving a held comment is ham, rejecting one is spam).

A failing or slow service never loses a comment: after `[spam] timeout` seconds the
moderation policy decides alone, and no database transaction is open while we wait.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from fedcomments.ap.sanitize import plain_text
from fedcomments.model import Comment, CommentStatus, JobKind, Post
from fedcomments.remote import FetchFailed, FetchRefused
from fedcomments.runtime import Runtime
from fedcomments.services import notify
from fedcomments.store import comments as comment_store
from fedcomments.store import posts as post_store
from fedcomments.store import queue
from fedcomments.store import spam as spam_store
from fedcomments.store.conn import Conn
from fedcomments.store.rows import ts

log = logging.getLogger("fedcomments.spam")

SPAM, HAM, UNKNOWN, QUEUED = "spam", "ham", "unknown", "queued"
FORM = "application/x-www-form-urlencoded"
#: What Akismet calls the comment type of a reply in a thread.
_TYPE_REPLY = "reply"
#: The params key that remembers the moderation policy's status for a queued check.
_POLICY = "x_policy_status"
#: What the service was asked of a comment (the reader's IP, address and browser) is kept
#: this long for reporting the owner's decision, then forgotten, as the Akismet plugin for
#: WordPress forgets what it sent after 15 days; a decision after that reports nothing.
PARAMS_RETENTION = timedelta(days=15)


@dataclass(frozen=True)
class Verdict:
    verdict: str
    detail: str
    params: dict[str, str]

    @property
    def spam(self) -> bool:
        return self.verdict == SPAM


def enabled(rt: Runtime) -> bool:
    return rt.settings.spam.enabled


def endpoint(rt: Runtime, call: str) -> str:
    return f"{rt.settings.spam.akismet_url.rstrip('/')}/1.1/{call}"


def _blog(rt: Runtime) -> str:
    return rt.settings.actor.url or rt.settings.server.base_url


def reader_params(permalink: str, *, name: str, email: str | None, website: str | None,
                  text: str, ip: str, user_agent: str, referrer: str, reply: bool,
                  now: datetime) -> dict[str, str]:
    """Akismet's fields for a reader comment (its documented names)."""
    return {"user_ip": ip, "user_agent": user_agent, "referrer": referrer,
            "permalink": permalink, "comment_type": _TYPE_REPLY if reply else "comment",
            "comment_author": name, "comment_author_email": email or "",
            "comment_author_url": website or "", "comment_content": text,
            "comment_date_gmt": ts(now) or "", "blog_charset": "UTF-8"}


def remote_params(c: Comment, post: Post) -> dict[str, str]:
    """Akismet's fields for a fediverse reply: there is no reader IP, the author's actor
    stands in for the address they write from."""
    actor = c.actor
    return {"user_ip": "", "permalink": post.permalink, "comment_type": _TYPE_REPLY,
            "comment_author": actor.display_name if actor else "",
            "comment_author_url": (actor.url or actor.ap_id) if actor else "",
            "comment_content": plain_text(c.content),
            "comment_date_gmt": ts(c.published_at) or "", "blog_charset": "UTF-8"}


def request_body(rt: Runtime, params: dict[str, str]) -> bytes:
    """The form body: the stored fields plus the key and blog of the current settings."""
    fields = {k: v for k, v in params.items() if not k.startswith("x_")}
    return urlencode({"api_key": rt.settings.spam.akismet_key, "blog": _blog(rt),
                      **fields}).encode()


async def check(rt: Runtime, params: dict[str, str]) -> Verdict:
    """Ask the service; UNKNOWN (never an exception) when it fails or takes too long."""
    seconds = rt.settings.spam.timeout
    try:
        async with asyncio.timeout(seconds):
            result = await rt.remote.post(endpoint(rt, "comment-check"),
                                          request_body(rt, params), content_type=FORM,
                                          sign=False)
    except TimeoutError:
        return _unknown(params, f"no answer within {seconds:g} s")
    except (FetchFailed, FetchRefused) as exc:
        return _unknown(params, str(exc))
    answer = result.body_excerpt.strip()
    if result.status == 200 and answer == "true":
        tip = result.headers.get("X-akismet-pro-tip", "")
        return Verdict(SPAM, f"spam ({tip})" if tip else "spam", params)
    if result.status == 200 and answer == "false":
        return Verdict(HAM, "ham", params)
    why = result.headers.get("X-akismet-debug-help", "") or answer[:100]
    return _unknown(params, f"HTTP {result.status}: {why}")


def _unknown(params: dict[str, str], why: str) -> Verdict:
    log.warning("spam check failed; the moderation policy decides", extra={"error": why})
    return Verdict(UNKNOWN, why, params)


async def record(rt: Runtime, tx: Conn, comment_id: int, verdict: Verdict) -> None:
    await spam_store.record(tx, comment_id, verdict.verdict, verdict.detail, verdict.params,
                            rt.now())


# --- fediverse replies: checked through the queue ------------------------------------------


def checks_fediverse(rt: Runtime) -> bool:
    return rt.settings.spam.enabled and rt.settings.spam.check_fediverse


async def queue_check(rt: Runtime, tx: Conn, comment_id: int, policy: CommentStatus) -> None:
    """Hold a new fediverse reply until the service answers (the inbox never waits on
    it); `policy` is what the moderation policy would have made of it."""
    now = rt.now()
    c = await comment_store.by_id(tx, comment_id)
    post = await post_store.by_id(tx, c.post_id) if c else None
    if c is None or post is None:
        return
    params = {**remote_params(c, post), _POLICY: policy.value}
    await spam_store.record(tx, comment_id, QUEUED, "", params, now)
    await queue.enqueue(tx, activity_id=f"spam:check:{comment_id}",
                        inbox=endpoint(rt, "comment-check"), body=str(comment_id).encode(),
                        now=now, kind=JobKind.SPAM)


async def queued_params(rt: Runtime, comment_id: int) -> dict[str, str] | None:
    found = await spam_store.get(rt.db.read, comment_id)
    return found.params if found is not None and found.verdict == QUEUED else None


async def settle(rt: Runtime, comment_id: int, verdict: Verdict) -> bool:
    """Apply a queued check's verdict: spam stays held; otherwise the policy's status.
    Returns False when the comment was decided meanwhile (nothing changed)."""
    async with rt.db.transaction() as tx:
        found = await spam_store.get(tx, comment_id)
        c = await comment_store.by_id(tx, comment_id)
        if found is None or found.verdict != QUEUED or c is None:
            return False
        policy = CommentStatus(found.params.get(_POLICY, CommentStatus.PENDING.value))
        await spam_store.record(tx, comment_id, verdict.verdict, verdict.detail,
                                found.params, rt.now())
        if c.status is CommentStatus.PENDING and not verdict.spam and (
                policy is CommentStatus.APPROVED):
            await comment_store.set_status(tx, comment_id, CommentStatus.APPROVED)
        if c.status is CommentStatus.PENDING:
            await notify.comment_stored(rt, tx, comment_id)
    return True


# --- the owner's decisions, reported back ---------------------------------------------------


async def report(rt: Runtime, tx: Conn, c: Comment, decision: CommentStatus) -> None:
    """Approving a held comment reports ham, rejecting one reports spam (queued, retried)."""
    if not enabled(rt):
        return
    found = await spam_store.get(tx, c.id)
    if (found is None or found.verdict == QUEUED or found.reported is not None
            or not found.params):
        return
    if decision is CommentStatus.APPROVED and c.status is not CommentStatus.PENDING:
        return
    what = "ham" if decision is CommentStatus.APPROVED else "spam"
    await queue.enqueue(tx, activity_id=f"spam:{what}:{c.id}",
                        inbox=endpoint(rt, f"submit-{what}"),
                        body=urlencode(found.params).encode(), now=rt.now(),
                        kind=JobKind.SPAM)
    await spam_store.mark_reported(tx, c.id, what)


async def forget_old_params(rt: Runtime) -> int:
    """Housekeeping: forget what the service was asked of comments checked more than
    PARAMS_RETENTION ago."""
    async with rt.db.transaction() as tx:
        return await spam_store.forget_params(tx, rt.now() - PARAMS_RETENTION)
