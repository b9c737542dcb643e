"""A static blog on loopback, as Hugo or Jekyll would publish it: an RSS 2.0 feed at
/index.xml, an Atom 1.0 feed at /atom.xml and a JSON Feed at /feed.json, all built from
`posts` on every request, answering If-None-Match / If-Modified-Since with 304 the way a
static host does, and recording every request."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime

from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.helpers.fediverse import SHUTDOWN_TIMEOUT

ATOM = "http://www.w3.org/2005/Atom"
MEDIA = "http://search.yahoo.com/mrss/"


@dataclass
class BlogPost:
    slug: str
    title: str
    published: datetime
    summary: str = ""
    tags: tuple[str, ...] = ()
    image: str | None = None


@dataclass
class Request:
    path: str
    if_none_match: str | None
    if_modified_since: str | None
    answered: int


@dataclass
class StaticBlog:
    posts: list[BlogPost] = field(default_factory=list)
    #: Status to answer instead of the feed (e.g. 503 while "down"), when set.
    down: int | None = None
    #: The body served instead of the built feed, when set.
    raw: bytes | None = None
    requests: list[Request] = field(default_factory=list)
    server: TestServer | None = None
    address: str = "127.0.0.1"

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.address}:{self.server.port}"

    def permalink(self, slug: str) -> str:
        return f"{self.url}/{slug}/"

    async def start(self) -> StaticBlog:
        app = web.Application()
        app.router.add_get("/index.xml", self._serve)
        app.router.add_get("/atom.xml", self._serve)
        app.router.add_get("/feed.json", self._serve)
        self.server = TestServer(app, host=self.address)
        await self.server.start_server(shutdown_timeout=SHUTDOWN_TIMEOUT)
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    # --- the feeds ------------------------------------------------------------------------

    def rss(self) -> bytes:
        ET.register_namespace("media", MEDIA)
        rss = ET.Element("rss", version="2.0")
        channel = ET.SubElement(rss, "channel")
        ET.SubElement(channel, "title").text = "A static blog"
        ET.SubElement(channel, "link").text = self.url + "/"
        ET.SubElement(channel, "description").text = "Posts"
        for p in self._newest_first():
            item = ET.SubElement(channel, "item")
            ET.SubElement(item, "title").text = p.title
            # Hugo writes relative links when baseURL is relative: resolved against the feed.
            ET.SubElement(item, "link").text = f"/{p.slug}/"
            ET.SubElement(item, "guid", isPermaLink="false").text = f"rss-{p.slug}"
            ET.SubElement(item, "pubDate").text = format_datetime(p.published, usegmt=True)
            ET.SubElement(item, "description").text = f"<p>{p.summary}</p>"
            for tag in p.tags:
                ET.SubElement(item, "category").text = tag
            if p.image:
                ET.SubElement(item, f"{{{MEDIA}}}thumbnail", url=p.image)
        return ET.tostring(rss, encoding="utf-8", xml_declaration=True)

    def atom(self) -> bytes:
        ET.register_namespace("", ATOM)
        feed = ET.Element(f"{{{ATOM}}}feed")
        ET.SubElement(feed, f"{{{ATOM}}}title").text = "A static blog"
        ET.SubElement(feed, f"{{{ATOM}}}id").text = f"{self.url}/"
        newest = max((p.published for p in self.posts), default=None)
        ET.SubElement(feed, f"{{{ATOM}}}updated").text = (
            newest.isoformat() if newest else "2020-01-01T00:00:00Z")
        for p in self._newest_first():
            entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
            ET.SubElement(entry, f"{{{ATOM}}}title").text = p.title
            ET.SubElement(entry, f"{{{ATOM}}}id").text = f"tag:blog,2024:{p.slug}"
            ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=self.permalink(p.slug))
            ET.SubElement(entry, f"{{{ATOM}}}published").text = p.published.isoformat()
            ET.SubElement(entry, f"{{{ATOM}}}updated").text = p.published.isoformat()
            ET.SubElement(entry, f"{{{ATOM}}}summary", type="html").text = f"<p>{p.summary}</p>"
            for tag in p.tags:
                ET.SubElement(entry, f"{{{ATOM}}}category", term=tag)
            if p.image:
                ET.SubElement(entry, f"{{{ATOM}}}link", rel="enclosure", type="image/png",
                              href=p.image)
        return ET.tostring(feed, encoding="utf-8", xml_declaration=True)

    def json_feed(self) -> bytes:
        items = [{"id": f"json-{p.slug}", "url": self.permalink(p.slug), "title": p.title,
                  "content_html": f"<p>{p.summary}</p>", "summary": p.summary,
                  "date_published": p.published.isoformat(), "tags": list(p.tags),
                  **({"image": p.image} if p.image else {})}
                 for p in self._newest_first()]
        return json.dumps({"version": "https://jsonfeed.org/version/1.1",
                           "title": "A static blog", "home_page_url": self.url + "/",
                           "items": items}).encode()

    def _newest_first(self) -> list[BlogPost]:
        return sorted(self.posts, key=lambda p: p.published, reverse=True)

    async def _serve(self, request: web.Request) -> web.Response:
        path = request.path
        record = Request(path, request.headers.get("If-None-Match"),
                         request.headers.get("If-Modified-Since"), 0)
        self.requests.append(record)
        if self.down is not None:
            record.answered = self.down
            return web.Response(status=self.down, text="down")
        body, kind = {
            "/index.xml": (self.rss, "application/rss+xml"),
            "/atom.xml": (self.atom, "application/atom+xml"),
            "/feed.json": (self.json_feed, "application/feed+json"),
        }[path]
        data = self.raw if self.raw is not None else body()
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        if record.if_none_match == etag:
            record.answered = 304
            return web.Response(status=304, headers={"ETag": etag})
        record.answered = 200
        return web.Response(body=data, content_type=kind, headers={"ETag": etag})
