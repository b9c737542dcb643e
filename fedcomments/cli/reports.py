"""`reports list`: reports (ActivityPub Flag) other servers sent about content here."""

from __future__ import annotations

import argparse
from typing import Any

from fedcomments.cli import common
from fedcomments.paging import Page
from fedcomments.services import admin
from fedcomments.services.moderation import Report


async def list_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        async def fetch(cursor: str | None) -> Page[Report]:
            return await admin.reports_page(rt, limit=args.limit, cursor=cursor)

        await common.print_listing(
            args, "reports", fetch, admin.report_json,
            ["ID", "RECEIVED", "FROM", "OBJECTS", "TEXT"],
            lambda r: [r.id, r.created_at.strftime("%Y-%m-%d %H:%M"),
                       r.actor_handle or "unknown", len(r.object_ids),
                       common.one_line(admin.report_json(r)["content"], 50)],
            empty="no reports received")
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("reports", help="See reports received from other servers.",
                           description="See reports received from other servers.",
                           formatter_class=common.Formatter,
                           epilog="example:\n  fedcomments reports list")
    rsub = group.add_subparsers(dest="reports_command", metavar="ACTION", required=True)
    p = common.add_command(rsub, "list", "List received reports (Flag activities), newest "
                           "first.", "fedcomments reports list --json")
    common.add_paging_arguments(p)
    common.add_json_argument(p)
    p.set_defaults(func=list_)
