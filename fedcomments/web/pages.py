"""HTML pages for browsers: the actor's profile and a post's page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from fedcomments.model import Post
from fedcomments.services import posts as post_service
from fedcomments.web.keys import RUNTIME, TEMPLATES

STATIC_DIR = Path(__file__).parent / "static"


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    rt = request.app[RUNTIME]
    html = request.app[TEMPLATES].get_template(template).render(
        site_name=rt.settings.actor.name, handle=rt.urls.handle, profile_url=rt.urls.actor,
        **context,
    )
    resp = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    resp.headers["Vary"] = "Accept"
    return resp


async def profile(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    a = rt.settings.actor
    posts = [p for p in await post_service.list_posts(rt) if p.published_at <= rt.now()]
    return render(
        request, "profile.html", name=a.name, actor_url=rt.urls.actor, blog_url=a.url,
        summary=[p for p in a.summary.split("\n\n") if p.strip()], posts=posts[:50],
    )


async def post_page(request: web.Request, post: Post) -> web.Response:
    return render(request, "post.html", post=post)


def setup(app: web.Application) -> None:
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
