"""The front page `/`: for a browser the blog, its handle, how to follow it and its latest
posts with public comment counts, valid HTML5 under the pages' CSP; for AS2 clients the
same 404 as before; "follow from your instance" through the remote-interaction flow."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fedcomments.services import moderation
from fedcomments.services import posts as post_service
from fedcomments.web.app import CSP_DEV
from tests.conftest import Instance
from tests.helpers.fediverse import FakeInstance
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import post_local, remote_reply
from tests.test_reader_pages import assert_valid_html5


async def seeded(make_instance: Any, remote: FakeInstance) -> tuple[Instance, dict[str, Any]]:
    """Three posts: one with two public comments plus a private and a held one, one with
    none, one scheduled for tomorrow; and a deleted one."""
    fc: Instance = await make_instance(moderation={"policy": "first-time"},
                                       actor={"summary": "Notes on tests.\n\nAnd on code."})
    busy = await add_post_via_api(fc, "busy", title="A busy post")
    fc.clock.advance(minutes=1)
    quiet = await add_post_via_api(fc, "quiet", title="A <quiet> post")
    later = await add_post_via_api(fc, "later", title="Tomorrow's post",
                                   published=(fc.clock() + timedelta(days=1)).isoformat())
    gone = await add_post_via_api(fc, "gone", title="A deleted post")
    await post_service.delete_post(fc.rt, str(gone["id"]))
    alice, bob = remote.actor("alice"), remote.actor("bob")
    shown = [await remote_reply(fc, alice, busy["ap_id"]),
             await remote_reply(fc, bob, busy["ap_id"])]
    await moderation.approve_comments(fc.rt, shown)
    private = await remote_reply(fc, alice, busy["ap_id"], visibility="followers")
    await moderation.approve_comments(fc.rt, [private])
    held = await post_local(fc, busy["id"], name="Held", text="Waiting")
    assert (await held.json())["pending"] is True
    return fc, {"busy": busy, "quiet": quiet, "later": later, "gone": gone}


async def test_front_page_shows_the_blog_its_handle_and_posts(
        make_instance: Any, remote: FakeInstance) -> None:
    """Given a blog with posts, when a browser asks for `/`, then it gets the blog's name,
    summary, handle with a copy field and a follow form aimed at the actor, the published
    posts newest first with their public comment counts (private and held ones not
    counted, scheduled and deleted posts not listed), as valid HTML5 under the CSP with no
    inline script or style."""
    fc, posts = await seeded(make_instance, remote)
    resp = await fc.get("/", accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"] == CSP_DEV
    text = await resp.text()
    assert_valid_html5(text)
    assert "<h1>Test Blog</h1>" in text
    assert "<p>Notes on tests.</p><p>And on code.</p>" in text
    handle = fc.rt.urls.handle
    assert f'id="fc-handle-field" class="fc-copy" readonly value="{handle}"' in text
    assert f'<input type="hidden" name="object" value="{fc.rt.urls.actor}">' in text
    listed = re.findall(r'<li><a href="([^"]+)">([^<]+)</a>.*?class="fc-comment-count"[^>]*>'
                        r"([^<]+)</a>", text)
    assert listed == [(posts["quiet"]["ap_id"], "A &lt;quiet&gt; post", "no comments yet"),
                      (posts["busy"]["ap_id"], "A busy post", "2 comments")]
    assert "Tomorrow" not in text and "deleted post" not in text
    assert '<link rel="alternate" type="application/atom+xml" href="' \
           f'{fc.url}/comments.atom"' in text
    assert re.search(r"<script(?![^>]*\ssrc=)", text) is None
    assert " style=" not in text and "<style" not in text


async def test_as2_clients_still_get_404(instance: Instance) -> None:
    """Given an ActivityPub client, when it asks for `/`, then the answer is the 404 it got
    before there was a front page."""
    for accept in ("application/activity+json", 'application/ld+json; profile='
                   '"https://www.w3.org/ns/activitystreams"'):
        resp = await instance.get("/", accept=accept)
        assert resp.status == 404
        assert resp.content_type == "text/plain"


async def test_follow_from_your_instance(make_instance: Any, remote: FakeInstance) -> None:
    """Given a reader on an instance with a subscribe template, when they send the front
    page's follow form with their address, then they are sent to their instance with the
    blog's actor to follow; and the manual fallback page speaks of following."""
    fc: Instance = await make_instance()
    reader = remote.actor("reader")
    remote.serve("/.well-known/webfinger", {
        "subject": f"acct:reader@{remote.url.split('://', 1)[1]}",
        "links": [{"rel": "http://ostatus.org/schema/1.0/subscribe",
                   "template": f"{remote.url}/authorize_interaction?uri={{uri}}"}]},
        "application/jrd+json")
    acct = f"@{reader.username}@{remote.url.split('://', 1)[1]}"
    resp = await fc.session.post(f"{fc.url}/interact", allow_redirects=False,
                                 data={"acct": acct, "object": fc.rt.urls.actor},
                                 headers={"Origin": fc.url})
    assert resp.status == 303
    assert resp.headers["Location"] == (
        f"{remote.url}/authorize_interaction?uri={quote(fc.rt.urls.actor, safe='')}")
    page = await fc.get(f"/interact?object={quote(fc.rt.urls.actor)}", accept="text/html")
    text = await page.text()
    assert page.status == 200 and "<h1 id=\"fc-interact-title\">Follow from your" in text
    other = await fc.get(f"/interact?object={quote(fc.rt.urls.actor + 'x')}",
                         accept="text/html")
    assert other.status == 404
