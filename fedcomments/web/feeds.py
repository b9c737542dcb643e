"""Atom feeds of the public comments: of one post, and of the whole blog."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from fedcomments.services import comment_feeds
from fedcomments.services import posts as post_service
from fedcomments.services import thread as thread_service
from fedcomments.web.keys import RUNTIME
from fedcomments.web.public_api import THREAD_CACHE


def _answer(request: web.Request, doc: comment_feeds.AtomDocument) -> web.Response:
    rt = request.app[RUNTIME]
    headers = {"ETag": doc.etag,
               "Cache-Control": f"public, max-age={rt.settings.comments.cache_max_age}"}
    if doc.body is None:
        return web.Response(status=304, headers=headers)
    return web.Response(body=doc.body, headers=headers, content_type="application/atom+xml",
                        charset="utf-8")


def _known(request: web.Request) -> Callable[[str], bool] | None:
    header = request.headers.get("If-None-Match")
    return (lambda etag: thread_service.etag_in(header, etag)) if header else None


async def post_comments(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    post = await post_service.public_post(rt, request.match_info["slug"])
    doc = await comment_feeds.post_feed(rt, post, request.app[THREAD_CACHE], _known(request))
    return _answer(request, doc)


async def blog_comments(request: web.Request) -> web.Response:
    return _answer(request, await comment_feeds.blog_feed(request.app[RUNTIME], _known(request)))


def setup(app: web.Application) -> None:
    app.router.add_get("/posts/{slug}/comments.atom", post_comments)
    app.router.add_get("/comments.atom", blog_comments)
