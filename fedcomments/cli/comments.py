"""`comments list|show|approve|reject|delete|reply|recheck`: moderate, answer and recheck
comments."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from typing import Any

from fedcomments.ap.sanitize import plain_text
from fedcomments.cli import common
from fedcomments.cli.domains import confirmed
from fedcomments.errors import InvalidInput
from fedcomments.paging import Page
from fedcomments.services import admin
from fedcomments.services.admin import ListedComment


def _handle(c: Any) -> str:
    if c.actor is not None:
        return str(c.actor.handle)
    kind = "owner" if c.origin.value == "owner" else "local"
    # Imported comments say where they came from.
    return f"{kind} ({c.imported.source})" if c.imported is not None else kind


def _status(c: Any, spam: str | None = None) -> str:
    private = c.visibility.value in ("followers", "direct")
    status = f"{c.status.value} ({c.visibility.value})" if private else c.status.value
    if c.withheld:
        status = f"{c.status.value} (withheld)"
    return f"{status}, {spam}" if spam in ("spam", "queued") else status


async def list_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        async def fetch(cursor: str | None) -> Page[ListedComment]:
            return await admin.comments_page(rt, post=args.post, status=args.status,
                                             limit=args.limit, cursor=cursor)

        await common.print_listing(
            args, "comments", fetch, admin.comment_json,
            ["ID", "POST", "AUTHOR", "HANDLE", "STATUS", "TIME", "TEXT"], _row,
            empty="no comments match")
    return 0


def _row(x: ListedComment) -> list[Any]:
    c = x.comment
    author = admin.comment_json(x)["author"]["name"]
    return [c.id, common.one_line(x.post_slug, 24), common.one_line(author, 20),
            _handle(c), _status(c, x.spam), c.published_at.strftime("%Y-%m-%d %H:%M"),
            common.one_line(plain_text(c.content).split("\n", 1)[0], 50)]


async def show(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        detail = await admin.get_comment(rt, admin.parse_ids([args.id])[0])
    data = admin.comment_detail_json(detail)
    if args.json:
        common.print_json(data)
        return 0
    c = detail.listed.comment
    fields = [("id", c.id), ("post", detail.listed.post_slug), ("author", data["author"]["name"]),
              ("handle", _handle(c)), ("status", c.status.value),
              ("spam check", detail.listed.spam or "not checked"),
              ("visibility", c.visibility.value), ("published", data["published"]),
              ("updated", data["updated"] or ""), ("parent", c.parent_id or ""),
              ("replies", detail.replies),
              ("reactions", ", ".join(f"{k} {v}" for k, v in detail.reactions.items()) or "0"),
              ("url", c.url or c.ap_id or ""), ("summary", c.summary or "")]
    if c.withheld:
        fields.insert(6, ("withheld", f"{c.withheld} (addressed {c.audience.value})"))
    if c.imported is not None:
        fields.append(("imported", f"from {c.imported.source} ({c.imported.site}), id "
                                   f"{c.imported.id}"))
    for name, value in fields:
        print(f"{name:>10}: {value}")
    print()
    print(data["text"])
    return 0


def _print_outcomes(args: argparse.Namespace, outcomes: list[admin.Outcome], verb: str) -> None:
    if args.json:
        common.print_json({"comments": [admin.outcome_json(o) for o in outcomes]})
        return
    for o in outcomes:
        what = f"{verb} comment {o.id}" if o.changed else f"comment {o.id} was already {o.status}"
        if o.changed and o.status == "deleted":
            what += " (a tombstone keeps its replies threaded)"
        print(what + (" and trusted its author" if o.author_trusted else ""))


async def approve(args: argparse.Namespace) -> int:
    ids = admin.parse_ids(args.ids)
    async with common.runtime(args) as rt:
        outcomes = await admin.approve_comments(rt, ids, trust_author=args.trust_author)
    _print_outcomes(args, outcomes, "approved")
    return 0


async def _remove(args: argparse.Namespace, verb: str, done: str,
                  service: Callable[..., Awaitable[Any]]) -> int:
    """reject and delete: confirm when several comments are named, then one service call."""
    ids = admin.parse_ids(args.ids)
    if len(ids) > 1 and (code := confirmed(f"{verb} {len(ids)} comments", args.yes)):
        return code
    async with common.runtime(args) as rt:
        outcomes = await service(rt, ids)
    _print_outcomes(args, outcomes, done)
    return 0


async def reject(args: argparse.Namespace) -> int:
    return await _remove(args, "reject", "rejected", admin.reject_comments)


async def delete(args: argparse.Namespace) -> int:
    return await _remove(args, "delete", "deleted", admin.delete_comments)


async def recheck(args: argparse.Namespace) -> int:
    if sum((bool(args.ids), args.post is not None, args.all)) != 1:
        raise InvalidInput("name comment ids, --post POST or --all (one of them)")
    ids = admin.parse_ids(args.ids) if args.ids else None
    async with common.runtime(args) as rt:
        outcomes = await admin.recheck_comments(rt, comment_ids=ids, post=args.post,
                                                every=args.all)
    if args.json:
        common.print_json({"comments": [admin.recheck_json(o) for o in outcomes]})
        return 0
    if not outcomes:
        print("no stored fediverse replies to recheck")
        return 0
    common.print_table(["ID", "OUTCOME", "DETAIL", "ACTIVITYPUB ID"],
                       [[o.id, o.outcome, common.one_line(o.detail, 60), o.ap_id or ""]
                        for o in outcomes])
    return 0


async def reply(args: argparse.Namespace) -> int:
    comment_id = admin.parse_ids([args.id])[0]
    async with common.runtime(args) as rt:
        answer = await admin.reply_to_comment(rt, comment_id, args.text)
    print(f"replied to comment {comment_id}: comment {answer.id}, {answer.ap_id}")
    return 0


def _ids(p: argparse.ArgumentParser) -> None:
    p.add_argument("ids", metavar="ID", nargs="+", help="comment id (several allowed)")
    common.add_json_argument(p)


def register(sub: Any) -> None:
    group = sub.add_parser("comments", help="Moderate and answer comments.",
                           description="Moderate and answer comments.",
                           formatter_class=common.Formatter, epilog=(
                               "examples:\n  fedcomments comments list --status pending\n"
                               "  fedcomments comments approve 42 --trust-author\n"
                               "  fedcomments comments delete 42 43 --yes"))
    csub = group.add_subparsers(dest="comments_command", metavar="ACTION", required=True)
    p = common.add_command(
        csub, "list", "List comments, newest first (private = followers-only and direct).",
        "fedcomments comments list --status pending")
    p.add_argument("--post", metavar="POST", help="only this post (id, slug or permalink)")
    p.add_argument("--status", choices=admin.STATUSES, default="all",
                   help="pending, approved, rejected, private or all (default; without "
                        "deleted placeholders)")
    common.add_paging_arguments(p)
    common.add_json_argument(p)
    p.set_defaults(func=list_)
    p = common.add_command(csub, "show", "Show one comment in full.", "fedcomments comments "
                           "show 42")
    p.add_argument("id", metavar="ID")
    common.add_json_argument(p)
    p.set_defaults(func=show)
    p = common.add_command(csub, "approve", "Approve comments (public ones then show).",
                           "fedcomments comments approve 42 43 --trust-author")
    _ids(p)
    p.add_argument("--trust-author", action="store_true",
                   help="also trust the authors: their next comments skip the queue")
    p.set_defaults(func=approve)
    p = common.add_command(csub, "reject", "Hide comments from every public surface (kept "
                           "for audit).", "fedcomments comments reject 42")
    _ids(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=reject)
    p = common.add_command(csub, "delete", "Delete comments (a tombstone stays where replies "
                           "hang below).", "fedcomments comments delete 42 43 --yes")
    _ids(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    p.set_defaults(func=delete)
    p = common.add_command(
        csub, "recheck", "Fetch stored fediverse replies again from their servers now: "
        "deleted ones become tombstones, ones made followers-only or direct become private, "
        "edited ones are updated; errors change nothing.",
        "fedcomments comments recheck --post hello --json")
    p.add_argument("ids", metavar="ID", nargs="*", help="comment id (several allowed)")
    p.add_argument("--post", metavar="POST", help="every reply of this post (id, slug or "
                   "permalink)")
    p.add_argument("--all", action="store_true", help="every stored fediverse reply")
    common.add_json_argument(p)
    p.set_defaults(func=recheck)
    p = common.add_command(csub, "reply", "Answer a comment as the blog (federated to its "
                           "author).", 'fedcomments comments reply 42 --text "Thanks!"')
    p.add_argument("id", metavar="ID")
    p.add_argument("--text", required=True, help="the answer (plain text)")
    p.set_defaults(func=reply)
