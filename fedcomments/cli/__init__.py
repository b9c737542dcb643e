"""Command line: argparse wiring, one runtime per command, errors as one line and an exit code."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fedcomments import __version__
from fedcomments.cli import (
    actors,
    comments,
    common,
    deliveries,
    domains,
    followers,
    importing,
    moving,
    posts,
    reports,
    server,
    worker,
)
from fedcomments.errors import FedcommentsError

EPILOG = """examples:
  fedcomments serve
  fedcomments posts add --url https://blog.example/hello/ --title "Hello"
  fedcomments posts list --json
"""

# Each command module exposes register(subparsers); commands set `func` to a coroutine
# function taking the parsed arguments.
MODULES = [server, worker, posts, comments, domains, actors, followers, reports, deliveries]
# Moving in and out: import, export, backup and restore.
MODULES += [importing, moving]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fedcomments",
        description="A self-hosted comment server that joins a blog to the fediverse.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fedcomments {__version__}")
    common.add_config_argument(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], Awaitable[int | None] | int | None] = args.func
    try:
        result: Any = func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except FedcommentsError as exc:
        print(f"fedcomments: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the CLI boundary: one line, never a traceback
        print(f"fedcomments: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
