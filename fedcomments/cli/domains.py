"""`domains block|unblock|list|import|export`: refuse whole servers and their subdomains."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fedcomments.cli import common
from fedcomments.errors import InvalidInput
from fedcomments.model import DomainBlock
from fedcomments.paging import Page
from fedcomments.services import admin

BLOCK_HELP = """Block a domain and every subdomain of it, at once, also for a running server.

From then on the inbox answers 403 to it before fetching anything, nothing is fetched
from it or delivered to it, and its pending deliveries are cancelled. Unless
--keep-content, its comments (a tombstone stays where others replied below), reactions
and followers are removed. DOMAIN may be a host, a URL, @user@host or *.host; IDNs are
stored in punycode. Blocking again is harmless. Prints what was removed."""

IMPORT_HELP = """Import a blocklist: Mastodon's CSV export or a plain list of domains.

Mastodon CSV (#domain,#severity,#reject_media,#reject_reports,#public_comment,#obfuscate):
`suspend` rows become blocks with #public_comment as the reason; `silence` and `noop` rows
are NOT blocked (a comment server has no timeline to limit a server in) and are reported
as skipped with their line numbers. A plain list has one domain per line; blank lines and
lines starting with '#' are ignored. The report lists every line that was not added:
already present (or covered by a parent domain's block), duplicate, skipped, invalid.
Blocking more than one domain asks for confirmation unless --yes. FILE '-' reads stdin."""


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def describe_removed(r: admin.Removed, keep_content: bool) -> str:
    cancelled = f"cancelled {_plural(r.deliveries, 'pending delivery', 'pending deliveries')}"
    if keep_content:
        return f"content kept (--keep-content); {cancelled}"
    return (f"removed {_plural(r.comments, 'comment')}, {_plural(r.reactions, 'reaction')}, "
            f"{_plural(r.followers, 'follower')}; {cancelled}")


def confirmed(prompt: str, assume_yes: bool) -> int | None:
    """None to go on; else the exit code (2: no terminal to ask, 1: the admin said no)."""
    if common.confirm(prompt, assume_yes):
        return None
    if not sys.stdin.isatty():
        return 2
    print("fedcomments: cancelled", file=sys.stderr)
    return 1


async def block(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        r = await admin.block_domain(rt, args.domain, reason=args.reason,
                                     keep_content=args.keep_content)
    if args.json:
        common.print_json(admin.block_result_json(r, "domain"))
    elif r.covered_by:
        print(f"{r.target} is already covered by the block on {r.covered_by}: "
              f"{describe_removed(r.removed, r.keep_content)}")
    else:
        head = f"blocked {r.target} and its subdomains" if r.created else \
            f"{r.target} was already blocked"
        print(f"{head}: {describe_removed(r.removed, r.keep_content)}")
    return 0


async def unblock(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        domain = await admin.unblock_domain(rt, args.domain)
    if args.json:
        common.print_json({"domain": domain, "unblocked": True})
    else:
        print(f"unblocked {domain} (content removed by the block is not restored)")
    return 0


async def list_(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        async def fetch(cursor: str | None) -> Page[DomainBlock]:
            return await admin.domain_blocks_page(rt, limit=args.limit, cursor=cursor)

        await common.print_listing(
            args, "domains", fetch, admin.domain_block_json,
            ["DOMAIN", "BLOCKED", "COMMENTS", "REACTIONS", "FOLLOWERS", "DELIVERIES", "KEPT",
             "REASON"], _row, empty="no domain is blocked")
    return 0


def _row(b: DomainBlock) -> list[Any]:
    r = admin.Removed.from_dict(b.removed)
    return [b.domain, b.created_at.strftime("%Y-%m-%d %H:%M"), r.comments, r.reactions,
            r.followers, r.deliveries, "yes" if b.keep_content else "",
            common.one_line(b.reason, 50)]


def _read(path: str) -> str:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
        return data.decode("utf-8")
    except OSError as exc:
        raise InvalidInput(f"file: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"file: {path} is not UTF-8 text") from None


def _print_report(report: admin.ImportReport) -> None:
    data = admin.import_report_json(report)
    kind = "Mastodon CSV" if report.format == "mastodon" else "plain list"
    verb = "would add" if report.dry_run else "added"
    print(f"{kind}: {verb} {len(report.added)}, already present {len(report.present)}, "
          f"duplicates {len(report.duplicates)}, skipped {len(report.skipped)}, "
          f"invalid {len(report.invalid)}")
    lines: list[list[Any]] = [[r["line"], verb, r["domain"], ""] for r in data["added"]]
    lines += [[r["line"], "already present", r["domain"],
               "" if r["covered_by"] == r["domain"] else f"covered by {r['covered_by']}"]
              for r in data["already_present"]]
    for key, label in (("duplicates", "duplicate"), ("skipped", "skipped"),
                       ("invalid", "invalid")):
        lines += [[n["line"], label, common.one_line(n["text"], 40), n["reason"]]
                  for n in data[key]]
    if lines:
        common.print_table(["LINE", "RESULT", "DOMAIN", "DETAIL"],
                           sorted(lines, key=lambda row: row[0]))
    if not report.dry_run and report.added:
        print(describe_removed(report.removed, report.keep_content))


async def import_(args: argparse.Namespace) -> int:
    text = _read(args.file)
    async with common.runtime(args) as rt:
        plan = await admin.import_domain_blocks(rt, text, dry_run=True)
        if not args.dry_run and len(plan.added) > 1:
            code = confirmed(f"block {len(plan.added)} domains"
                             + ("" if args.keep_content else " and remove their content"),
                             args.yes)
            if code is not None:
                return code
        report = plan if args.dry_run else await admin.import_domain_blocks(
            rt, text, keep_content=args.keep_content)
    if args.json:
        common.print_json(admin.import_report_json(report))
    else:
        _print_report(report)
    return 0


async def export(args: argparse.Namespace) -> int:
    async with common.runtime(args) as rt:
        text = await admin.export_domain_blocks(rt, args.format)
    _write(args.output, text)
    return 0


def _write(path: str | None, text: str) -> None:
    if not path or path == "-":
        sys.stdout.write(text)
        return
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"--output: cannot write {path}: {exc.strerror or exc}") from None


def register(sub: Any) -> None:
    group = sub.add_parser("domains", help="Block whole servers (and their subdomains).",
                           description="Block whole servers (and their subdomains).",
                           formatter_class=common.Formatter, epilog=(
                               "examples:\n  fedcomments domains block spam.example\n"
                               "  fedcomments domains import domain_blocks.csv --yes\n"
                               "  fedcomments domains list --json"))
    dsub = group.add_subparsers(dest="domains_command", metavar="ACTION", required=True)
    p = common.add_command(dsub, "block", "Block a domain and all its subdomains.",
                           'fedcomments domains block spam.example --reason "harassment"')
    p.description = BLOCK_HELP
    p.add_argument("domain", metavar="DOMAIN", help="host, URL, @user@host or *.host")
    p.add_argument("--reason", default="", help="why (kept for you, exported as the comment)")
    p.add_argument("--keep-content", action="store_true",
                   help="keep its comments, reactions and followers (still refused from now)")
    common.add_json_argument(p)
    p.set_defaults(func=block)
    p = common.add_command(dsub, "unblock", "Lift a domain block (removed content stays "
                           "removed).", "fedcomments domains unblock spam.example")
    p.add_argument("domain", metavar="DOMAIN")
    common.add_json_argument(p)
    p.set_defaults(func=unblock)
    p = common.add_command(dsub, "list", "List blocked domains with what each block removed.",
                           "fedcomments domains list --json")
    common.add_paging_arguments(p)
    common.add_json_argument(p)
    p.set_defaults(func=list_)
    p = common.add_command(dsub, "import", "Import a Mastodon CSV blocklist or a plain list.",
                           "fedcomments domains import domain_blocks.csv --yes")
    p.description = IMPORT_HELP
    p.add_argument("file", metavar="FILE", help="the blocklist file ('-' for stdin)")
    p.add_argument("--keep-content", action="store_true",
                   help="keep what the new blocks' domains left here")
    p.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    common.add_json_argument(p)
    p.set_defaults(func=import_)
    p = common.add_command(dsub, "export", "Export blocks as Mastodon CSV or a plain list.",
                           "fedcomments domains export --format mastodon > blocks.csv")
    p.add_argument("--format", choices=admin.EXPORT_FORMATS, default="mastodon",
                   help="mastodon (CSV every block as suspend; default) or plain")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=export)
