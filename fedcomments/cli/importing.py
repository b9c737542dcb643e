"""`import FORMAT FILE`: bring in the comments a blog already has (WordPress, Disqus, Isso,
another fedcomments)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fedcomments.cli import common
from fedcomments.services import importer

HELP = """Import comments from WordPress (WXR: Tools › Export), Disqus (its XML export),
Isso (its SQLite database; --site gives the blog's address) or another fedcomments
(`fedcomments export`).

Each comment keeps its author's name, email (never shown), website, date, text (sanitised
like every comment), its place in the thread and its status: approved ones are shown,
held ones wait for `comments approve`; spam and trash are skipped (--keep-spam imports
them as rejected), so are pingbacks and trackbacks (--keep-pingbacks). Posts are matched
by permalink (http/https, host case and a trailing slash do not matter); a missing one is
created from the export's title and date. Nothing is sent to the fediverse. Importing the
same file again changes nothing; a newer export adds only what is new. The file is read
once to check it before anything is written."""


class _Bar:
    """A one-line progress count on stderr, only when it is a terminal."""

    def __init__(self) -> None:
        self.shown = sys.stderr.isatty()

    def __call__(self, done: int, total: int | None) -> None:
        if not self.shown:
            return
        share = f" ({100 * done // total}%)" if total else ""
        sys.stderr.write(f"\rimporting: {done}/{total or '?'} records{share}")
        sys.stderr.flush()

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\n")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _print(report: importer.ImportReport) -> None:
    verb = "would import" if report.dry_run else "imported"
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(report.imported.items()))
    print(f"{report.source}: {verb} {_plural(report.comments, 'comment')}"
          + (f" ({statuses})" if statuses else "")
          + f"; {report.existing} already here")
    print(f"posts: {report.posts_created} new (created quietly), {report.posts_matched} "
          "already here")
    if report.reactions:
        print(f"reactions: {report.reactions}")
    if report.skipped:
        print("skipped: " + ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())))
    if report.orphans:
        print(f"{_plural(report.orphans, 'reply')} whose parent is not in the export stay at "
              "the top of their thread")


async def import_(args: argparse.Namespace) -> int:
    records = importer.open_export(args.format, Path(args.file), args.site)
    options = importer.ImportOptions(keep_spam=args.keep_spam,
                                     keep_pingbacks=args.keep_pingbacks, dry_run=args.dry_run)
    bar = _Bar()
    async with common.runtime(args) as rt:
        try:
            report = await importer.import_records(rt, args.format, records, options,
                                                   progress=bar)
        finally:
            bar.end()
    if args.json:
        common.print_json(importer.report_json(report))
    else:
        _print(report)
    return 0


def register(sub: Any) -> None:
    p = common.add_command(sub, "import", "Import comments from WordPress, Disqus, Isso or "
                           "another fedcomments.",
                           "fedcomments import wordpress blog.WordPress.2024-05-01.xml")
    p.description = HELP
    p.add_argument("format", choices=importer.FORMATS, metavar="FORMAT",
                   help="wordpress, disqus, isso or fedcomments")
    p.add_argument("file", metavar="FILE", help="the export (an Isso database for isso)")
    p.add_argument("--site", metavar="URL", help="isso only: the blog's address")
    p.add_argument("--keep-spam", action="store_true",
                   help="import spam and trashed comments too, as rejected (never shown)")
    p.add_argument("--keep-pingbacks", action="store_true",
                   help="import pingbacks, trackbacks and webmentions too")
    p.add_argument("--dry-run", action="store_true", help="read and report; change nothing")
    common.add_json_argument(p)
    p.set_defaults(func=import_)
