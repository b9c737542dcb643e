"""Admin JSON API for blocks and moderation (bearer token): each handler reads the request,
calls the same `services.admin` function as the CLI, and renders its JSON shape."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fedcomments.errors import InvalidInput
from fedcomments.runtime import Runtime
from fedcomments.services import admin
from fedcomments.web.api import read_json_object
from fedcomments.web.auth import require_admin
from fedcomments.web.keys import RUNTIME
from fedcomments.web.negotiate import json_response

PREFIX = "/api/v1/admin"
MAX_IMPORT_BYTES = 1 << 20


def _rt(request: web.Request) -> Runtime:
    require_admin(request)
    return request.app[RUNTIME]


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise InvalidInput(f"{name}: expected true or false", field=name)
    return value in ("true", "1")


async def _optional_json(request: web.Request) -> dict[str, Any]:
    return await read_json_object(request) if request.can_read_body else {}


def _comment_id(request: web.Request) -> int:
    return admin.parse_ids([request.match_info["id"]])[0]


# --- domains ---------------------------------------------------------------------------


def _page(request: web.Request) -> dict[str, Any]:
    """`limit` and `cursor` of a listing's query string."""
    return {"limit": request.query.get("limit"), "cursor": request.query.get("cursor")}


async def list_domains(request: web.Request) -> web.Response:
    page = await admin.domain_blocks_page(_rt(request), **_page(request))
    return json_response({"domains": [admin.domain_block_json(b) for b in page.items],
                          "next_cursor": page.next_cursor})


async def block_domain(request: web.Request) -> web.Response:
    rt = _rt(request)
    domain, reason, keep = admin.block_request(await read_json_object(request), "domain")
    r = await admin.block_domain(rt, domain, reason=reason, keep_content=keep)
    return json_response(admin.block_result_json(r, "domain"), status=201 if r.created else 200)


async def unblock_domain(request: web.Request) -> web.Response:
    domain = await admin.unblock_domain(_rt(request), request.match_info["domain"])
    return json_response({"domain": domain, "unblocked": True})


async def import_domains(request: web.Request) -> web.Response:
    rt = _rt(request)
    if request.content_type not in ("text/csv", "text/plain"):
        raise web.HTTPUnsupportedMediaType(text="expected text/csv or text/plain")
    raw = await request.content.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise InvalidInput(f"file: larger than {MAX_IMPORT_BYTES} bytes", field="file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("file: not UTF-8 text", field="file") from None
    report = await admin.import_domain_blocks(rt, text, keep_content=_flag(request,
                                                                           "keep_content"),
                                              dry_run=_flag(request, "dry_run"))
    return json_response(admin.import_report_json(report))


async def export_domains(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "mastodon")
    text = await admin.export_domain_blocks(_rt(request), fmt)
    return web.Response(text=text, content_type="text/csv" if fmt == "mastodon" else "text/plain",
                        charset="utf-8")


# --- actors ----------------------------------------------------------------------------


async def list_actors(request: web.Request) -> web.Response:
    page = await admin.actor_blocks_page(_rt(request), **_page(request))
    return json_response({"actors": [admin.actor_block_json(b) for b in page.items],
                          "next_cursor": page.next_cursor})


async def block_actor(request: web.Request) -> web.Response:
    rt = _rt(request)
    actor, reason, keep = admin.block_request(await read_json_object(request), "actor")
    r = await admin.block_actor(rt, actor, reason=reason, keep_content=keep)
    return json_response(admin.block_result_json(r, "actor"), status=201 if r.created else 200)


async def unblock_actor(request: web.Request) -> web.Response:
    rt = _rt(request)
    actor = request.query.get("actor")
    if not actor:
        raise InvalidInput("actor: query parameter is required", field="actor")
    return json_response({"actor": await admin.unblock_actor(rt, actor), "unblocked": True})


# --- comments, followers, reports ------------------------------------------------------


async def list_comments(request: web.Request) -> web.Response:
    rt = _rt(request)
    page = await admin.comments_page(rt, post=request.query.get("post"),
                                     status=request.query.get("status", "all"),
                                     **_page(request))
    return json_response({"comments": [admin.comment_json(x) for x in page.items],
                          "next_cursor": page.next_cursor})


async def get_comment(request: web.Request) -> web.Response:
    rt = _rt(request)
    return json_response(admin.comment_detail_json(await admin.get_comment(
        rt, _comment_id(request))))


async def approve_comment(request: web.Request) -> web.Response:
    rt = _rt(request)
    body = await _optional_json(request)
    unknown = set(body) - {"trust_author"}
    if unknown or not isinstance(body.get("trust_author", False), bool):
        raise InvalidInput("body: only {\"trust_author\": true|false} is accepted",
                           field="trust_author")
    [outcome] = await admin.approve_comments(rt, [_comment_id(request)],
                                             trust_author=body.get("trust_author", False))
    return json_response(admin.outcome_json(outcome))


async def reject_comment(request: web.Request) -> web.Response:
    rt = _rt(request)
    [outcome] = await admin.reject_comments(rt, [_comment_id(request)])
    return json_response(admin.outcome_json(outcome))


async def delete_comment(request: web.Request) -> web.Response:
    rt = _rt(request)
    [outcome] = await admin.delete_comments(rt, [_comment_id(request)])
    return json_response(admin.outcome_json(outcome))


async def reply_comment(request: web.Request) -> web.Response:
    rt = _rt(request)
    body = await read_json_object(request)
    text = body.get("text")
    if set(body) != {"text"} or not isinstance(text, str):
        raise InvalidInput("text: required (a string), and nothing else", field="text")
    answer = await admin.reply_to_comment(rt, _comment_id(request), text)
    return json_response({"in_reply_to": _comment_id(request), "id": answer.id,
                          "ap_id": answer.ap_id}, status=201)


async def recheck_comments(request: web.Request) -> web.Response:
    rt = _rt(request)
    body = await _optional_json(request)
    ids, post, every = body.get("ids"), body.get("post"), body.get("all", False)
    if set(body) - {"ids", "post", "all"} or not isinstance(every, bool) or (
            post is not None and not isinstance(post, str)) or (
            ids is not None and not isinstance(ids, list)):
        raise InvalidInput('body: {"ids": [ID, …]}, {"post": POST} or {"all": true}',
                           field="ids")
    found = await admin.recheck_comments(
        rt, comment_ids=admin.parse_ids(ids) if ids is not None else None, post=post,
        every=every)
    return json_response({"comments": [admin.recheck_json(o) for o in found]})


async def recheck_comment(request: web.Request) -> web.Response:
    rt = _rt(request)
    [found] = await admin.recheck_comments(rt, comment_ids=[_comment_id(request)])
    return json_response(admin.recheck_json(found))


async def list_followers(request: web.Request) -> web.Response:
    page = await admin.followers_page(_rt(request), **_page(request))
    return json_response({"followers": [admin.follower_json(f) for f in page.items],
                          "next_cursor": page.next_cursor})


async def list_reports(request: web.Request) -> web.Response:
    page = await admin.reports_page(_rt(request), **_page(request))
    return json_response({"reports": [admin.report_json(r) for r in page.items],
                          "next_cursor": page.next_cursor})


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(f"{PREFIX}/domains", list_domains)
    r.add_post(f"{PREFIX}/domains", block_domain)
    r.add_post(f"{PREFIX}/domains/import", import_domains)
    r.add_get(f"{PREFIX}/domains/export", export_domains)
    r.add_delete(PREFIX + "/domains/{domain}", unblock_domain)
    r.add_get(f"{PREFIX}/actors", list_actors)
    r.add_post(f"{PREFIX}/actors", block_actor)
    r.add_delete(f"{PREFIX}/actors", unblock_actor)
    r.add_get(f"{PREFIX}/comments", list_comments)
    r.add_get(PREFIX + "/comments/{id}", get_comment)
    r.add_delete(PREFIX + "/comments/{id}", delete_comment)
    r.add_post(PREFIX + "/comments/{id}/approve", approve_comment)
    r.add_post(PREFIX + "/comments/{id}/reject", reject_comment)
    r.add_post(PREFIX + "/comments/{id}/reply", reply_comment)
    r.add_post(f"{PREFIX}/comments/recheck", recheck_comments)
    r.add_post(PREFIX + "/comments/{id}/recheck", recheck_comment)
    r.add_get(f"{PREFIX}/followers", list_followers)
    r.add_get(f"{PREFIX}/reports", list_reports)
