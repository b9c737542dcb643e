"""`deliveries list|retry`: what the blog sent, what is waiting, and what failed."""

from __future__ import annotations

import argparse
from typing import Any

from fedcomments.cli import common
from fedcomments.errors import InvalidInput
from fedcomments.model import DeliveryJob, DeliveryStatus
from fedcomments.paging import Page
from fedcomments.services import deliveries


async def list_(args: argparse.Namespace) -> int:
    status = deliveries.parse_status(args.status)
    limit = deliveries.parse_limit(args.limit)
    kinds = deliveries.parse_kind(args.kind)
    async with common.runtime(args) as rt:
        counts = await deliveries.counts(rt)

        async def fetch(cursor: str | None) -> Page[DeliveryJob]:
            return await deliveries.deliveries_page(rt, status=status, limit=limit,
                                                    cursor=cursor, kinds=kinds)

        await common.print_listing(
            args, "deliveries", fetch, deliveries.job_json,
            ["ID", "KIND", "STATUS", "TRIES", "WHEN", "LAST", "INBOX"],
            lambda j: [j.id, j.kind.value, j.status.value, j.attempts, _when(j), _last(j),
                       j.inbox],
            empty="no deliveries", head={"counts": counts})
    if not args.json:
        print(", ".join(f"{n} {s}" for s, n in counts.items()))
    return 0


def _when(job: Any) -> str:
    moment = job.next_attempt_at if job.status is DeliveryStatus.PENDING else job.finished_at
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def _last(job: Any) -> str:
    return common.one_line(job.last_error or (str(job.last_status) if job.last_status else ""),
                           40)


async def retry(args: argparse.Namespace) -> int:
    if (args.id is None) == (not args.all_failed):
        raise InvalidInput("give a delivery ID or --all-failed (not both)")
    async with common.runtime(args) as rt:
        if args.all_failed:
            jobs = await deliveries.retry_failed(rt)
        else:
            if not args.id.isdigit():
                raise InvalidInput(f"ID: not a delivery id: {args.id!r}")
            jobs = [await deliveries.retry(rt, int(args.id))]
    if args.json:
        common.print_json({"retried": len(jobs), "ids": [j.id for j in jobs]})
    elif args.all_failed:
        print(f"retrying {len(jobs)} failed deliveries")
    else:
        print(f"retrying delivery {jobs[0].id} to {jobs[0].inbox}")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("deliveries", help="See and retry outgoing deliveries.",
                       description="See and retry outgoing deliveries: ActivityPub "
                                   "activities, webhook events, mails and spam-service calls.")
    dsub = p.add_subparsers(dest="deliveries_command", metavar="ACTION", required=True)
    p = common.add_command(dsub, "list", "List delivery jobs (pending ones in the order they "
                           "run, finished ones newest first).",
                           "fedcomments deliveries list --status failed")
    p.add_argument("--status", choices=[s.value for s in DeliveryStatus] + ["all"],
                   help="only jobs in this state (default: all)")
    common.add_paging_arguments(p, maximum=deliveries.MAX_LIMIT)
    p.add_argument("--kind", choices=deliveries.KIND_CHOICES,
                   help="only this kind: activity (ActivityPub), webhook, mail, spam, or "
                        "notify (webhooks and mails); default all")
    common.add_json_argument(p)
    p.set_defaults(func=list_)
    p = common.add_command(dsub, "retry", "Put a finished delivery (or every failed one) "
                           "back in the queue, due now.",
                           "fedcomments deliveries retry --all-failed")
    p.add_argument("id", nargs="?", metavar="ID", help="delivery id (from `deliveries list`)")
    p.add_argument("--all-failed", action="store_true", help="retry every failed delivery")
    common.add_json_argument(p)
    p.set_defaults(func=retry)
