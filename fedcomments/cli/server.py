"""`serve` and `init`: run the HTTP server (with its delivery worker) or prepare the data."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from aiohttp import web

from fedcomments import logsetup
from fedcomments.cli import common, processes
from fedcomments.config import Settings
from fedcomments.errors import ConfigError
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
    if args.worker is not None:
        return _serve_child(args, settings)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    workers = settings.server.workers
    where = processes.addresses(host, port) if workers > 1 else []
    socks = processes.bind(where, first=True) if workers > 1 else None
    logsetup.configure(args.log_level or settings.logging.level, as_json=settings.logging.json,
                       worker=1 if socks else None)
    app = create_app(settings)

    async def announce(app: web.Application) -> None:
        from fedcomments.web.keys import RUNTIME

        print(_banner(settings, app[RUNTIME].urls.handle).replace(
            f"http://{settings.server.host}:{settings.server.port}", f"http://{host}:{port}"),
            flush=True)

    app.on_startup.append(announce)
    if socks:
        command = processes.child_command(getattr(args, "config", None), args.log_level)

        children = processes.Children(where, command, workers)

        async def children_ctx(app: web.Application) -> AsyncIterator[None]:
            # After the runtime's context: the database is migrated before any child opens it.
            children.start()
            try:
                yield
            finally:
                await children.stop()

        async def stop_children(app: web.Application) -> None:
            # As this process stops accepting, not after its own drain: they drain together.
            children.signal_stop()

        app.cleanup_ctx.append(children_ctx)
        app.on_shutdown.append(stop_children)
        web.run_app(app, sock=socks, print=None, access_log=None, handle_signals=True,
                    shutdown_timeout=10)
    else:
        web.run_app(app, host=host, port=port, print=None, access_log=None,
                    handle_signals=True, shutdown_timeout=10)
    return 0


def _serve_child(args: argparse.Namespace, settings: Settings) -> int:
    """HTTP worker N of `[server] workers`, on the sockets its parent handed down."""
    if not args.listen_fds or not args.parent:
        raise ConfigError("--worker needs --listen-fds and --parent")
    logsetup.configure(args.log_level or settings.logging.level, as_json=settings.logging.json,
                       worker=args.worker)
    app = create_app(settings, background=False)

    async def parent_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(processes.follow_parent(args.parent))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop_once(app: web.Application) -> None:
        processes.stop_once()

    app.cleanup_ctx.append(parent_ctx)
    app.on_startup.append(stop_once)
    web.run_app(app, sock=processes.adopt(args.listen_fds), print=None, access_log=None,
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
    # Set by `serve` itself for its extra HTTP processes ([server] workers).
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    p.add_argument("--listen-fds", help=argparse.SUPPRESS)
    p.add_argument("--parent", type=int, help=argparse.SUPPRESS)
    p.set_defaults(func=serve)
    p = common.add_command(sub, "init", "Create the database and the blog's keys, then exit.",
                           "fedcomments init --config /etc/fedcomments.toml")
    p.set_defaults(func=init)
