"""`followers list`: who follows the blog."""

from __future__ import annotations

import argparse
from typing import Any

from fedcomments.cli import common
from fedcomments.services import admin


async def list_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        found = await admin.list_followers(rt)
    if args.json:
        common.print_json({"followers": [admin.follower_json(f) for f in found]})
        return 0
    if not found:
        print("no followers yet")
        return 0
    common.print_table(
        ["HANDLE", "NAME", "SINCE", "INBOX"],
        [[f.actor.handle, common.one_line(f.actor.display_name, 30),
          f.created_at.strftime("%Y-%m-%d"), f.actor.shared_inbox or f.actor.inbox]
         for f in found],
    )
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("followers", help="See who follows the blog.",
                           description="See who follows the blog.",
                           formatter_class=common.Formatter,
                           epilog="example:\n  fedcomments followers list --json")
    fsub = group.add_subparsers(dest="followers_command", metavar="ACTION", required=True)
    p = common.add_command(fsub, "list", "List the blog's followers.",
                           "fedcomments followers list --json")
    common.add_json_argument(p)
    p.set_defaults(func=list_)
