"""Content negotiation between ActivityStreams JSON and HTML, and JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

AS2 = "application/activity+json"
LD_JSON = "application/ld+json"
AS2_CONTENT_TYPE = 'application/activity+json; charset=utf-8'


def _accept_items(header: str) -> list[tuple[str, float, str]]:
    items = []
    for position, part in enumerate(header.split(",")):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        items.append((media.strip().lower(), q - position * 1e-6, params.lower()))
    return items


def wants_activitypub(request: web.Request) -> bool:
    """True when the client prefers AS2 JSON over HTML.

    Mastodon asks with `application/activity+json, application/ld+json`; some
    implementations send only ld+json with the AS profile, or plain application/json.
    Browsers list text/html first, so it wins for them.
    """
    header = request.headers.get("Accept", "")
    best_as2 = best_html = -1.0
    for media, q, _params in _accept_items(header):
        if q <= 0:
            continue
        if media in (AS2, LD_JSON, "application/json"):
            best_as2 = max(best_as2, q)
        elif media in ("text/html", "application/xhtml+xml"):
            best_html = max(best_html, q)
    return best_as2 > best_html


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def as2_response(data: dict[str, Any], *, status: int = 200, vary: bool = True) -> web.Response:
    resp = web.Response(
        text=dumps(data), status=status, content_type=AS2, charset="utf-8"
    )
    if vary:
        resp.headers["Vary"] = "Accept"
    return resp


def json_response(data: Any, *, status: int = 200, content_type: str = "application/json"
                  ) -> web.Response:
    return web.Response(text=dumps(data), status=status, content_type=content_type,
                        charset="utf-8")
