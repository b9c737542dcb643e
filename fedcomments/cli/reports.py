"""`reports list`: reports (ActivityPub Flag) other servers sent about content here."""

from __future__ import annotations

import argparse
from typing import Any

from fedcomments.cli import common
from fedcomments.services import admin


async def list_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        found = await admin.list_reports(rt)
    if args.json:
        common.print_json({"reports": [admin.report_json(r) for r in found]})
        return 0
    if not found:
        print("no reports received")
        return 0
    common.print_table(
        ["ID", "RECEIVED", "FROM", "OBJECTS", "TEXT"],
        [[r.id, r.created_at.strftime("%Y-%m-%d %H:%M"), r.actor_handle or "unknown",
          len(r.object_ids), common.one_line(admin.report_json(r)["content"], 50)]
         for r in found],
    )
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("reports", help="See reports received from other servers.",
                           description="See reports received from other servers.",
                           formatter_class=common.Formatter,
                           epilog="example:\n  fedcomments reports list")
    rsub = group.add_subparsers(dest="reports_command", metavar="ACTION", required=True)
    p = common.add_command(rsub, "list", "List received reports (Flag activities), newest "
                           "first.", "fedcomments reports list --json")
    common.add_json_argument(p)
    p.set_defaults(func=list_)
