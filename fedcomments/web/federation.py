"""Federation endpoints: WebFinger, host-meta, NodeInfo, the actor, posts and collections."""

from __future__ import annotations

from aiohttp import web

from fedcomments.ap import build
from fedcomments.errors import Gone, InvalidInput, NotFound
from fedcomments.services import instance, objects, posts, thread
from fedcomments.web import pages
from fedcomments.web.keys import RUNTIME
from fedcomments.web.negotiate import as2_response, json_response, wants_activitypub

CORS = {"Access-Control-Allow-Origin": "*"}
CONTEXT_CACHE = web.AppKey("context_cache", objects.ContextCache)


def _page_param(request: web.Request) -> int | None:
    raw = request.query.get("page")
    if raw is None:
        return None
    if raw.lower() == "true":  # Mastodon's style of asking for the first page
        return 1
    if not raw.isdigit() or not 0 < int(raw) < 1_000_000:
        raise InvalidInput("page: must be a positive integer", field="page")
    return int(raw)


def _check_user(request: web.Request) -> None:
    if request.match_info["username"] != request.app[RUNTIME].urls.username:
        raise NotFound("no such actor")


async def webfinger(request: web.Request) -> web.Response:
    resource = request.query.get("resource")
    if not resource:
        raise InvalidInput("resource: query parameter is required", field="resource")
    return _jrd(instance.webfinger(request.app[RUNTIME], resource))


def _jrd(data: dict[str, object]) -> web.Response:
    resp = json_response(data, content_type="application/jrd+json")
    resp.headers.update(CORS)
    return resp


async def host_meta(request: web.Request) -> web.Response:
    text = build.host_meta(request.app[RUNTIME].urls)
    return web.Response(text=text, content_type="application/xrd+xml", headers=CORS)


async def nodeinfo_links(request: web.Request) -> web.Response:
    resp = json_response(build.nodeinfo_links(request.app[RUNTIME].urls))
    resp.headers.update(CORS)
    return resp


async def nodeinfo(request: web.Request) -> web.Response:
    data = await instance.nodeinfo(request.app[RUNTIME])
    resp = json_response(data)
    resp.headers["Content-Type"] = (
        'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/2.1#"'
    )
    resp.headers.update(CORS)
    return resp


async def actor(request: web.Request) -> web.StreamResponse:
    _check_user(request)
    rt = request.app[RUNTIME]
    if not wants_activitypub(request):
        return await pages.profile(request)
    return as2_response(await instance.actor_document(rt))


async def outbox(request: web.Request) -> web.Response:
    _check_user(request)
    rt = request.app[RUNTIME]
    return as2_response(await instance.outbox(rt, _page_param(request)), vary=False)


async def followers(request: web.Request) -> web.Response:
    _check_user(request)
    rt = request.app[RUNTIME]
    return as2_response(await instance.followers(rt, _page_param(request)), vary=False)


async def following(request: web.Request) -> web.Response:
    _check_user(request)
    return as2_response(instance.following(request.app[RUNTIME]), vary=False)


async def post(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    as2 = wants_activitypub(request)
    try:
        found = await posts.public_post(rt, request.match_info["slug"])
    except Gone:
        if not as2:
            raise
        deleted = await posts.get_post(rt, request.match_info["slug"])
        assert deleted.deleted_at is not None
        return as2_response(build.tombstone(deleted.ap_id, "Article", deleted.deleted_at),
                            status=410)
    if not as2:
        return await pages.post_page(request, found)
    return as2_response(build.with_context(build.article(rt.urls, found)))


async def post_replies(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    found = await posts.public_post(rt, request.match_info["slug"])
    return as2_response(await objects.post_replies(rt, found, _page_param(request)), vary=False)


async def post_context(request: web.Request) -> web.StreamResponse:
    rt = request.app[RUNTIME]
    found = await posts.public_post(rt, request.match_info["slug"])
    served = await objects.post_context(rt, found, _page_param(request),
                                        request.app[CONTEXT_CACHE])
    if thread.etag_in(request.headers.get("If-None-Match"), served.etag):
        return web.Response(status=304, headers={"ETag": served.etag})
    resp = as2_response(served.doc, vary=False)
    resp.headers["ETag"] = served.etag
    return resp


def setup(app: web.Application) -> None:
    app[CONTEXT_CACHE] = objects.ContextCache(size=256, keys=1, max_bytes=16 << 20)
    r = app.router
    r.add_get("/.well-known/webfinger", webfinger)
    r.add_get("/.well-known/host-meta", host_meta)
    r.add_get("/.well-known/nodeinfo", nodeinfo_links)
    r.add_get("/nodeinfo/2.1", nodeinfo)
    r.add_get("/users/{username}", actor)
    r.add_get("/users/{username}/outbox", outbox)
    r.add_get("/users/{username}/followers", followers)
    r.add_get("/users/{username}/following", following)
    r.add_get("/posts/{slug}", post)
    r.add_get("/posts/{slug}/replies", post_replies)
    r.add_get("/posts/{slug}/context", post_context)
