"""In a real headless Chromium (Debian's, driven by Playwright): the widget on a static blog
page and the server's own post page — thread, form, defences, CSP, XSS, readability."""

from __future__ import annotations

import contextlib
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from fedcomments.services import moderation, replies
from fedcomments.services.thread import get_thread
from tests.conftest import Instance
from tests.helpers.fediverse import FakeInstance, activity, deliver
from tests.helpers.notify import Mailbox, notify_settings
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import post_local, remote_reply
from tests.test_reader_xss import PAYLOAD_HTML

CHROMIUM = Path("/usr/bin/chromium")
FIXTURES = Path(__file__).parent / "browser"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

try:
    from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect
except ImportError:  # pragma: no cover - depends on the machine
    async_playwright = None  # type: ignore[assignment]

if not CHROMIUM.exists():
    pytest.skip("chromium not found at /usr/bin/chromium: apt-get install chromium to run "
                "browser tests", allow_module_level=True)
if async_playwright is None:
    pytest.skip("playwright not installed: pip install -e '.[test]' to run browser tests",
                allow_module_level=True)

# Records CSP violations and marks the page if any injected script ever runs.
WATCH = ("window.__csp = [];"
         "document.addEventListener('securitypolicyviolation', function (e) {"
         "  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI); });")


def png(rgb: tuple[int, int, int]) -> bytes:
    """A tiny solid-colour PNG, so avatars really load."""
    raw = b"".join(b"\x00" + bytes(rgb) * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@dataclass
class Blog:
    """The static blog (a page, its CSS, avatars) and, on the same host, the reader's own
    fediverse instance (WebFinger with a subscribe template, an authorize page)."""

    fc_url: str = ""
    ap_id: str = ""
    server: TestServer | None = None
    authorized: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    def csp(self) -> str:
        # What a careful static blog would send: only its own files and the comment server.
        # Images come from the comment server alone: it serves the commenters' avatars.
        return (f"default-src 'none'; script-src 'self' {self.fc_url}; style-src 'self' "
                f"{self.fc_url}; connect-src {self.fc_url}; img-src 'self' data: "
                f"{self.fc_url}; form-action {self.fc_url}; base-uri 'none'")

    async def start(self) -> Blog:
        async def page(request: web.Request) -> web.Response:
            html = (FIXTURES / "blog.html").read_text().replace("{{FC}}", self.fc_url).replace(
                "{{AP_ID}}", self.ap_id).replace("{{PERMALINK}}", f"{self.url}/hello/")
            return web.Response(text=html, content_type="text/html",
                                headers={"Content-Security-Policy": self.csp()})

        async def css(request: web.Request) -> web.Response:
            return web.Response(text=(FIXTURES / "blog.css").read_text(), content_type="text/css")

        async def avatar(request: web.Request) -> web.Response:
            colour = {"alice": (214, 90, 49), "carol": (40, 140, 90)}.get(
                request.match_info["name"], (90, 90, 160))
            return web.Response(body=png(colour), content_type="image/png")

        async def webfinger(request: web.Request) -> web.Response:
            template = f"{self.url}/authorize_interaction?uri={{uri}}"
            return web.json_response({"subject": request.query.get("resource"), "links": [
                {"rel": "http://ostatus.org/schema/1.0/subscribe", "template": template}]},
                content_type="application/jrd+json")

        async def authorize(request: web.Request) -> web.Response:
            self.authorized.append(request.query.get("uri", ""))
            return web.Response(text="<!DOCTYPE html><title>Authorize</title><link rel=icon "
                                     "href='data:,'><h1>Reply on your instance</h1>",
                                content_type="text/html")

        app = web.Application()
        app.router.add_get("/hello/", page)
        app.router.add_get("/blog.css", css)
        app.router.add_get("/avatars/{name}.png", avatar)
        app.router.add_get("/.well-known/webfinger", webfinger)
        app.router.add_get("/authorize_interaction", authorize)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self


@pytest.fixture
async def blog() -> AsyncIterator[Blog]:
    b = await Blog().start()
    yield b
    assert b.server is not None
    await b.server.close()


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    """A page with its console errors and uncaught exceptions recorded."""

    page: Page
    errors: list[ConsoleMessage] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    #: Every URL the page requested (documents, scripts, styles, fetches, images).
    requests: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, browser: Browser) -> Watched:
        context = await browser.new_context(viewport={"width": 900, "height": 900})
        await context.add_init_script(WATCH)
        watched = cls(await context.new_page())
        watched.page.on("console", lambda m: watched.errors.append(m) if m.type == "error"
                        else None)
        watched.page.on("pageerror", lambda e: watched.exceptions.append(str(e)))
        context.on("request", lambda r: watched.requests.append(r.url))
        return watched

    def origins(self) -> set[str]:
        """The origins the page contacted (data: URLs are none)."""
        return {f"{u.scheme}://{u.netloc}" for u in map(urlsplit, self.requests)
                if u.scheme in ("http", "https")}

    def unexpected(self, refused: tuple[int, ...] = (), url: str = "") -> list[str]:
        """Console errors, minus the network log of requests the test meant to be refused."""
        allowed = {f"Failed to load resource: the server responded with a status of {s}"
                   for s in refused}
        return [m.text for m in self.errors
                if not (m.location.get("url") == url and any(m.text.startswith(a)
                                                             for a in allowed))]

    async def assert_clean(self) -> None:
        assert self.exceptions == []
        assert await self.page.evaluate("window.__csp") == []
        assert await self.page.evaluate("typeof window.__xss") == "undefined"


async def seed(fc: Instance, blog: Blog, remote: FakeInstance) -> dict[str, Any]:
    """A fediverse reply, the owner's answer, a reader's reply to it, a like with avatars,
    and hostile content from the fediverse and from a reader."""
    post = await add_post_via_api(fc, url=f"{blog.url}/hello/", title="Hello, fediverse")
    blog.ap_id = post["ap_id"]
    # Avatars and emoji live on the commenters' own server (the fake peer), as they do.
    alice = remote.actor("alice")
    alice.name = "Alice Martin :wave:"
    alice.extra = {"icon": {"type": "Image", "url": remote.serve_file(
        "/avatars/alice.png", png((214, 90, 49)), "image/png")}, "tag": [
        {"type": "Emoji", "name": ":wave:", "icon": {"type": "Image", "url": remote.serve_file(
            "/emoji/wave.png", png((250, 200, 0)), "image/png")}}]}
    reply = await remote_reply(fc, alice, post["ap_id"],
                               content="<p>Lovely post! Does it reach Mastodon? :wave:</p>",
                               extra={"tag": [alice.extra["tag"][0]]})
    mallory = remote.actor("mallory")
    mallory.name = '<img src=x onerror="window.__xss=1">Mallory'
    mallory.extra = {"icon": {"type": "Image", "url": remote.serve_file(
        "/avatars/mallory.png", png((90, 90, 160)), "image/png")}}
    hostile = await remote_reply(fc, mallory, post["ap_id"], content=PAYLOAD_HTML)
    await moderation.approve_comments(fc.rt, [reply, hostile])
    answer = await replies.owner_reply(fc.rt, reply, "It does: this answer went to Mastodon.")
    carol = remote.actor("carol")
    carol.extra = {"icon": {"type": "Image", "url": remote.serve_file(
        "/avatars/carol.png", png((40, 140, 90)), "image/png")}}
    resp = await deliver(fc.session, carol, f"{fc.url}/inbox", activity(carol, "Like",
                                                                        answer.ap_id))
    assert resp.status == 202
    resp = await post_local(fc, post["id"], origin=blog.url, parent=str(answer.id), name="Bob",
                            email="bob@example.org", website="https://bob.example",
                            text="Thanks, both of you.\n\nMore at https://bob.example/notes")
    bob = (await resp.json())["comment"]["id"]
    resp = await post_local(fc, post["id"], origin=blog.url, name="<img src=x onerror="
                            '"window.__xss=1">Eve', website="https://eve.example/'onclick='x",
                            text='<script>window.__xss=1</script>', wait=61)
    eve = (await resp.json())["comment"]["id"]
    await moderation.approve_comments(fc.rt, [bob, eve])
    fc.clock.advance(seconds=61)  # the seeding comments leave the rate-limit window
    await get_thread(fc.rt, str(post["id"]))  # the server fetches the images it shows
    await fc.rt.media_jobs.idle()
    return {"post": post, "reply": reply, "answer": answer.id, "bob": bob, "eve": eve,
            "hostile": hostile}


async def count_rows(fc: Instance) -> int:
    return int((await fc.rt.db.read.fetchone("SELECT COUNT(*) FROM comments"))[0])


async def contrast(page: Page, selector: str) -> float:
    """WCAG contrast ratio of an element's text against the page background."""
    return await page.evaluate("""(sel) => {
      const parse = c => { const m = c.match(/[\\d.]+/g).map(Number);
        return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; };
      const lum = ({r, g, b}) => { const f = v => { v /= 255;
        return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
        return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
      const el = document.querySelector(sel);
      let bg = null;
      for (let n = el; n && !bg; n = n.parentElement) {
        const c = parse(getComputedStyle(n).backgroundColor); if (c.a > 0) bg = c; }
      bg = bg || {r: 255, g: 255, b: 255, a: 1};
      const fg = parse(getComputedStyle(el).color);
      const mix = {r: fg.r * fg.a + bg.r * (1 - fg.a), g: fg.g * fg.a + bg.g * (1 - fg.a),
                   b: fg.b * fg.a + bg.b * (1 - fg.a)};
      const [hi, lo] = [lum(mix), lum(bg)].sort((x, y) => y - x);
      return (hi + 0.05) / (lo + 0.05);
    }""", selector)


async def test_widget_on_a_static_blog(make_instance, blog: Blog, remote: FakeInstance,  # type: ignore[no-untyped-def]
                                       tmp_path: Path) -> None:
    """Given a static page with the embed under a strict CSP, the thread shows nested and
    readable; posting through the form shows the pending notice to its author only; the
    honeypot and the rate limit hold; no console error, CSP violation or injected script."""
    fc: Instance = await make_instance(server={"blog_origins": [blog.url]})
    blog.fc_url = fc.url
    ids = await seed(fc, blog, remote)
    async with chromium() as browser:
        w = await Watched.open(browser)
        page = w.page
        await page.goto(f"{blog.url}/hello/")
        nested = page.locator(f"#comment-{ids['reply']} > ol.fc-replies > #comment-{ids['answer']}"
                              f" > ol.fc-replies > #comment-{ids['bob']}")
        await expect(nested).to_have_count(1)
        await expect(page.locator("#fc-count")).to_have_text("5 comments")
        alice = page.locator(f"#comment-{ids['reply']} > .fc-body")
        await expect(alice.locator(".fc-name")).to_have_text("Alice Martin")
        await expect(alice.locator(".fc-handle")).to_have_text("@alice@127.0.0.1")
        avatar = alice.locator("img.fc-avatar")
        assert await avatar.get_attribute("referrerpolicy") == "no-referrer"
        assert await avatar.get_attribute("loading") == "lazy"
        assert (await avatar.get_attribute("src") or "").startswith(f"{fc.url}/media/")
        assert await avatar.evaluate("img => img.complete && img.naturalWidth") == 8
        emoji = alice.locator(".fc-content img.fc-emoji")
        await expect(emoji).to_have_attribute("alt", ":wave:")
        assert await emoji.evaluate("img => img.complete && img.naturalWidth") == 8
        await expect(alice.locator(".fc-name img.fc-emoji")).to_have_count(1)
        owner = page.locator(f"#comment-{ids['answer']} > .fc-body")
        await expect(owner.locator(".fc-badge")).to_have_text("author")
        await expect(owner.locator(".fc-likes")).to_have_text("1 like")
        face = owner.locator(".fc-facepile img")
        assert (await face.get_attribute("src") or "").startswith(f"{fc.url}/media/")
        assert await face.evaluate("img => img.complete && img.naturalWidth") == 8
        bob = page.locator(f"#comment-{ids['bob']} > .fc-body")
        await expect(bob.locator("a.fc-name")).to_have_attribute("rel", "nofollow ugc noopener")
        await expect(bob.locator(".fc-content a")).to_have_attribute(
            "href", "https://bob.example/notes")
        # Hostile names and text are shown as text, never run.
        eve = page.locator(f"#comment-{ids['eve']} > .fc-body")
        await expect(eve.locator(".fc-name")).to_have_text(
            '<img src=x onerror="window.__xss=1">Eve')
        await expect(eve.locator(".fc-content")).to_have_text("<script>window.__xss=1</script>")
        assert await page.locator(".fc-widget script, .fc-widget iframe, .fc-widget [onerror]"
                                  ).count() == 0

        # A reader posts through the form: first-time moderation keeps it pending.
        await page.get_by_role("textbox", name="Name").fill("Dana")
        await page.get_by_role("textbox", name="Email").fill("dana@example.org")
        # Remembering her name in this browser is her choice (opt-in), for the reload below.
        await page.get_by_label("Remember my name, email and website").check()
        await page.get_by_label("Comment", exact=True).fill("Hello from a real browser")
        fc.clock.advance(seconds=30)
        await page.get_by_role("button", name="Post comment").click()
        notice = page.locator("#fc-form .fc-notice")
        await expect(notice).to_contain_text("waiting for approval")
        mine = page.locator(".fc-pending", has_text="Hello from a real browser")
        await expect(mine).to_have_count(1)
        await expect(mine.locator(".fc-pending-label")).to_contain_text("Waiting for approval")
        row = await fc.rt.db.read.fetchone(
            "SELECT author_name, author_email, status FROM comments ORDER BY id DESC LIMIT 1")
        assert tuple(row) == ("Dana", "dana@example.org", "pending")
        await page.screenshot(path=str(tmp_path / "widget.png"), full_page=True)
        assert (tmp_path / "widget.png").stat().st_size > 20_000
        for selector in (f"#comment-{ids['reply']} .fc-content", f"#comment-{ids['reply']} "
                         ".fc-handle", "#fc-form label", "#fc-form button"):
            assert await contrast(page, selector) >= 4.5, selector

        # The author still sees it after a reload; another reader never does.
        await page.reload()
        await expect(page.locator(".fc-pending", has_text="Hello from a real browser")
                     ).to_have_count(1)
        other = await Watched.open(browser)
        await other.page.goto(f"{blog.url}/hello/")
        await expect(other.page.locator("#fc-count")).to_have_text("5 comments")
        await expect(other.page.get_by_text("Hello from a real browser")).to_have_count(0)
        assert other.unexpected() == []
        await other.assert_clean()

        # The honeypot: a bot fills the hidden field; nothing is stored.
        stored = await count_rows(fc)
        await page.eval_on_selector("#fc-homepage", "el => { el.value = 'http://spam.example' }")
        await page.get_by_label("Comment", exact=True).fill("Cheap pills")
        fc.clock.advance(seconds=30)
        await page.get_by_role("button", name="Post comment").click()
        await expect(page.locator("#fc-form [data-for=form]")).to_have_text(
            "this looks automated and was not saved")
        assert await count_rows(fc) == stored
        await page.eval_on_selector("#fc-homepage", "el => { el.value = '' }")

        # The rate limit: a second comment passes, the third within the minute does not.
        await page.get_by_label("Comment", exact=True).fill("A second thought")
        fc.clock.advance(seconds=5)
        await page.get_by_role("button", name="Post comment").click()
        await expect(page.locator(".fc-pending", has_text="A second thought")).to_have_count(1)
        await page.get_by_label("Comment", exact=True).fill("And a third")
        fc.clock.advance(seconds=5)
        await page.get_by_role("button", name="Post comment").click()
        await expect(notice).to_contain_text("too many comments from your network")
        assert await count_rows(fc) == stored + 1
        assert w.unexpected(refused=(400, 429), url=f"{fc.url}/api/v1/comments") == []
        await w.assert_clean()

        # Readers' browsers contact the blog and the comment server, nobody else; however
        # often they load the page, each image cost its server one fetch (by us).
        for _ in range(5):
            await page.reload()
            await expect(page.locator("#fedcomments[data-fc-ready]")).to_have_count(1)
        assert any(u.startswith(f"{fc.url}/media/") for u in w.requests + other.requests)
        assert w.origins() | other.origins() == {blog.url, fc.url}
        for path in ("/avatars/alice.png", "/avatars/mallory.png", "/avatars/carol.png",
                     "/emoji/wave.png"):
            assert remote.count(path) == 1, path


async def test_server_page_and_reply_from_your_instance(  # type: ignore[no-untyped-def]
        make_instance, blog: Blog, remote: FakeInstance, tmp_path: Path) -> None:
    """Given the post's own page on the comment server, the widget renders the same thread
    under the page's CSP; a reader edits and deletes their comment with its secret; and
    "reply from your fediverse account" takes the reader to their instance with the post's
    id, remembering their address."""
    fc: Instance = await make_instance(server={"blog_origins": [blog.url]})
    blog.fc_url = fc.url
    ids = await seed(fc, blog, remote)
    async with chromium() as browser:
        w = await Watched.open(browser)
        page = w.page
        await page.goto(f"{fc.url}/posts/{ids['post']['slug']}")
        # The widget replaces the server-rendered thread and form; act only once it has.
        await expect(page.locator("#fedcomments[data-fc-ready]")).to_have_count(1)
        await expect(page.locator(f"#comment-{ids['answer']} > ol.fc-replies > "
                                  f"#comment-{ids['bob']}")).to_have_count(1)
        await expect(page.locator("#fc-count")).to_have_text("5 comments")

        # Post, edit and delete one's own comment (the secret stays in this browser).
        await page.get_by_role("textbox", name="Name").fill("Gus")
        await page.get_by_label("Comment", exact=True).fill("Frist!")
        fc.clock.advance(seconds=30)
        await page.get_by_role("button", name="Post comment").click()
        mine = page.locator(".fc-pending")
        await expect(mine.locator(".fc-content")).to_have_text("Frist!")
        await mine.get_by_role("button", name="Edit").click()
        await mine.get_by_label("Edit your comment").fill("First, actually.")
        await mine.get_by_role("button", name="Save").click()
        await expect(page.locator(".fc-pending .fc-content")).to_have_text("First, actually.")
        row = await fc.rt.db.read.fetchone(
            "SELECT source, status FROM comments WHERE author_name = 'Gus'")
        assert tuple(row) == ("First, actually.", "pending")
        delete = page.locator(".fc-pending").get_by_role("button", name="Delete")
        await delete.click()
        await page.locator(".fc-pending").get_by_role("button", name="Really delete?").click()
        await expect(page.locator(".fc-pending")).to_have_count(0)
        assert await fc.rt.db.read.fetchone(
            "SELECT 1 FROM comments WHERE author_name = 'Gus'") is None

        handle = f"@reader@127.0.0.1:{blog.server.port if blog.server else 0}"
        interact = page.locator(".fc-thread-section > details.fc-interact")
        await interact.locator("summary").click()
        await interact.get_by_label("Your fediverse address").fill(handle)
        await interact.get_by_role("button", name="Open on my instance").click()
        await page.wait_for_url(f"{blog.url}/authorize_interaction?**")
        assert blog.authorized == [ids["post"]["ap_id"]]
        assert w.unexpected() == []
        await page.goto(f"{fc.url}/posts/{ids['post']['slug']}")
        await expect(page.locator("#fedcomments[data-fc-ready]")).to_have_count(1)
        first = page.locator("details.fc-interact input[name=acct]").first
        await expect(first).to_have_value(handle)
        # Both themes stay readable.
        for scheme in ("light", "dark"):
            await page.emulate_media(color_scheme=scheme)
            for selector in (f"#comment-{ids['reply']} .fc-content", f"#comment-{ids['reply']} "
                             ".fc-handle", "#fc-form label", "#fc-form button", "#fc-count"):
                assert await contrast(page, selector) >= 4.5, (scheme, selector)
            await page.screenshot(path=str(tmp_path / f"page-{scheme}.png"), full_page=True)
        assert w.unexpected() == []
        await w.assert_clean()
        assert w.origins() == {blog.url, fc.url}  # the reader's own instance is on blog.url
        assert remote.count("/avatars/alice.png") == 1


async def test_front_page_in_chromium(  # type: ignore[no-untyped-def]
        make_instance, blog: Blog, remote: FakeInstance) -> None:
    """Given a blog with a commented post, when Chromium opens `/`, then it shows the blog,
    its handle and its posts with their comment counts under the page's CSP; the copy
    button puts the handle on the clipboard and says so; "follow from your instance" takes
    the reader to their own instance with the blog's actor."""
    fc: Instance = await make_instance(server={"blog_origins": [blog.url]})
    blog.fc_url = fc.url
    ids = await seed(fc, blog, remote)
    await add_post_via_api(fc, "second", title="A second post")
    async with chromium() as browser:
        w = await Watched.open(browser)
        page = w.page
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                             origin=fc.url)
        await page.goto(f"{fc.url}/")
        await expect(page.get_by_role("heading", level=1)).to_have_text("Test Blog")
        await expect(page.get_by_text("A blog about tests.")).to_have_count(1)
        handle = fc.rt.urls.handle
        await expect(page.get_by_label("The blog's fediverse address")).to_have_value(handle)
        posts = page.locator("ul.fc-posts > li")
        await expect(posts).to_have_count(2)
        await expect(posts.nth(0).get_by_role("link").first).to_have_text("A second post")
        await expect(posts.nth(1).get_by_role("link").first).to_have_text("Hello, fediverse")
        await expect(posts.nth(1).locator(".fc-comment-count")).to_have_text("5 comments")

        await page.get_by_role("button", name="Copy").click()
        await expect(page.get_by_role("status")).to_have_text(f"Copied {handle}")
        assert await page.evaluate("navigator.clipboard.readText()") == handle
        for selector in ("h1", ".fc-posts a", ".fc-follow label", "#fc-copy-handle"):
            assert await contrast(page, selector) >= 4.5, selector

        await posts.nth(1).get_by_role("link").first.click()
        await page.wait_for_url(ids["post"]["ap_id"])
        await page.go_back()
        follow = page.locator("details.fc-interact")
        await follow.locator("summary").click()
        reader = f"@reader@127.0.0.1:{blog.server.port if blog.server else 0}"
        await follow.get_by_label("Your fediverse address").fill(reader)
        await follow.get_by_role("button", name="Open on my instance").click()
        await page.wait_for_url(f"{blog.url}/authorize_interaction?**")
        assert blog.authorized == [fc.rt.urls.actor]
        assert w.unexpected() == []
        await w.assert_clean()
async def test_privacy_notice_remember_me_and_reply_mail_box(  # type: ignore[no-untyped-def]
        make_instance, blog: Blog) -> None:
    """Given a privacy notice and mail configured, the widget shows the notice under the
    form and the "email me when someone replies" box; name, email and website stay in this
    browser only when the reader ticks "remember", and are forgotten when they untick it;
    the server page without JavaScript shows the notice and the box too."""
    mailbox = await Mailbox().start()
    try:
        fc: Instance = await make_instance(
            server={"blog_origins": [blog.url]}, moderation={"policy": "none"},
            comments={"privacy_url": "https://blog.example/privacy/",
                      "privacy_text": "How we handle your data"},
            notify=notify_settings(mailbox, to=""))
        blog.fc_url = fc.url
        post = await add_post_via_api(fc, url=f"{blog.url}/hello/", title="Hello")
        blog.ap_id = post["ap_id"]
        reader_key = "Object.keys(localStorage).filter(k => k.endsWith(':reader'))"
        async with chromium() as browser:
            w = await Watched.open(browser)
            page = w.page
            await page.goto(f"{blog.url}/hello/")
            await expect(page.locator("#fedcomments[data-fc-ready]")).to_have_count(1)
            privacy = page.locator("#fc-form .fc-privacy a")
            await expect(privacy).to_have_text("How we handle your data")
            assert await privacy.get_attribute("href") == "https://blog.example/privacy/"
            remember = page.get_by_label("Remember my name, email and website")
            replies = page.get_by_label("Email me when someone replies")
            await expect(remember).not_to_be_checked()
            await expect(replies).not_to_be_checked()

            async def send(text: str) -> None:
                await page.get_by_role("textbox", name="Name").fill("Gus")
                await page.get_by_role("textbox", name="Email").fill("gus@example.org")
                await page.get_by_role("textbox", name="Website").fill("https://gus.example")
                await page.get_by_label("Comment", exact=True).fill(text)
                fc.clock.advance(seconds=61)
                await page.get_by_role("button", name="Post comment").click()
                await expect(page.locator(".fc-comment", has_text=text)).to_have_count(1)

            # Unticked (the default): nothing is kept in the browser.
            await send("Not remembered")
            assert await page.evaluate(reader_key) == []
            # Ticked, with "email me": remembered here, and the address asked to confirm.
            await remember.check()
            await replies.check()
            await send("Remembered, and tell me of replies")
            [key] = await page.evaluate(reader_key)
            assert await page.evaluate(f"JSON.parse(localStorage.getItem({key!r}))") == {
                "name": "Gus", "email": "gus@example.org", "website": "https://gus.example"}
            [confirm] = await mailbox.wait_for(1)
            assert confirm.recipients == ["gus@example.org"]
            await page.reload()
            await expect(page.locator("#fedcomments[data-fc-ready]")).to_have_count(1)
            await expect(page.get_by_role("textbox", name="Name")).to_have_value("Gus")
            await expect(page.get_by_role("textbox", name="Website")).to_have_value(
                "https://gus.example")
            await expect(remember).to_be_checked()
            # Unticking forgets at once.
            await remember.uncheck()
            assert await page.evaluate(reader_key) == []
            await page.reload()
            await expect(page.locator("#fedcomments[data-fc-ready]")).to_have_count(1)
            await expect(page.get_by_role("textbox", name="Name")).to_have_value("")
            await expect(remember).not_to_be_checked()
            assert w.unexpected() == []
            await w.assert_clean()

            # The server's page without JavaScript: the same notice and box.
            context = await browser.new_context(java_script_enabled=False)
            plain = await context.new_page()
            await plain.goto(f"{fc.url}/posts/{post['slug']}")
            await expect(plain.locator("#fc-form .fc-privacy a")).to_have_text(
                "How we handle your data")
            await expect(plain.get_by_label("Email me when someone replies")).to_have_count(1)
        row = await fc.rt.db.read.fetchone("SELECT COUNT(*) FROM subscriptions")
        assert row is not None and row[0] == 1
    finally:
        await mailbox.close()


async def test_custom_emoji_replace_only_their_own_shortcodes(  # type: ignore[no-untyped-def]
        make_instance, blog: Blog, remote: FakeInstance) -> None:
    """Given a reply carrying the emoji :blob: and :__proto__:, whose text also holds words
    that name built-in properties of script objects (:constructor:, :toString:, :url:),
    the widget in Chromium shows exactly the images the server's own page shows, the
    reply's two emoji, and leaves the other words as text."""
    fc: Instance = await make_instance(server={"blog_origins": [blog.url]},
                                       moderation={"policy": "none"})
    blog.fc_url = fc.url
    post = await add_post_via_api(fc, url=f"{blog.url}/hello/", title="Hello, fediverse")
    blog.ap_id = post["ap_id"]
    ray = remote.actor("ray")
    tags = [{"type": "Emoji", "name": f":{code}:", "icon": {"type": "Image", "url": (
        remote.serve_file(f"/emoji/{i}.png", png((200, 40 * i, 0)), "image/png"))}}
        for i, code in enumerate(("blob", "__proto__"))]
    text = ":constructor: :toString: :url: :blob: :__proto__:"
    reply = await remote_reply(fc, ray, post["ap_id"], content=f"<p>{text}</p>",
                               extra={"tag": tags})
    await get_thread(fc.rt, str(post["id"]))
    await fc.rt.media_jobs.idle()
    page_html = await (await fc.get(f"/posts/{post['slug']}", accept="text/html")).text()
    assert page_html.count('class="fc-emoji"') == 2
    assert ":constructor: :toString: :url: <img" in page_html

    async with chromium() as browser:
        w = await Watched.open(browser)
        await w.page.goto(f"{blog.url}/hello/")
        content = w.page.locator(f"#comment-{reply} .fc-content")
        await expect(content.locator("img.fc-emoji")).to_have_count(2)
        assert await content.locator("img.fc-emoji").evaluate_all(
            "imgs => imgs.map(i => i.alt)") == [":blob:", ":__proto__:"]
        await expect(content).to_have_text(":constructor: :toString: :url:  ")
        assert w.unexpected() == []
        await w.assert_clean()
