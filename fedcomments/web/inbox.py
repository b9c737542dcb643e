"""Inbox routes (actor inbox and shared inbox): size and type checks, then one service call."""

from __future__ import annotations

from aiohttp import web

from fedcomments.errors import NotFound
from fedcomments.services import inbox
from fedcomments.web.keys import LOG_FIELDS, RUNTIME
from fedcomments.web.negotiate import json_response

AS2_TYPES = frozenset({"application/activity+json", "application/ld+json"})


async def post_inbox(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    username = request.match_info.get("username")
    if username is not None and username != rt.urls.username:
        raise NotFound("no such actor")
    limit = rt.settings.federation.max_body_bytes
    # Refuse by the announced length first, so an oversized body is never read.
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    if request.content_type not in AS2_TYPES:
        raise web.HTTPUnsupportedMediaType(text="expected application/activity+json")
    body = await request.read()  # aiohttp enforces client_max_size on chunked bodies too
    # The signature covers the request target as the peer sent it: raw path and query,
    # not aiohttp's re-encoded form.
    result = await inbox.receive(rt, inbox.InboxRequest(
        method=request.method, url=rt.settings.server.base_url + request.raw_path,
        headers=request.headers, body=body,
    ))
    # The request's one log line carries what became of the activity.
    request[LOG_FIELDS] = {"activity": result.activity_id, "type": result.type,
                           "actor": result.actor, "outcome": result.outcome}
    return json_response({"id": result.activity_id, "outcome": result.outcome}, status=202)


def setup(app: web.Application) -> None:
    app.router.add_post("/inbox", post_inbox)
    app.router.add_post("/users/{username}/inbox", post_inbox)
