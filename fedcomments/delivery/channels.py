"""Attempts for the jobs that are not ActivityPub deliveries: webhook events (signed
POSTs), mails (SMTP) and spam-service calls. Each returns an `Attempt`, recorded and
retried by the same pass and policy as deliveries."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

from fedcomments.delivery.attempt import ERROR_EXCERPT, Attempt
from fedcomments.model import DeliveryJob, JobKind
from fedcomments.remote import FetchFailed, FetchRefused, PostResult
from fedcomments.remote.smtp import MailFailed, MailRejected, SmtpServer, send
from fedcomments.runtime import Runtime
from fedcomments.services import notify, spam

log = logging.getLogger("fedcomments.delivery")

#: What a successful SMTP hand-over is recorded as (2xx: done, for the policy too).
SMTP_OK = 250

Channel = Callable[..., Coroutine[Any, Any, Attempt]]


def webhook_signature(secret: str, body: bytes) -> str:
    """The value of the signature header: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def _post(job: DeliveryJob, call: Awaitable[PostResult], seconds: float) -> Attempt:
    try:
        async with asyncio.timeout(seconds):
            result = await call
    except FetchRefused as exc:
        return Attempt(job, error=str(exc), refused=True)
    except FetchFailed as exc:
        return Attempt(job, status=exc.status, error=str(exc)[:ERROR_EXCERPT])
    except TimeoutError:
        return Attempt(job, error=f"timed out after {seconds:g} s")
    error = None
    if not 200 <= result.status < 300:
        excerpt = " ".join(result.body_excerpt.split())[:ERROR_EXCERPT]
        error = f"HTTP {result.status}: {excerpt}" if excerpt else f"HTTP {result.status}"
    return Attempt(job, status=result.status, retry_after=result.retry_after, error=error)


async def webhook(rt: Runtime, job: DeliveryJob, *, seconds: float) -> Attempt:
    client = rt.webhook_remote
    n = rt.settings.notify
    if client is None or not n.webhook_secret:
        return Attempt(job, error="no webhook configured ([notify] webhook_url)", refused=True)
    event = job.activity_id.split(":")[1] if job.activity_id.count(":") >= 2 else ""
    headers = {notify.SIGNATURE_HEADER: webhook_signature(n.webhook_secret, job.body),
               notify.EVENT_HEADER: event, "X-Fedcomments-Delivery": str(job.id)}
    return await _post(job, client.post(job.inbox, job.body, content_type="application/json",
                                        sign=False, extra_headers=headers), seconds)


async def mail(rt: Runtime, job: DeliveryJob, *, seconds: float) -> Attempt:
    n = rt.settings.notify
    if not n.smtp_host:
        return Attempt(job, error="mail is not configured ([notify] smtp_host)", refused=True)
    sender, recipients, message = notify.split_mail_body(job.body)
    server = SmtpServer(host=n.smtp_host, port=n.port, user=n.smtp_user,
                        password=n.smtp_password, tls=n.tls, starttls=n.starttls,
                        timeout=seconds)
    try:
        await send(server, sender, recipients, message)
    except MailRejected as exc:
        return Attempt(job, error=str(exc)[:ERROR_EXCERPT], refused=True)
    except MailFailed as exc:
        # No status: retried with backoff, and counted against the server's breaker.
        return Attempt(job, error=str(exc)[:ERROR_EXCERPT])
    return Attempt(job, status=SMTP_OK)


async def spam_call(rt: Runtime, job: DeliveryJob, *, seconds: float) -> Attempt:
    if not spam.enabled(rt):
        return Attempt(job, error="no spam service configured ([spam] akismet_key)",
                       refused=True)
    if job.inbox.endswith("/comment-check"):
        return await _check(rt, job)
    params = dict(parse_qsl(job.body.decode(), keep_blank_values=True))
    return await _post(job, rt.remote.post(job.inbox, spam.request_body(rt, params),
                                           content_type=spam.FORM, sign=False), seconds)


async def _check(rt: Runtime, job: DeliveryJob) -> Attempt:
    """A fediverse reply held for its check: one try within [spam] timeout, then the
    verdict (or the moderation policy, when the service failed) decides."""
    comment_id = int(job.body)
    params = await spam.queued_params(rt, comment_id)
    if params is None:
        return Attempt(job, status=200)  # decided meanwhile (approved or rejected by hand)
    verdict = await spam.check(rt, params)
    await spam.settle(rt, comment_id, verdict)
    if verdict.verdict == spam.UNKNOWN:
        # Not retried: the comment is out of the hold already; listed as failed.
        return Attempt(job, error=f"{verdict.detail}; the moderation policy decided"[
            :ERROR_EXCERPT], refused=True)
    return Attempt(job, status=200)


CHANNELS: dict[JobKind, Channel] = {
    JobKind.WEBHOOK: webhook,
    JobKind.MAIL: mail,
    JobKind.SPAM: spam_call,
}
