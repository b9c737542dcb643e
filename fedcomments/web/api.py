"""JSON API under /api/v1: admin endpoints (bearer token) and the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from fedcomments.errors import InvalidInput
from fedcomments.services import backfill, posts
from fedcomments.web.auth import require_admin
from fedcomments.web.keys import RUNTIME
from fedcomments.web.negotiate import json_response
from fedcomments.web.openapi import openapi_document


async def read_json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="expected application/json")
    try:
        data = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("body: malformed JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body: expected a JSON object")
    return data


async def list_posts(request: web.Request) -> web.Response:
    require_admin(request)
    page = await posts.posts_page_with_counts(
        request.app[RUNTIME], include_deleted=request.query.get("deleted") == "true",
        limit=request.query.get("limit"), cursor=request.query.get("cursor"))
    return json_response({"posts": [posts.post_summary(p, c) for p, c in page.items],
                          "next_cursor": page.next_cursor})


async def add_post(request: web.Request) -> web.Response:
    require_admin(request)
    change = await posts.add_post(request.app[RUNTIME],
                                  posts.post_input(await read_json_object(request)))
    return json_response(posts.post_summary(change.post), status=201 if change.created else 200)


async def get_post(request: web.Request) -> web.Response:
    require_admin(request)
    rt = request.app[RUNTIME]
    post, counts = await posts.post_with_counts(rt, request.match_info["ref"])
    gaps = await backfill.gaps(rt, post.id)
    return json_response({**posts.post_summary(post, counts),
                          "replies": backfill.gaps_json(gaps)})


async def backfill_post(request: web.Request) -> web.Response:
    require_admin(request)
    rt = request.app[RUNTIME]
    post = await posts.get_post(rt, request.match_info["ref"])
    report = await backfill.backfill_post(rt, post.id)
    gaps = await backfill.gaps(rt, post.id)
    return json_response({**backfill.report_json(report), "replies": backfill.gaps_json(gaps)})


async def update_post(request: web.Request) -> web.Response:
    require_admin(request)
    post = await posts.update_post(request.app[RUNTIME], request.match_info["ref"],
                                   posts.post_input(await read_json_object(request)))
    return json_response(posts.post_summary(post))


async def delete_post(request: web.Request) -> web.Response:
    require_admin(request)
    post = await posts.delete_post(request.app[RUNTIME], request.match_info["ref"])
    return json_response(posts.post_summary(post))


async def openapi(request: web.Request) -> web.Response:
    return json_response(openapi_document(request.app[RUNTIME].settings.server.base_url))


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/api/v1/openapi.json", openapi)
    r.add_get("/api/v1/admin/posts", list_posts)
    r.add_post("/api/v1/admin/posts", add_post)
    r.add_get("/api/v1/admin/posts/{ref}", get_post)
    r.add_put("/api/v1/admin/posts/{ref}", update_post)
    r.add_delete("/api/v1/admin/posts/{ref}", delete_post)
    r.add_post("/api/v1/admin/posts/{ref}/backfill", backfill_post)
