"""The pages the links in our mails open. A GET only shows what will happen and a button;
the change is a POST, so a mail scanner that follows every link changes nothing."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fedcomments.errors import FedcommentsError, Forbidden
from fedcomments.services import mail_links
from fedcomments.web.keys import RUNTIME
from fedcomments.web.pages import render

#: The body a mail client POSTs to unsubscribe in one click (RFC 8058).
ONE_CLICK = "List-Unsubscribe=One-Click"
_NO_STORE = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}


def _page(request: web.Request, title: str, *, status: int = 200, **context: Any
          ) -> web.Response:
    shown = {"message": "", "comment": None, "comment_status": "", "button": None,
             "action": request.path, "error": False, **context}
    resp = render(request, "mail_link.html", status=status, title=title, **shown)
    resp.headers.update(_NO_STORE)
    return resp


def _failed(request: web.Request, title: str, exc: FedcommentsError) -> web.Response:
    return _page(request, title, status=exc.http_status, message=str(exc), error=True)


def _same_origin(request: web.Request) -> None:
    """A browser's POST must come from our own page (mail clients send no Origin)."""
    origin = request.headers.get("Origin")
    base = request.app[RUNTIME].settings.server.base_url
    if origin and origin != "null" and origin.rstrip("/").lower() != base:
        raise Forbidden("this form is accepted from this server's own page only")


async def moderate_page(request: web.Request) -> web.Response:
    try:
        view = await mail_links.moderation_view(request.app[RUNTIME],
                                                request.match_info["token"])
    except FedcommentsError as exc:
        return _failed(request, "Moderate a comment", exc)
    verb = "Approve" if view.action == "approve" else "Reject"
    return _page(request, f"{verb} this comment?", comment=view.comment,
                 comment_status=view.status,
                 button=f"{verb} comment {view.comment.id}")


async def moderate(request: web.Request) -> web.Response:
    try:
        _same_origin(request)
        outcome = await mail_links.moderate_by_link(request.app[RUNTIME],
                                                    request.match_info["token"])
    except FedcommentsError as exc:
        return _failed(request, "Moderate a comment", exc)
    done = (f"Comment {outcome.id} is {outcome.status}." if outcome.changed
            else f"Comment {outcome.id} was already {outcome.status}.")
    return _page(request, "Done", message=done)


async def confirm_page(request: web.Request) -> web.Response:
    return _page(request, "Hear of replies by mail?",
                 message="Confirm your address to get a mail when someone replies to your "
                         "comment. Every mail has a link to stop them.",
                 button="Yes, mail me replies")


async def confirm(request: web.Request) -> web.Response:
    try:
        _same_origin(request)
        fresh = await mail_links.confirm_subscription(request.app[RUNTIME],
                                                      request.match_info["token"])
    except FedcommentsError as exc:
        return _failed(request, "Confirm your address", exc)
    return _page(request, "Thank you", message="Your address is confirmed: you will hear of "
                 "replies." if fresh else "Your address was confirmed already.")


async def unsubscribe_page(request: web.Request) -> web.Response:
    try:
        await mail_links.check_unsubscribe(request.app[RUNTIME], request.match_info["token"])
    except FedcommentsError as exc:
        return _failed(request, "Unsubscribe", exc)
    return _page(request, "Unsubscribe?", message="Stop every mail from this blog to your "
                 "address.", button="Unsubscribe")


async def unsubscribe(request: web.Request) -> web.Response:
    """The page's button, or a mail client's one-click POST (RFC 8058)."""
    rt = request.app[RUNTIME]
    token = request.match_info["token"]
    body = (await request.text())[:200] if request.can_read_body else ""
    try:
        _same_origin(request)
        changed = await mail_links.unsubscribe(rt, token)
    except FedcommentsError as exc:
        if body.strip() == ONE_CLICK:
            return web.Response(status=exc.http_status, text=str(exc), headers=_NO_STORE)
        return _failed(request, "Unsubscribe", exc)
    if body.strip() == ONE_CLICK:
        return web.Response(text="unsubscribed", headers=_NO_STORE)
    return _page(request, "Unsubscribed", message="You will get no more mail from this blog."
                 if changed else "This address was unsubscribed already.")


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get("/moderate/{token}", moderate_page)
    r.add_post("/moderate/{token}", moderate)
    r.add_get("/subscriptions/confirm/{token}", confirm_page)
    r.add_post("/subscriptions/confirm/{token}", confirm)
    r.add_get("/unsubscribe/{token}", unsubscribe_page)
    r.add_post("/unsubscribe/{token}", unsubscribe)
