"""`followers list`: who follows the blog."""

from __future__ import annotations

import argparse
from typing import Any

from fedcomments.cli import common
from fedcomments.model import Follower
from fedcomments.paging import Page
from fedcomments.services import admin


async def list_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        async def fetch(cursor: str | None) -> Page[Follower]:
            return await admin.followers_page(rt, limit=args.limit, cursor=cursor)

        await common.print_listing(
            args, "followers", fetch, admin.follower_json, ["HANDLE", "NAME", "SINCE", "INBOX"],
            lambda f: [f.actor.handle, common.one_line(f.actor.display_name, 30),
                       f.created_at.strftime("%Y-%m-%d"), f.actor.shared_inbox or f.actor.inbox],
            empty="no followers yet")
    return 0


def register(sub: Any) -> None:
    group = sub.add_parser("followers", help="See who follows the blog.",
                           description="See who follows the blog.",
                           formatter_class=common.Formatter,
                           epilog="example:\n  fedcomments followers list --json")
    fsub = group.add_subparsers(dest="followers_command", metavar="ACTION", required=True)
    p = common.add_command(fsub, "list", "List the blog's followers.",
                           "fedcomments followers list --json")
    common.add_paging_arguments(p)
    common.add_json_argument(p)
    p.set_defaults(func=list_)
