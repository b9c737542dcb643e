"""Shared CLI pieces: --config/--json options, opening the runtime, table and JSON output."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fedcomments.config import Settings, load_settings
from fedcomments.paging import MAX_PAGE, Page
from fedcomments.runtime import Runtime, open_runtime

T = TypeVar("T")


class Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS,
        help="TOML config file (default: $FEDCOMMENTS_CONFIG, else built-in defaults)",
    )


def add_command(
    sub: Any, name: str, help_text: str, example: str, **kwargs: Any
) -> argparse.ArgumentParser:
    """A sub-command with --config and an example in its --help."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help_text, description=help_text, epilog=f"example:\n  {example}",
        formatter_class=Formatter, **kwargs,
    )
    add_config_argument(parser)
    return parser


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "config", None))


@contextlib.asynccontextmanager
async def runtime(args: argparse.Namespace) -> AsyncIterator[Runtime]:
    async with open_runtime(settings(args)) as rt:
        yield rt


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def one_line(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def confirm(prompt: str, assume_yes: bool) -> bool:
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"fedcomments: {prompt} — refusing without --yes (no terminal to ask)",
              file=sys.stderr)
        return False
    return input(f"{prompt} [y/N] ").strip().lower() in ("y", "yes")


# --- listings: cursor paging ----------------------------------------------------------


def add_paging_arguments(parser: argparse.ArgumentParser, default: int = 100,
                         maximum: int = MAX_PAGE) -> None:
    """--limit, --cursor and --all, the same on every listing."""
    parser.add_argument("--limit", default=None,
                        help=f"at most this many per page (default {default}, at most "
                             f"{maximum})")
    parser.add_argument("--cursor", metavar="CURSOR",
                        help="the page after the one that printed this cursor")
    parser.add_argument("--all", action="store_true",
                        help="every page, one after the other (streamed: memory stays small)")


async def print_listing(
    args: argparse.Namespace, name: str, fetch: Callable[[str | None], Awaitable[Page[T]]],
    to_json: Callable[[T], Any], headers: Sequence[str], to_row: Callable[[T], Sequence[Any]],
    *, empty: str, head: dict[str, Any] | None = None,
) -> None:
    """Print one page of a listing (or every page with --all) as a table or as JSON
    `{...head, NAME: [...], "next_cursor": CURSOR|null}`; with --all the JSON is written
    page by page, so even 100,000 rows never sit in memory at once."""
    cursor: str | None = args.cursor
    widths: list[int] = [len(h) for h in headers]
    shown = 0
    if args.json:
        sys.stdout.write(json.dumps(head or {}, ensure_ascii=False, default=str)[:-1]
                         + (", " if head else "") + json.dumps(name) + ": [")
    while True:
        page = await fetch(cursor)
        for item in page.items:
            if args.json:
                sys.stdout.write(("," if shown else "") + "\n  "
                                 + json.dumps(to_json(item), ensure_ascii=False, default=str))
            shown += 1
        if not args.json:
            rows = [[("" if c is None else str(c)) for c in to_row(x)] for x in page.items]
            if rows and shown == len(page.items):
                widths = [max([w] + [len(r[i]) for r in rows]) for i, w in enumerate(widths)]
                _print_row(headers, widths)
            for row in rows:
                _print_row(row, widths)
        sys.stdout.flush()
        cursor = page.next_cursor
        if cursor is None or not args.all:
            break
    if args.json:
        sys.stdout.write(("\n" if shown else "") + "], \"next_cursor\": "
                         + json.dumps(cursor) + "}\n")
    elif shown == 0:
        print(empty)
    elif cursor is not None:
        print(f"(more: --cursor {cursor})")


def _print_row(cells: Sequence[Any], widths: list[int]) -> None:
    print("  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
