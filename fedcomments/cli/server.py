"""`serve` and `init`: run the HTTP server (with its delivery worker) or prepare the data."""

from __future__ import annotations

import argparse
import os

from aiohttp import web

from fedcomments import logsetup
from fedcomments.cli import common
from fedcomments.config import Settings
from fedcomments.runtime import open_runtime
from fedcomments.web.app import create_app


def data_path(settings: Settings) -> str:
    return os.path.abspath(settings.storage.database)


def _banner(settings: Settings, handle: str) -> str:
    db = data_path(settings)
    return (
        f"fedcomments listening on http://{settings.server.host}:{settings.server.port} "
        f"(public URL {settings.server.base_url})\n"
        f"  data: {db}\n"
        f"  blog actor: {handle}"
    )


def serve(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    logsetup.configure(args.log_level or settings.logging.level, as_json=settings.logging.json)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    app = create_app(settings)

    async def announce(app: web.Application) -> None:
        from fedcomments.web.keys import RUNTIME

        print(_banner(settings, app[RUNTIME].urls.handle).replace(
            f"http://{settings.server.host}:{settings.server.port}", f"http://{host}:{port}"),
            flush=True)

    app.on_startup.append(announce)
    web.run_app(app, host=host, port=port, print=None, access_log=None,
                handle_signals=True, shutdown_timeout=10)
    return 0


async def init(args: argparse.Namespace) -> int:
    settings = common.settings(args)
    async with open_runtime(settings) as rt:
        print(f"database ready: {data_path(settings)}")
        print(f"blog actor: {rt.urls.handle} ({rt.urls.actor})")
    return 0


def register(sub: object) -> None:
    p = common.add_command(sub, "serve", "Run the server (HTTP and delivery worker).",
                           "fedcomments serve --config /etc/fedcomments.toml")
    p.add_argument("--host", help="listen address (default from [server] host)")
    p.add_argument("--port", type=int, help="listen port (default from [server] port)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=serve)
    p = common.add_command(sub, "init", "Create the database and the blog's keys, then exit.",
                           "fedcomments init --config /etc/fedcomments.toml")
    p.set_defaults(func=init)
