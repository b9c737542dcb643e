"""`posts add|list|show|update|delete|backfill`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fedcomments.cli import common, snippet
from fedcomments.errors import InvalidInput
from fedcomments.model import Post
from fedcomments.paging import Page
from fedcomments.services import backfill, feed_sync
from fedcomments.services import posts as post_service


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    content = ""
    if args.content_file:
        try:
            content = Path(args.content_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"--content-file: cannot read {args.content_file}: {exc}") from None
    return {
        "url": args.url, "title": args.title, "summary": args.summary or "", "content": content,
        "tags": args.tag or [], "image": args.image, "published": args.published,
    }


async def add(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        change = await post_service.add_post(rt, post_service.post_input(_fields(args)))
    data = post_service.post_summary(change.post)
    if args.json:
        common.print_json(data)
    else:
        verb = "added" if change.created else "updated"
        print(f"{verb} post {change.post.id}: {change.post.title}\n  {change.post.ap_id}")
    return 0


async def update(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        post = await post_service.update_post(rt, args.ref,
                                              post_service.post_input(_fields(args)))
    if args.json:
        common.print_json(post_service.post_summary(post))
    else:
        print(f"updated post {post.id}: {post.title}")
    return 0


async def list_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        async def fetch(cursor: str | None) -> Page[tuple[Post, dict[str, int]]]:
            return await post_service.posts_page_with_counts(
                rt, include_deleted=args.deleted, limit=args.limit, cursor=cursor)

        await common.print_listing(
            args, "posts", fetch, lambda pc: post_service.post_summary(*pc),
            ["ID", "PUBLISHED", "TITLE", "COMMENTS", "PENDING", "LIKES", "BOOSTS",
             "ACTIVITYPUB ID"],
            lambda pc: [pc[0].id, pc[0].published_at.strftime("%Y-%m-%d"),
                        common.one_line(pc[0].title, 40), pc[1]["comments"], pc[1]["pending"],
                        pc[1]["likes"], pc[1]["boosts"], pc[0].ap_id],
            empty="no posts")
    return 0


async def show(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        post, counts = await post_service.post_with_counts(rt, args.ref)
        gaps = await backfill.gaps(rt, post.id)
    data = post_service.post_summary(post, counts)
    data["replies"] = backfill.gaps_json(gaps)
    if args.json:
        common.print_json(data)
        return 0
    for key, value in data.items():
        if key == "counts":
            value = ", ".join(f"{n} {name}" for name, n in counts.items())
        elif key == "replies":
            value = (f"{gaps.held} held, {gaps.known} known to exist "
                     f"({gaps.known - gaps.held} not held)")
        print(f"{key:>10}: {value}")
    for gap in gaps.missing:
        print(f"{'':>10}  not imported: {gap.ap_id} ({gap.reason})")
    return 0


async def backfill_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        post = await post_service.get_post(rt, args.ref)
        report = await backfill.backfill_post(rt, post.id)
        gaps = await backfill.gaps(rt, post.id)
    if args.json:
        common.print_json({**backfill.report_json(report), "replies": backfill.gaps_json(gaps)})
        return 0
    for ap_id in report.imported:
        print(f"imported {ap_id}")
    for ap_id, reason in report.missing.items():
        print(f"not imported {ap_id}: {reason}")
    print(f"post {post.id}: {len(report.imported)} imported, {len(report.missing)} left out, "
          f"{len(report.collections)} collections read, {report.fetches} fetches; "
          f"{gaps.held} held, {gaps.known} known to exist")
    return 0


async def delete(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        post = await post_service.delete_post(rt, args.ref)
    print(f"deleted post {post.id}: {post.title}")
    return 0


async def sync(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        outcomes = await feed_sync.sync_feeds(rt, feed=args.feed, dry_run=args.dry_run)
    if args.json:
        common.print_json({"dry_run": args.dry_run, "feeds": [o.as_json() for o in outcomes]})
    else:
        for outcome in outcomes:
            _print_sync(outcome, args.dry_run)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _print_sync(outcome: feed_sync.FeedOutcome, dry_run: bool) -> None:
    would = "would be " if dry_run else ""
    if outcome.status == "failed":
        print(f"{outcome.url}: failed: {outcome.error}")
        return
    if outcome.status == "not-modified":
        print(f"{outcome.url}: not modified since the last poll")
        return
    added, updated, skipped = (outcome.of(a) for a in ("added", "updated", "skipped"))
    first = " (first poll: older entries are imported without announcing them)" \
        if outcome.first_poll else ""
    print(f"{outcome.url}: {len(added)} {would}added, {len(updated)} {would}updated, "
          f"{len(skipped)} skipped{first}")
    for e in added:
        how = "announced" if e.announced else "quietly"
        print(f"  added    {e.url}  {common.one_line(e.title, 50)}  ({how})")
    for e in updated:
        print(f"  updated  {e.url}  {common.one_line(e.title, 50)}")
    for e in skipped:
        print(f"  skipped  {e.url or e.id or '(no id)'}  ({e.reason})")


def _post_fields(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True, help="the post's permalink on the blog")
    p.add_argument("--title", required=True)
    p.add_argument("--summary")
    p.add_argument("--content-file", metavar="FILE", help="HTML body of the post")
    p.add_argument("--tag", action="append", help="hashtag (repeatable)")
    p.add_argument("--image", help="URL of a preview image")
    p.add_argument("--published", help="ISO-8601 date/time (future dates federate later)")
    common.add_json_argument(p)


def register(sub: Any) -> None:
    posts = sub.add_parser("posts", help="Register and manage blog posts.",
                           description="Register and manage blog posts.")
    psub = posts.add_subparsers(dest="posts_command", metavar="ACTION", required=True)
    p = common.add_command(psub, "add", "Register a post (the same permalink again updates it).",
                           'fedcomments posts add --url https://blog.example/hello/ '
                           '--title "Hello" --tag intro')
    _post_fields(p)
    p.set_defaults(func=add)
    p = common.add_command(psub, "update", "Change a post found by id, slug or permalink.",
                           'fedcomments posts update 3 --url https://blog.example/hello/ '
                           '--title "Hello again"')
    p.add_argument("ref", help="post id, slug or permalink")
    _post_fields(p)
    p.set_defaults(func=update)
    p = common.add_command(psub, "list", "List posts.", "fedcomments posts list --json")
    p.add_argument("--deleted", action="store_true", help="include deleted posts")
    common.add_paging_arguments(p)
    common.add_json_argument(p)
    p.set_defaults(func=list_)
    p = common.add_command(psub, "show", "Show one post.", "fedcomments posts show hello")
    p.add_argument("ref", help="post id, slug or permalink")
    common.add_json_argument(p)
    p.set_defaults(func=show)
    p = common.add_command(
        psub, "backfill", "Fetch the post's replies that never reached us: read the "
        "conversation where its replies' servers publish it (context collections, replies "
        "collections) and import the public replies from their own servers.",
        "fedcomments posts backfill hello --json")
    p.add_argument("ref", help="post id, slug or permalink")
    common.add_json_argument(p)
    p.set_defaults(func=backfill_)
    p = common.add_command(psub, "delete", "Delete a post; its object then answers 410.",
                           "fedcomments posts delete hello")
    p.add_argument("ref", help="post id, slug or permalink")
    p.set_defaults(func=delete)
    p = common.add_command(psub, "sync", "Poll the blog's feeds ([blog] feeds) now: new "
                           "entries become posts, changed ones are updated.",
                           "fedcomments posts sync --dry-run")
    p.add_argument("--feed", metavar="URL", help="only this feed (one of [blog] feeds)")
    p.add_argument("--dry-run", action="store_true",
                   help="show what would be added and updated; change nothing")
    common.add_json_argument(p)
    p.set_defaults(func=sync)
    snippet.register_into(psub)
