"""Remote images as we serve them: /media/NAME, named by content, cached for a year."""

from __future__ import annotations

from aiohttp import web

from fedcomments.services import media as media_service
from fedcomments.web.keys import RUNTIME

#: A name never changes what it serves: browsers and proxies keep it for a year.
IMMUTABLE = "public, max-age=31536000, immutable"


async def media_file(request: web.Request) -> web.StreamResponse:
    """A re-encoded image (made again first if this machine lacks it), or 404."""
    name = request.match_info["name"]
    path = await media_service.file_for(request.app[RUNTIME], name)
    if path is None:
        return web.Response(status=404, text="no such image",
                            headers={"Cache-Control": "no-store"})
    return web.FileResponse(path, headers={
        "Content-Type": "image/webp",
        "Cache-Control": IMMUTABLE,
        "ETag": f'"{name.split(".", 1)[0]}"',
        # Loaded by blogs on other origins (the widget); never a document of its own.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


def setup(app: web.Application) -> None:
    app.router.add_get("/media/{name}", media_file)
