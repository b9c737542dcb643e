"""`export`, `backup`, `restore`: take everything out as JSON, copy the running server's
database, and put a copy back."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from fedcomments.cli import common
from fedcomments.cli.domains import confirmed
from fedcomments.errors import InvalidInput
from fedcomments.services import backups, exporter

EXPORT_HELP = """Write every post and comment as one JSON document (to stdout, or --output):
held, rejected and private comments too, with thread structure, authors (emails
included), dates, fediverse ids and URLs, and reactions. --public-only keeps what the
public threads show and leaves emails out. The format is described in the README;
`fedcomments import fedcomments FILE` reads it back on any server."""

BACKUP_HELP = """Copy the whole database (posts, comments, followers, the blog's keys) into
FILE, consistently, while the server keeps running: every reply acknowledged before the
backup started is in it. FILE is written with mode 0600 (it holds the private key) and
replaced only once the copy is complete and checked."""

RESTORE_HELP = """Put a backup made with `fedcomments backup` in place of the configured
database. Stop the server and workers first (a database in use is refused). A backup of a
newer schema than this fedcomments is refused; an older one is upgraded by `serve`.
Replacing a database that holds posts or comments asks first (--yes to skip)."""


async def export(args: argparse.Namespace) -> int:
    out = sys.stdout
    target: Any = None
    if args.output and args.output != "-":
        try:
            # The CLI's own event loop serves nothing else: a blocking open is harmless.
            # Owner-only, like the database: an export holds readers' email addresses.
            fd = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
            target = open(fd, "w", encoding="utf-8")  # noqa: SIM115, ASYNC230
        except OSError as exc:
            raise InvalidInput(f"--output: cannot write {args.output}: "
                               f"{exc.strerror or exc}") from None
        out = target
    try:
        async with common.runtime(args) as rt:
            async for piece in exporter.export_json(rt, post=args.post,
                                                     public_only=args.public_only):
                out.write(piece)
    finally:
        if target is not None:
            target.close()
    return 0


async def backup(args: argparse.Namespace) -> int:
    info = await backups.backup(common.settings(args), Path(args.file))
    if args.json:
        common.print_json(backups.copy_json(info))
    else:
        print(f"backed up {info.posts} posts and {info.comments} comments "
              f"(schema {info.schema_version}, {info.bytes} bytes) to {info.path}")
    return 0


async def restore(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    incoming = await backups.inspect(Path(args.file))
    present = await backups.current(settings)
    if present is not None and (present.posts or present.comments) and (code := confirmed(
            f"replace {settings.database_path} ({present.posts} posts, {present.comments} "
            f"comments) with {args.file} ({incoming.posts} posts, {incoming.comments} "
            "comments)", args.yes)):
        return code
    info = await backups.restore(settings, Path(args.file))
    if args.json:
        common.print_json(backups.copy_json(info))
    else:
        print(f"restored {info.posts} posts and {info.comments} comments into {info.path}")
    return 0


def register(sub: Any) -> None:
    p = common.add_command(sub, "export", "Export posts and comments as JSON.",
                           "fedcomments export --public-only > comments.json")
    p.description = EXPORT_HELP
    p.add_argument("--post", metavar="POST", help="only this post (id, slug or permalink)")
    p.add_argument("--public-only", action="store_true",
                   help="only what the public threads show, and no emails")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=export)
    p = common.add_command(sub, "backup", "Copy the database consistently, also while the "
                           "server runs.", "fedcomments backup /var/backups/fedcomments.db")
    p.description = BACKUP_HELP
    p.add_argument("file", metavar="FILE", help="where to write the copy")
    common.add_json_argument(p)
    p.set_defaults(func=backup)
    p = common.add_command(sub, "restore", "Put a backup back (the server must be stopped).",
                           "fedcomments restore /var/backups/fedcomments.db --yes")
    p.description = RESTORE_HELP
    p.add_argument("file", metavar="FILE", help="a file written by `fedcomments backup`")
    p.add_argument("--yes", action="store_true", help="do not ask before replacing data")
    common.add_json_argument(p)
    p.set_defaults(func=restore)
