"""Application factory: settings in, aiohttp app out; resources live in cleanup_ctx."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

import jinja2
from aiohttp import web

from fedcomments.config import Settings
from fedcomments.delivery import worker as delivery
from fedcomments.errors import FedcommentsError
from fedcomments.remote import ResolverFactory
from fedcomments.runtime import open_runtime, utcnow
from fedcomments.services import feed_sync
from fedcomments.services.blocks import watch_blocklist
from fedcomments.services.inbox import housekeeping
from fedcomments.web import (
    admin_api,
    api,
    api_deliveries,
    federation,
    feeds,
    inbox,
    mail_links,
    media,
    objects,
    pages,
    public_api,
)
from fedcomments.web.keys import CLOCK, LOG_FIELDS, RUNTIME, SETTINGS, TEMPLATES
from fedcomments.web.negotiate import json_response

log = logging.getLogger("fedcomments.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Pages carry no inline script or style: everything comes from our own origin, remote
# images included ([media] proxy, the default).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'"
)
# Local development only ([federation] allow_private_addresses): "follow from your
# instance" (a form, whose redirect form-action also covers) leads to loopback instances'
# plain-http pages.
CSP_DEV = CSP.replace("form-action 'self' https:", "form-action 'self' https: http:")
# [media] proxy = false: avatars and emoji are loaded from the commenters' servers (over
# plain http too in local development).
CSP_HOTLINK = CSP.replace("img-src 'self'", "img-src 'self' https:")
CSP_HOTLINK_DEV = CSP_DEV.replace("img-src 'self'", "img-src 'self' https: http:")


def page_csp(settings: Settings) -> str:
    """The Content-Security-Policy of our HTML pages."""
    dev = settings.federation.allow_private_addresses
    if settings.media.proxy:
        return CSP_DEV if dev else CSP
    return CSP_HOTLINK_DEV if dev else CSP_HOTLINK


@web.middleware
async def access_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        extra = {
            "method": request.method,
            "path": request.path,
            "status": status,
            "ms": round((time.perf_counter() - start) * 1000, 1),
            "remote": request.remote,
        }
        extra.update(request.get(LOG_FIELDS, ()))
        log.info("request", extra=extra)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except FedcommentsError as exc:
        body: dict[str, str] = {"error": str(exc)}
        field = getattr(exc, "field", None)
        if field:
            body["field"] = field
        return json_response(body, status=exc.http_status)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return json_response({"error": "internal error"}, status=500)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", page_csp(request.app[SETTINGS]))
    return response


def create_app(settings: Settings, *, clock: Callable[[], datetime] = utcnow,
               run_worker: bool | None = None, background: bool = True,
               resolver: ResolverFactory | None = None) -> web.Application:
    """`run_worker` (default: [federation] delivery_worker) starts the delivery worker;
    `background=False` (the extra HTTP processes of `[server] workers`) runs neither it
    nor housekeeping, which want one of each per database, and never migrates.
    `resolver` replaces the system's name resolver (the address guard still applies)."""
    app = web.Application(
        middlewares=[access_log, security_headers, errors],
        client_max_size=settings.federation.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[TEMPLATES] = jinja2.Environment(
        loader=jinja2.PackageLoader("fedcomments.web", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )

    async def runtime_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_runtime(settings, clock=clock, migrate=background,
                                resolver=resolver) as rt:
            app[RUNTIME] = rt
            # What other processes (the CLI, sibling HTTP workers) change is followed here
            # within half a second; old inbox records are pruned hourly.
            tasks = [asyncio.create_task(watch_blocklist(rt))]
            if background:
                tasks.append(asyncio.create_task(housekeeping(rt)))
                # The blog's feeds ([blog] feeds) are polled once per database too.
                tasks.append(asyncio.create_task(feed_sync.polling(rt)))
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    app.cleanup_ctx.append(runtime_ctx)

    async def worker_ctx(app: web.Application) -> AsyncIterator[None]:
        # Its own runtime (connections, HTTP client), as a separate `fedcomments worker`
        # would have; cleaned up first, so in-flight deliveries finish or go back.
        async with open_runtime(settings, clock=clock, resolver=resolver) as rt, \
                delivery.running_worker(rt):
            yield

    if background and (settings.federation.delivery_worker if run_worker is None
                       else run_worker):
        app.cleanup_ctx.append(worker_ctx)
    federation.setup(app)
    inbox.setup(app)
    media.setup(app)
    api.setup(app)
    admin_api.setup(app)
    api_deliveries.setup(app)
    objects.setup(app)
    pages.setup(app)
    public_api.setup(app)
    feeds.setup(app)
    mail_links.setup(app)
    return app
