"""Atom feeds of comments, read by a real feed parser: per post and for the whole blog,
with authors, permalinks and sanitised content; private, held, rejected and deleted
comments never in them; ETag and 304."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import feedparser

from fedcomments.services import moderation
from fedcomments.services import posts as post_service
from tests.conftest import Instance
from tests.helpers.fediverse import FakeInstance
from tests.helpers.posts import add_post_via_service
from tests.helpers.reader import post_local, remote_reply, thread

ATOM = "{http://www.w3.org/2005/Atom}"
SHOWN = ("marker-public", "marker-unlisted", "marker-reader")
HIDDEN = ("marker-private", "marker-direct", "marker-held", "marker-rejected",
          "marker-deleted", "marker-gone-post")


async def fetch(fc: Instance, path: str, **headers: str) -> tuple[int, bytes, Any]:
    resp = await fc.session.get(fc.url + path, headers=headers)
    return resp.status, await resp.read(), resp.headers


def well_formed_atom(body: bytes) -> ET.Element:
    """The document parses as XML and has what RFC 4287 requires of a feed and each entry."""
    root = ET.fromstring(body)
    assert root.tag == f"{ATOM}feed"
    for name in ("id", "title", "updated"):
        assert (root.findtext(f"{ATOM}{name}") or "").strip(), name
    assert root.find(f"{ATOM}link[@rel='self']") is not None
    for entry in root.iter(f"{ATOM}entry"):
        for name in ("id", "title", "updated", "published"):
            assert (entry.findtext(f"{ATOM}{name}") or "").strip(), name
        assert (entry.findtext(f"{ATOM}author/{ATOM}name") or "").strip()
        assert entry.find(f"{ATOM}content[@type='html']") is not None
    return root


async def a_busy_thread(fc: Instance, remote: FakeInstance) -> dict[str, int]:
    """Under one post (every comment held first, policy "all"): approved public, unlisted
    and reader comments; a private and a direct reply; one held, one rejected, one
    deleted; and a comment under a post that was then deleted."""
    post = await add_post_via_service(fc.rt, "https://blog.example/busy/", "Busy post")
    gone = await add_post_via_service(fc.rt, "https://blog.example/gone/", "Gone post")
    ids: dict[str, int] = {}
    for name, visibility in [("public", "public"), ("unlisted", "unlisted"),
                             ("private", "followers"), ("direct", "direct"), ("held", "public"),
                             ("rejected", "public"), ("deleted", "public")]:
        actor = remote.actor(name)
        text = f"<p>marker-{name} <script>alert(1)</script></p>"
        ids[name] = await remote_reply(fc, actor, post.ap_id, content=text,
                                       visibility=visibility, mention=fc.rt.urls.actor)
        fc.clock.advance(seconds=30)
    ids["gone-post"] = await remote_reply(fc, remote.actor("late"), gone.ap_id,
                                          content="<p>marker-gone-post</p>")
    resp = await post_local(fc, post.id, name="Rita <Reader>", website="https://rita.example",
                            text="marker-reader \x01 says <script>alert(1)</script> & more")
    assert resp.status == 201, await resp.text()
    ids["reader"] = (await resp.json())["comment"]["id"]
    approve = ["public", "unlisted", "private", "direct", "deleted", "gone-post", "reader"]
    await moderation.approve_comments(fc.rt, [ids[n] for n in approve])
    await moderation.reject_comments(fc.rt, [ids["rejected"]])
    await moderation.delete_comments(fc.rt, [ids["deleted"]])
    await post_service.delete_post(fc.rt, str(gone.id))
    ids["post"] = post.id
    return ids


async def test_feeds_carry_public_comments_only(make_instance: Any,
                                               remote: FakeInstance) -> None:
    """Given a thread with comments of every audience and status, when its feed and the
    blog's feed are read by feedparser, then only the approved public, unlisted and reader
    comments are in them, newest first, with their authors, a permalink to each comment
    under the post, and sanitised content."""
    fc = await make_instance(moderation={"policy": "all"})
    ids = await a_busy_thread(fc, remote)
    post = await post_service.get_post(fc.rt, str(ids["post"]))
    for path in (f"/posts/{post.slug}/comments.atom", "/comments.atom"):
        status, body, headers = await fetch(fc, path)
        assert status == 200 and headers["Content-Type"].startswith("application/atom+xml")
        well_formed_atom(body)
        text = body.decode()
        for marker in HIDDEN:
            assert marker not in text, (path, marker)
        parsed = feedparser.parse(body)
        assert (parsed.bozo, parsed.version) == (0, "atom10")
        assert parsed.feed.links[0].href == fc.url + path
        entries = parsed.entries
        assert [next(m for m in SHOWN if m in e.content[0].value) for e in entries] == [
            "marker-reader", "marker-unlisted", "marker-public"]
        reader, unlisted, public = entries
        assert reader.link == f"https://blog.example/busy/#comment-{ids['reader']}"
        assert public.link == f"https://blog.example/busy/#comment-{ids['public']}"
        assert reader.author_detail.name == "Rita <Reader>"
        assert reader.author_detail.href == "https://rita.example"
        assert public.author_detail.name and public.author_detail.href.startswith(remote.url)
        # Remote HTML is sanitised (a script goes with its text); a reader's text is text.
        assert all("<script" not in e.content[0].value for e in entries)
        assert "alert(" not in public.content[0].value + unlisted.content[0].value
        assert "&lt;script&gt;alert(1)" in reader.content[0].value
        assert "Busy post" in public.title and public.updated and public.id


async def test_feeds_answer_304_until_a_comment_changes_them(blog: Any,
                                                            remote: FakeInstance) -> None:
    """Given the post's and the blog's feeds with their ETags, when asked again with
    If-None-Match, then 304 with no body; after a new public reply, 200 with another ETag
    and the reply in it."""
    fc, post = blog.instance, blog.post
    await remote_reply(fc, remote.actor("alice"), post.ap_id, content="<p>first</p>")
    for path in (f"/posts/{post.slug}/comments.atom", "/comments.atom"):
        status, body, headers = await fetch(fc, path)
        etag = headers["ETag"]
        assert status == 200 and "first" in body.decode()
        status, again, _ = await fetch(fc, path, **{"If-None-Match": etag})
        assert (status, again) == (304, b"")
    before = {p: (await fetch(fc, p))[2]["ETag"]
              for p in (f"/posts/{post.slug}/comments.atom", "/comments.atom")}
    fc.clock.advance(minutes=1)
    await remote_reply(fc, remote.actor("bob"), post.ap_id, content="<p>second</p>")
    for path, etag in before.items():
        status, body, headers = await fetch(fc, path, **{"If-None-Match": etag})
        assert status == 200 and headers["ETag"] != etag
        assert [e.content[0].value for e in feedparser.parse(body).entries] == [
            "<p>second</p>", "<p>first</p>"]


async def test_post_page_and_thread_name_the_feed(blog: Any) -> None:
    """Given a post, then its page links its comment feed as an Atom alternate and the
    thread JSON lists it; the feed of a post with no comments is valid and empty."""
    fc, post = blog.instance, blog.post
    resp = await fc.get(f"/posts/{post.slug}", accept="text/html")
    page = await resp.text()
    feed_url = f"{fc.url}/posts/{post.slug}/comments.atom"
    assert f'<link rel="alternate" type="application/atom+xml" href="{feed_url}"' in page
    assert (await thread(fc, id=str(post.id)))["post"]["comments_feed"] == feed_url
    status, body, _ = await fetch(fc, f"/posts/{post.slug}/comments.atom")
    assert status == 200
    well_formed_atom(body)
    parsed = feedparser.parse(body)
    assert (parsed.bozo, parsed.entries) == (0, [])
    assert (await fetch(fc, "/posts/nothing-here/comments.atom"))[0] == 404
    await post_service.delete_post(fc.rt, str(post.id))
    assert (await fetch(fc, f"/posts/{post.slug}/comments.atom"))[0] == 410
