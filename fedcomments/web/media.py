"""Remote images as we serve them: /media/NAME, named by content, cached for a year."""

from __future__ import annotations

from aiohttp import web

from fedcomments.services import media as media_service
from fedcomments.services.thread import etag_in
from fedcomments.web.keys import RUNTIME

#: A name never changes what it serves: browsers and proxies keep it for a year.
IMMUTABLE = "public, max-age=31536000, immutable"


async def media_file(request: web.Request) -> web.StreamResponse:
    """A re-encoded image (made again first if this machine lacks it), or 404. The ETag is
    the name, the same on every machine whatever its copy's age; only the image itself is
    cached for a year."""
    name = request.match_info["name"]
    data = await media_service.image_for(request.app[RUNTIME], name)
    if data is None:
        return web.Response(status=404, text="no such image",
                            headers={"Cache-Control": "no-store"})
    etag = f'"{name.split(".", 1)[0]}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if etag_in(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers={
        **headers,
        "Content-Type": "image/webp",
        # Loaded by blogs on other origins (the widget); never a document of its own.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


def setup(app: web.Application) -> None:
    app.router.add_get("/media/{name}", media_file)
