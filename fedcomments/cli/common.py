"""Shared CLI pieces: --config/--json options, opening the runtime, table and JSON output."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from fedcomments.config import Settings, load_settings
from fedcomments.runtime import Runtime, open_runtime


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
