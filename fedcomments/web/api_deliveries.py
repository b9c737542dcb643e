"""Admin API for outbound federation: list delivery jobs and retry them (bearer token)."""

from __future__ import annotations

from aiohttp import web

from fedcomments.errors import NotFound
from fedcomments.services import deliveries
from fedcomments.web.auth import require_admin
from fedcomments.web.keys import RUNTIME
from fedcomments.web.negotiate import json_response

PREFIX = "/api/v1/admin/deliveries"


async def list_deliveries(request: web.Request) -> web.Response:
    require_admin(request)
    rt = request.app[RUNTIME]
    status = deliveries.parse_status(request.query.get("status"))
    limit = deliveries.parse_limit(request.query.get("limit"))
    page = await deliveries.deliveries_page(
        rt, status=status, limit=limit, cursor=request.query.get("cursor"),
        kinds=deliveries.parse_kind(request.query.get("kind")))
    return json_response({"counts": await deliveries.counts(rt),
                          "deliveries": [deliveries.job_json(j) for j in page.items],
                          "next_cursor": page.next_cursor})


async def retry_one(request: web.Request) -> web.Response:
    require_admin(request)
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound(f"no delivery {raw!r}")
    job = await deliveries.retry(request.app[RUNTIME], int(raw))
    return json_response(deliveries.job_json(job))


async def retry_failed(request: web.Request) -> web.Response:
    require_admin(request)
    jobs = await deliveries.retry_failed(request.app[RUNTIME])
    return json_response({"retried": len(jobs), "ids": [j.id for j in jobs]})


def setup(app: web.Application) -> None:
    app.router.add_get(PREFIX, list_deliveries)
    app.router.add_post(PREFIX + "/retry-failed", retry_failed)
    app.router.add_post(PREFIX + "/{id}/retry", retry_one)
