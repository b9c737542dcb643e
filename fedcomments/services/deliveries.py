"""The admin's view of outbound federation: list delivery jobs and put them back in the
queue (the CLI and the admin API both call these), the failure summary for the log, and
the hook that tells the queue a remote host is alive."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fedcomments.delivery import policy
from fedcomments.errors import InvalidInput, NotFound
from fedcomments.model import DeliveryJob, DeliveryStatus, JobKind
from fedcomments.paging import Page, decode_cursor, encode_cursor
from fedcomments.runtime import Runtime
from fedcomments.store import queue

log = logging.getLogger("fedcomments.delivery")

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
#: How often the worker logs the summary line while something is failing.
SUMMARY_INTERVAL = timedelta(minutes=5)
#: Finished mails, webhook events and spam-service calls are deleted this long after they
#: finished: long enough to see and retry a failure after a holiday, no longer, since their
#: bodies hold readers' addresses, IPs and words (the Akismet plugin for WordPress keeps
#: what it sent for 15 days too). The bodies of the delivered ones are cleared at once.
NOTICE_RETENTION = timedelta(days=15)
#: Notices deleted per transaction, so a large backlog never holds the writer long.
PRUNE_BATCH = 1000


def parse_status(value: str | None) -> DeliveryStatus | None:
    if value is None or value == "all":
        return None
    try:
        return DeliveryStatus(value)
    except ValueError:
        choices = ", ".join(s.value for s in DeliveryStatus)
        raise InvalidInput(f"status: must be one of {choices} or all; got {value!r}",
                           field="status") from None


#: `--kind` values: each job kind, and "notify" for webhooks and mails together.
KIND_CHOICES = (*[k.value for k in JobKind], "notify", "all")


def parse_kind(value: str | None) -> tuple[JobKind, ...]:
    """Which kinds of job to list; () means every kind."""
    if value is None or value == "all":
        return ()
    if value == "notify":
        return (JobKind.WEBHOOK, JobKind.MAIL)
    try:
        return (JobKind(value),)
    except ValueError:
        raise InvalidInput(f"kind: must be one of {', '.join(KIND_CHOICES)}; got {value!r}",
                           field="kind") from None


def parse_limit(value: str | int | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) <= MAX_LIMIT:
        raise InvalidInput(f"limit: must be a whole number from 1 to {MAX_LIMIT}", field="limit")
    return int(text)


async def list_deliveries(rt: Runtime, *, status: DeliveryStatus | None = None,
                          limit: int = DEFAULT_LIMIT, kinds: tuple[JobKind, ...] = ()
                          ) -> list[DeliveryJob]:
    """Pending jobs in the order they will run; others newest first. Webhook events,
    mails and spam-service calls are jobs of their own kinds in the same queue."""
    return (await deliveries_page(rt, status=status, limit=limit, kinds=kinds)).items


async def deliveries_page(rt: Runtime, *, status: DeliveryStatus | None = None,
                          limit: int = DEFAULT_LIMIT, cursor: str | None = None,
                          kinds: tuple[JobKind, ...] = ()) -> Page[DeliveryJob]:
    """One page of jobs (only `kinds` when given) after `cursor` (a cursor belongs to one
    status filter: pending jobs are listed in another order)."""
    listing = "pending deliveries" if status is DeliveryStatus.PENDING else "deliveries"
    shape: tuple[type, ...] = (str, int) if status is DeliveryStatus.PENDING else (int,)
    key = decode_cursor(listing, cursor, shape)
    items, last = await queue.list_jobs(rt.db.read, status=status, limit=limit, key=key,
                                        kinds=kinds)
    return Page(items, encode_cursor(listing, last) if last else None)


async def counts(rt: Runtime) -> dict[str, int]:
    return await queue.counts(rt.db.read)


async def retry(rt: Runtime, job_id: int) -> DeliveryJob:
    """Put one finished job back in the queue, due now with a fresh attempt budget.

    The host's failure marks are cleared too: the admin asks for a real attempt, even to
    a host the breaker paused or marked unavailable.
    """
    async with rt.db.transaction() as tx:
        job = await queue.by_id(tx, job_id)
        if job is None:
            raise NotFound(f"no delivery {job_id}")
        if job.status is DeliveryStatus.PENDING:
            raise InvalidInput(f"delivery {job_id} is already pending (next attempt "
                               f"{job.next_attempt_at.isoformat()})", field="id")
        if job.kind is not JobKind.ACTIVITY and await queue.body_cleared(tx, job_id):
            raise InvalidInput(f"delivery {job_id} was delivered and its content cleared "
                               "(readers' data is not kept once sent)", field="id")
        await queue.reset_hosts(tx, [job.host])
        [retried] = await queue.retry(tx, [job_id], rt.now())
    return retried


async def retry_failed(rt: Runtime) -> list[DeliveryJob]:
    """Every failed job back in the queue; returns them."""
    async with rt.db.transaction() as tx:
        ids = await queue.failed_ids(tx)
        retried = await queue.retry(tx, ids, rt.now())
        await queue.reset_hosts(tx, {j.host for j in retried})
    return retried


@dataclass(frozen=True)
class NoticesForgotten:
    cleared: int
    pruned: int


async def forget_notices(rt: Runtime) -> NoticesForgotten:
    """Housekeeping: clear the bodies of delivered mails, webhook events and spam reports,
    and delete those that finished more than NOTICE_RETENTION ago (ActivityPub jobs stay:
    an Update or Delete follows its Create to the same inboxes)."""
    async with rt.db.transaction() as tx:
        cleared = await queue.clear_sent_notices(tx)
    before = rt.now() - NOTICE_RETENTION
    pruned, removed = 0, PRUNE_BATCH
    while removed == PRUNE_BATCH:
        async with rt.db.transaction() as tx:
            removed = await queue.prune_notices(tx, before, PRUNE_BATCH)
        pruned += removed
    return NoticesForgotten(cleared, pruned)


def job_json(job: DeliveryJob) -> dict[str, Any]:
    """Stable JSON shape of a delivery job (CLI --json and admin API)."""
    return {
        "id": job.id,
        "kind": job.kind.value,
        "activity_id": job.activity_id,
        "inbox": job.inbox,
        "host": job.host,
        "status": job.status.value,
        "attempts": job.attempts,
        "next_attempt_at": job.next_attempt_at.isoformat()
        if job.status is DeliveryStatus.PENDING else None,
        "last_status": job.last_status,
        "last_error": job.last_error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


async def log_summary(rt: Runtime) -> str | None:
    """One warning line when deliveries are failing; None (and no log) when all is well."""
    now = rt.now()
    retrying = await queue.count_retrying(rt.db.read)
    failed = await queue.count_failed_since(rt.db.read, now - SUMMARY_INTERVAL)
    troubled = await queue.troubled_hosts(rt.db.read, now)
    if not (retrying or failed or troubled):
        return None
    paused = [h.host for h in troubled if h.unavailable_since is None]
    unavailable = [h.host for h in troubled if h.unavailable_since is not None]
    minutes = int(SUMMARY_INTERVAL.total_seconds() // 60)
    line = (f"deliveries: {retrying} retrying, {failed} failed in the last {minutes} min; "
            f"paused hosts: {', '.join(paused) or 'none'}; "
            f"unavailable hosts: {', '.join(unavailable) or 'none'}")
    log.warning(line)
    return line


async def host_contacted(rt: Runtime, url: str) -> bool:
    """Hook for the inbox: a verified signed request from `url`'s host clears its
    "unavailable" mark and failure days. True when it cleared something.

    Free for a healthy host: the hosts with marks are known in memory (`rt.marked_hosts`,
    reloaded with the blocklist when the database changes), so only a marked host costs
    a transaction, once.
    """
    host = queue.host_key(url)
    if not host or host not in rt.marked_hosts:
        return False
    rt.marked_hosts.discard(host)
    async with rt.db.transaction() as tx:
        state = await queue.host_state(tx, host)
        if state.unavailable_since is None and not state.failure_days:
            return False
        await queue.save_host(tx, policy.host_after_contact(state))
    log.info("host is back: it sent us a signed request", extra={"host": host})
    return True
