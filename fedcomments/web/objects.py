"""Our own comments at their ids: the Note for fediverse software, the post's page for
browsers, and each comment's replies collection."""

from __future__ import annotations

from aiohttp import web

from fedcomments.errors import InvalidInput, NotFound
from fedcomments.services import objects
from fedcomments.web.keys import RUNTIME
from fedcomments.web.negotiate import as2_response, wants_activitypub


def _comment_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("no such comment")
    return int(raw)


def _page(request: web.Request) -> int | None:
    raw = request.query.get("page")
    if raw is None:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 1_000_000:
        raise InvalidInput("page: must be a positive integer", field="page")
    return int(raw)


async def comment(request: web.Request) -> web.StreamResponse:
    served = await objects.comment_object(request.app[RUNTIME], _comment_id(request))
    if served.html_url and not wants_activitypub(request):
        # The thread page shows the comment in place.
        raise web.HTTPSeeOther(served.html_url)
    return as2_response(served.doc, status=served.status)


async def comment_replies(request: web.Request) -> web.Response:
    served = await objects.comment_replies(request.app[RUNTIME], _comment_id(request),
                                           _page(request))
    return as2_response(served.doc, status=served.status, vary=False)


def setup(app: web.Application) -> None:
    app.router.add_get("/comments/{id}", comment)
    app.router.add_get("/comments/{id}/replies", comment_replies)
