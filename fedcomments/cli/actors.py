"""`actors block|unblock|list`: refuse one fediverse account."""

from __future__ import annotations

import argparse
from typing import Any

from fedcomments.cli import common
from fedcomments.cli.domains import describe_removed
from fedcomments.model import ActorBlock
from fedcomments.paging import Page
from fedcomments.services import admin

BLOCK_HELP = """Block one fediverse account, at once, also for a running server.

ACTOR is @user@host (looked up with WebFinger) or the actor's URL (used as given, so an
account never seen here can be blocked too). Its inbox POSTs get 403 before anything is
fetched and its pending deliveries are cancelled; unless --keep-content its comments (a
tombstone stays where others replied below), reactions and follow are removed."""


async def block(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        r = await admin.block_actor(rt, args.actor, reason=args.reason,
                                    keep_content=args.keep_content)
    if args.json:
        common.print_json(admin.block_result_json(r, "actor"))
    else:
        head = f"blocked {r.target}" if r.created else f"{r.target} was already blocked"
        print(f"{head}: {describe_removed(r.removed, r.keep_content)}")
    return 0


async def unblock(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        ap_id = await admin.unblock_actor(rt, args.actor)
    if args.json:
        common.print_json({"actor": ap_id, "unblocked": True})
    else:
        print(f"unblocked {ap_id} (content removed by the block is not restored)")
    return 0


async def list_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        async def fetch(cursor: str | None) -> Page[ActorBlock]:
            return await admin.actor_blocks_page(rt, limit=args.limit, cursor=cursor)

        await common.print_listing(
            args, "actors", fetch, admin.actor_block_json,
            ["ACTOR", "BLOCKED", "COMMENTS", "REACTIONS", "FOLLOWERS", "KEPT", "REASON"], _row,
            empty="no actor is blocked")
    return 0


def _row(b: ActorBlock) -> list[Any]:
    r = admin.Removed.from_dict(b.removed)
    return [b.ap_id, b.created_at.strftime("%Y-%m-%d %H:%M"), r.comments, r.reactions,
            r.followers, "yes" if b.keep_content else "", common.one_line(b.reason, 50)]


def register(sub: Any) -> None:
    group = sub.add_parser("actors", help="Block single fediverse accounts.",
                           description="Block single fediverse accounts.",
                           formatter_class=common.Formatter, epilog=(
                               "examples:\n  fedcomments actors block @troll@social.example\n"
                               "  fedcomments actors list --json"))
    asub = group.add_subparsers(dest="actors_command", metavar="ACTION", required=True)
    p = common.add_command(asub, "block", "Block one account (@user@host or actor URL).",
                           "fedcomments actors block @troll@social.example --reason spam")
    p.description = BLOCK_HELP
    p.add_argument("actor", metavar="ACTOR", help="@user@host or the actor's URL")
    p.add_argument("--reason", default="", help="why (kept for you)")
    p.add_argument("--keep-content", action="store_true",
                   help="keep its comments, reactions and follow (still refused from now)")
    common.add_json_argument(p)
    p.set_defaults(func=block)
    p = common.add_command(asub, "unblock", "Lift an account block (removed content stays "
                           "removed).", "fedcomments actors unblock @troll@social.example")
    p.add_argument("actor", metavar="ACTOR", help="@user@host or the actor's URL")
    common.add_json_argument(p)
    p.set_defaults(func=unblock)
    p = common.add_command(asub, "list", "List blocked accounts.",
                           "fedcomments actors list --json")
    common.add_paging_arguments(p)
    common.add_json_argument(p)
    p.set_defaults(func=list_)
