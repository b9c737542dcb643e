"""HTML pages for browsers: the actor's profile, a post with its thread and comment form,
the form's answer page, and "reply from your fediverse account"."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from markupsafe import Markup

from fedcomments.errors import FedcommentsError, InvalidInput
from fedcomments.model import Post
from fedcomments.services import interact as interact_service
from fedcomments.services import local_comments as local
from fedcomments.services import posts as post_service
from fedcomments.services import reader_guard as guard
from fedcomments.services import thread as thread_service
from fedcomments.web.emoji import emojify_html, emojify_text
from fedcomments.web.keys import RUNTIME, SETTINGS, TEMPLATES
from fedcomments.web.negotiate import wants_activitypub
from fedcomments.web.public_api import THREAD_CACHE, client_of

STATIC_DIR = Path(__file__).parent / "static"
PAGE_KEY = web.AppKey("page_key", int)


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    rt = request.app[RUNTIME]
    html = request.app[TEMPLATES].get_template(template).render(
        site_name=rt.settings.actor.name, handle=rt.urls.handle, profile_url=rt.urls.actor,
        **context,
    )
    resp = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    resp.headers["Vary"] = "Accept"
    return resp


def human_time(value: str | datetime | None) -> str:
    if value is None:
        return ""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    return when.strftime("%-d %B %Y, %H:%M UTC")


async def profile(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    a = rt.settings.actor
    posts = [p for p in await post_service.list_posts(rt) if p.published_at <= rt.now()]
    return render(
        request, "profile.html", name=a.name, actor_url=rt.urls.actor, blog_url=a.url,
        summary=[p for p in a.summary.split("\n\n") if p.strip()], posts=posts[:50],
    )


#: Posts the front page lists.
FRONT_PAGE_POSTS = 20


async def home(request: web.Request) -> web.Response:
    """The front page for browsers: the blog, how to follow it, its latest posts. AS2
    clients get the 404 they always got: the actor lives at its own URL."""
    if wants_activitypub(request):
        raise web.HTTPNotFound()
    rt = request.app[RUNTIME]
    a = rt.settings.actor
    posts = await post_service.latest_public(rt, FRONT_PAGE_POSTS)
    return render(
        request, "home.html", name=a.name, actor_url=rt.urls.actor, blog_url=a.url,
        summary=[p for p in a.summary.split("\n\n") if p.strip()], posts=posts,
        comments_feed=rt.urls.comments_feed,
    )


@dataclass
class FormState:
    """What the comment form shows: values to keep, errors by field, a notice, a parent."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notice: str = ""
    parent: dict[str, Any] | None = None
    #: The comment just posted (with its secret), shown to its author only.
    posted: dict[str, Any] | None = None


def _find(nodes: list[dict[str, Any]], comment_id: int) -> dict[str, Any] | None:
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if node["id"] == comment_id and not node["deleted"]:
            return node
        stack.extend(node["replies"])
    return None


def page_etag(request: web.Request, thread_etag: str, reply: str) -> str:
    """The post page's validator: the thread's state, the templates and settings
    (PAGE_KEY), the ?reply= asked for, and the period its form token was issued in.

    Weak: pages of one state differ only in the token's second. A page revalidated
    within its period keeps a token younger than the period, half the form's lifetime,
    so a reader never gets back a page whose form has expired.
    """
    rt = request.app[RUNTIME]
    period = max(60, rt.settings.comments.form_max_age_hours * 1800)
    epoch = int(rt.now().timestamp()) // period
    page = zlib.crc32(f"{epoch}|{reply}".encode(), request.app[PAGE_KEY])
    return f'W/"{thread_etag.strip(chr(34))}.{page:08x}"'


async def post_page(request: web.Request, post: Post, *, status: int = 200,
                    form: FormState | None = None) -> web.Response:
    rt = request.app[RUNTIME]
    form = form or FormState()
    reply = request.query.get("reply") or form.values.get("parent", "")
    # A plain GET of the page carries an ETag; an answer to the form never does.
    cacheable = status == 200 and request.method in ("GET", "HEAD") and not form.values \
        and form.posted is None and not form.notice
    known = request.headers.get("If-None-Match") if cacheable else None
    view = await thread_service.get_thread(
        rt, str(post.id), request.app[THREAD_CACHE],
        (lambda etag: thread_service.etag_in(known, page_etag(request, etag, reply)))
        if known else None)
    headers = {}
    if cacheable:
        headers = {"ETag": page_etag(request, view.etag, reply), "Cache-Control": "no-cache"}
        if isinstance(view, thread_service.NotModified) or thread_service.etag_in(
                known, headers["ETag"]):
            return web.Response(status=304, headers={**headers, "Vary": "Accept"})
    assert isinstance(view, thread_service.ThreadView)
    if reply.isdigit() and len(reply) < 19:
        form.parent = _find(view.data["comments"], int(reply))
    # The comments are the same for every reader until the thread changes: rendered once.
    env = request.app[TEMPLATES]
    comments = view.rendered("html", lambda data: Markup(
        env.get_template("_comments.html").render(thread=data)))
    resp = render(request, "post.html", status=status, post=post, thread=view.data,
                  comments_html=comments, form=form, token=guard.issue_token(rt, post.id),
                  limits=rt.settings.comments, policy=rt.settings.moderation.policy,
                  notify_replies=rt.settings.notify.mail)
    resp.headers.update(headers)
    return resp


async def submit_comment(request: web.Request) -> web.Response:
    """The form without JavaScript: answers with the post page, the notice and any errors."""
    rt = request.app[RUNTIME]
    post = await post_service.public_post(rt, request.match_info["slug"])
    fields = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    fields["post"] = str(post.id)
    keep = {k: fields.get(k, "") for k in ("name", "email", "website", "text", "parent",
                                            "notify")}
    try:
        posted = await local.post_comment(rt, local.comment_form(fields), client_of(request))
    except guard.FormErrors as exc:
        return await post_page(request, post, status=400,
                               form=FormState(keep, exc.errors, "Your comment was not saved: "
                                              "please correct the fields marked below."))
    except FedcommentsError as exc:
        return await post_page(request, post, status=exc.http_status,
                               form=FormState(keep, {}, f"Your comment was not saved: {exc}."))
    shown = thread_service.single_comment_json(rt, posted.comment)
    notice = ("Thank you! Your comment is waiting for approval; only you can see it for now."
              if posted.pending else "Thank you! Your comment is published.")
    return await post_page(request, post, form=FormState(
        {}, {}, notice, posted={**shown, "secret": posted.secret,
                                "edit_until": posted.edit_until.isoformat()}))


async def interact_page(request: web.Request) -> web.Response:
    rt = request.app[RUNTIME]
    obj = await interact_service.public_object(rt, request.query.get("object", ""))
    return render(request, "interact.html", object_url=obj, acct="", error="", problem="",
                  follow=obj == rt.urls.actor)


async def interact_submit(request: web.Request) -> web.StreamResponse:
    """Redirect to the reader's instance (303), or explain how to paste the URL there."""
    rt = request.app[RUNTIME]
    data = await request.post()
    acct, obj = str(data.get("acct", "")), str(data.get("object", ""))
    guard.check_origin(rt, client_of(request))
    try:
        found = await interact_service.interact(rt, acct, obj)
    except InvalidInput as exc:
        obj = await interact_service.public_object(rt, obj)
        return render(request, "interact.html", status=400, object_url=obj, acct=acct,
                      error=str(exc).removeprefix("acct: "), problem="",
                      follow=obj == rt.urls.actor)
    if found.redirect:
        # Set as built: aiohttp's redirect classes would re-quote the encoded object id.
        return web.Response(status=303, headers={"Location": found.redirect})
    return render(request, "interact.html", object_url=found.object_url, acct=acct, error="",
                  problem=found.problem or "", follow=found.object_url == rt.urls.actor)


def page_key(app: web.Application) -> int:
    """What shapes every post page besides its thread: the templates and the settings they
    show (never secrets: a checksum of them would leak in the ETag)."""
    s = app[SETTINGS]
    key = zlib.crc32(repr((s.actor, s.comments, s.moderation.policy, s.server.base_url,
                           s.federation.allow_private_addresses, s.notify.mail,
                           s.media.proxy)).encode())
    for path in sorted((Path(__file__).parent / "templates").iterdir()):
        key = zlib.crc32(path.read_bytes(), key)
    return key


def setup(app: web.Application) -> None:
    app[TEMPLATES].filters["when"] = human_time
    app[TEMPLATES].filters["emojify"] = emojify_html
    app[TEMPLATES].filters["emojify_text"] = emojify_text
    app[PAGE_KEY] = page_key(app)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=False)
    app.router.add_post("/posts/{slug}/comments", submit_comment)
    app.router.add_get("/interact", interact_page)
    app.router.add_get("/", home)
    app.router.add_post("/interact", interact_submit)
