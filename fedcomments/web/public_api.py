"""Public JSON API for readers and the embed widget: thread, form token, local comments
(post, view, edit, delete), "reply from your instance", and /embed.js. CORS is granted
only to [server] blog_origins."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from fedcomments.errors import FedcommentsError, InvalidInput
from fedcomments.services import interact as interact_service
from fedcomments.services import local_comments as local
from fedcomments.services import reader_guard as guard
from fedcomments.services import thread as thread_service
from fedcomments.web.keys import RUNTIME
from fedcomments.web.negotiate import dumps

THREAD_CACHE = web.AppKey("thread_cache", thread_service.ThreadCache)
EMBED_JS = Path(__file__).parent / "static" / "embed.js"
SECRET_HEADER = "X-Comment-Secret"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def client_of(request: web.Request) -> guard.Client:
    rt = request.app[RUNTIME]
    ip = guard.client_ip(request.remote, request.headers.get("X-Forwarded-For"),
                         rt.settings.server.trusted_proxies)
    return guard.Client(ip=ip, origin=request.headers.get("Origin"),
                        referer=request.headers.get("Referer"),
                        user_agent=request.headers.get("User-Agent", "")[:500])


def cors_headers(request: web.Request) -> dict[str, str]:
    origin = request.headers.get("Origin")
    headers = {"Vary": "Origin"}
    if origin and origin in request.app[RUNTIME].settings.server.blog_origins:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Expose-Headers"] = "ETag, Retry-After"
    return headers


def api_json(request: web.Request, data: Any, status: int = 200,
             headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type="application/json",
                        charset="utf-8", headers={**cors_headers(request), **(headers or {})})


def error_body(exc: FedcommentsError) -> dict[str, Any]:
    body: dict[str, Any] = {"error": str(exc)}
    if getattr(exc, "field", None):
        body["field"] = exc.field  # type: ignore[attr-defined]
    if isinstance(exc, guard.FormErrors):
        body["errors"] = exc.errors
    return body


def api(handler: Handler) -> Handler:
    """Errors as JSON with field names, Retry-After, and the CORS headers the widget needs."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except FedcommentsError as exc:
            extra = {}
            if isinstance(exc, local.RateLimited):
                extra["Retry-After"] = str(exc.retry_after)
            return api_json(request, error_body(exc), exc.http_status, extra)

    return wrapped


async def read_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise InvalidInput("body: send application/json")
    try:
        data = json.loads(await request.read())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("body: malformed JSON") from None
    if not isinstance(data, dict):
        raise InvalidInput("body: expected a JSON object")
    return data


def comment_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("id: must be a comment id", field="id")
    return int(raw)


@api
async def get_thread(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    ref = request.query.get("url") or request.query.get("id")
    if not ref:
        raise InvalidInput("url: give the post's permalink (url=…) or its id (id=…)",
                           field="url")
    known = request.headers.get("If-None-Match")
    view = await thread_service.get_thread(
        rt, ref, request.app[THREAD_CACHE],
        (lambda etag: thread_service.etag_in(known, etag)) if known else None)
    headers = {**cors_headers(request), "ETag": view.etag,
               "Cache-Control": f"public, max-age={rt.settings.comments.cache_max_age}"}
    if isinstance(view, thread_service.NotModified) or thread_service.etag_in(known, view.etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=view.body, content_type="application/json", charset="utf-8",
                        headers=headers)


@api
async def form_token(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    post = await thread_service.find_thread_post(rt, request.query.get("post", ""))
    limits = rt.settings.comments
    return api_json(request, {
        "post": post.id, "token": guard.issue_token(rt, post.id),
        "limits": {"name": limits.max_name_length, "email": local.MAX_EMAIL,
                   "website": local.MAX_WEBSITE, "text": limits.max_text_length},
        # The form's extras: "email me when someone replies" (only where mail goes out)
        # and the privacy notice under the form.
        "notify": rt.settings.notify.mail,
        "privacy": {"url": limits.privacy_url, "text": limits.privacy_text},
    }, headers={"Cache-Control": "no-store"})


def own_json(request: web.Request, comment: Any) -> dict[str, Any]:
    return thread_service.single_comment_json(request.app[RUNTIME], comment)


@api
async def post_comment(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    form = local.comment_form(await read_object(request))
    posted = await local.post_comment(rt, form, client_of(request))
    return api_json(request, {
        "comment": own_json(request, posted.comment), "pending": posted.pending,
        "held_because": list(posted.held_because), "secret": posted.secret,
        "edit_until": posted.edit_until.isoformat(),
    }, status=201, headers={"Cache-Control": "no-store"})


@api
async def get_comment(request: web.Request) -> web.Response:
    comment = await local.own_comment(request.app[RUNTIME], comment_id(request),
                                      request.headers.get(SECRET_HEADER, ""))
    return api_json(request, {"comment": own_json(request, comment)},
                    headers={"Cache-Control": "no-store"})


@api
async def edit_comment(request: web.Request) -> web.Response:
    data = await read_object(request)
    comment = await local.edit_comment(request.app[RUNTIME], comment_id(request),
                                       request.headers.get(SECRET_HEADER, ""), data.get("text"),
                                       client_of(request))
    return api_json(request, {"comment": own_json(request, comment)})


@api
async def delete_comment(request: web.Request) -> web.Response:
    result = await local.delete_comment(request.app[RUNTIME], comment_id(request),
                                        request.headers.get(SECRET_HEADER, ""),
                                        client_of(request))
    return api_json(request, {"deleted": True, "kept_as_placeholder": result == "tombstoned"})


@api
async def interact(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    data = await read_object(request)
    guard.check_origin(rt, client_of(request))
    acct, obj = data.get("acct"), data.get("object")
    if not isinstance(acct, str) or not isinstance(obj, str):
        raise InvalidInput("acct: give your fediverse address and the object", field="acct")
    found = await interact_service.interact(rt, acct, obj)
    return api_json(request, {"redirect": found.redirect, "object": found.object_url,
                              "handle": found.handle, "problem": found.problem})


async def preflight(request: web.Request) -> web.Response:
    headers = cors_headers(request)
    if "Access-Control-Allow-Origin" in headers:
        headers.update({
            "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE",
            "Access-Control-Allow-Headers": f"Content-Type, {SECRET_HEADER}",
            "Access-Control-Max-Age": "600",
        })
    return web.Response(status=204, headers=headers)


async def embed_js(request: web.Request) -> web.FileResponse:
    return web.FileResponse(EMBED_JS, headers={
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "public, max-age=3600",
    })


async def _store_fragments(app: web.Application) -> None:
    await app[THREAD_CACHE].fragments.flush()


def setup(app: web.Application) -> None:
    app[THREAD_CACHE] = thread_service.ThreadCache()
    # On shutdown, before the database closes (cleanup), the last fragments are stored.
    app.on_shutdown.append(_store_fragments)
    r = app.router
    r.add_get("/embed.js", embed_js)
    r.add_get("/api/v1/thread", get_thread)
    r.add_get("/api/v1/form", form_token)
    r.add_post("/api/v1/comments", post_comment)
    r.add_get("/api/v1/comments/{id}", get_comment)
    r.add_patch("/api/v1/comments/{id}", edit_comment)
    r.add_delete("/api/v1/comments/{id}", delete_comment)
    r.add_post("/api/v1/interact", interact)
    for path in ("/api/v1/thread", "/api/v1/form", "/api/v1/comments",
                 "/api/v1/comments/{id}", "/api/v1/interact"):
        r.add_route("OPTIONS", path, preflight)
