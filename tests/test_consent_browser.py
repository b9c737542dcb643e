"""In a real Chromium: the widget on a static blog marks the comments of authors who said
`indexable: false` with data-nosnippet, and never shows a #nobot author's reply."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.conftest import Instance
from tests.helpers.fediverse import FakeInstance
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import remote_reply
from tests.test_browser import Blog, Watched, chromium, expect


@pytest.fixture
async def static_blog() -> AsyncIterator[Blog]:
    b = await Blog().start()
    yield b
    assert b.server is not None
    await b.server.close()


async def test_widget_marks_nosnippet_and_hides_opted_out(make_instance: Any,
                                                          static_blog: Blog,
                                                          remote: FakeInstance) -> None:
    """Given replies from an author with indexable: false, one without the flag and one
    with #nobot in their bio, when the widget renders the thread on a static page, then
    the first sits inside a data-nosnippet element, the second does not, the third is
    not on the page at all, with no console error or CSP violation."""
    fc: Instance = await make_instance(server={"blog_origins": [static_blog.url]},
                                       moderation={"policy": "none"})
    static_blog.fc_url = fc.url
    post = await add_post_via_api(fc, url=f"{static_blog.url}/hello/", title="Hello")
    static_blog.ap_id = post["ap_id"]
    quiet, plain, robot = remote.actor("quiet"), remote.actor("plain"), remote.actor("robot")
    for actor in (quiet, plain, robot):  # avatars that really load
        actor.extra = {"icon": {"type": "Image",
                                "url": f"{static_blog.url}/avatars/{actor.username}.png"}}
    quiet.extra["indexable"] = False
    robot.extra["summary"] = "<p>No bots please #nobot</p>"
    hidden = await remote_reply(fc, quiet, post["ap_id"], content="<p>Not for search</p>")
    shown = await remote_reply(fc, plain, post["ap_id"], content="<p>Searchable</p>")
    await remote_reply(fc, robot, post["ap_id"], content="<p>Not for blogs</p>")
    async with chromium() as browser:
        w = await Watched.open(browser)
        page = w.page
        await page.goto(f"{static_blog.url}/hello/")
        await expect(page.locator("#fc-count")).to_have_text("2 comments")
        marked = page.locator(f"#comment-{hidden} > .fc-body > [data-nosnippet]")
        await expect(marked.locator(".fc-content")).to_have_text("Not for search")
        await expect(page.locator(f"#comment-{shown} [data-nosnippet]")).to_have_count(0)
        await expect(page.locator(f"#comment-{shown} .fc-content")).to_have_text("Searchable")
        await expect(page.get_by_text("Not for blogs")).to_have_count(0)
        assert w.unexpected() == []
        await w.assert_clean()
