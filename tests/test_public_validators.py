"""Public validators come from what the public thread shows: a private reply, a comment
held for moderation, or a new name of someone who only wrote those, leaves the ETags of
the thread JSON and of the post page (and their 304s) exactly as they were."""

from __future__ import annotations

from typing import Any

import aiohttp

from fedcomments.services import actors, moderation
from tests.helpers.fediverse import FakeInstance, activity, note
from tests.helpers.inbox import Blog, outcome, start_blog_with_post


async def _validators(blog: Blog) -> tuple[str, bytes, str]:
    """(thread ETag, thread body, page ETag)."""
    api = await blog.instance.get(f"/api/v1/thread?id={blog.post.id}",
                                  accept="application/json")
    page = await blog.instance.get(f"/posts/{blog.post.slug}", accept="text/html")
    assert (api.status, page.status) == (200, 200)
    return api.headers["ETag"], await api.read(), page.headers["ETag"]


async def _revalidate(blog: Blog, path: str, etag: str, accept: str) -> int:
    resp: aiohttp.ClientResponse = await blog.instance.get(
        path, accept=accept, headers={"If-None-Match": etag})
    return resp.status


async def test_private_and_held_replies_leave_public_validators_unchanged(
        make_instance: Any, remote: FakeInstance) -> None:
    """Given a post whose thread and page were fetched, when a first-time commenter's reply
    is held, a direct and a followers-only reply arrive and a private-only author renames
    themselves, then the thread JSON keeps its bytes and both ETags stay, and both answer
    304 to the old ETags; when the held reply is approved, both ETags change."""
    blog = await start_blog_with_post(make_instance, moderation={"policy": "first-time"})
    alice, bob = remote.actor("alice"), remote.actor("bob")
    before = await _validators(blog)

    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)))
    assert await outcome(r) == "created"
    held = (await blog.comments())[-1]
    assert held["status"] == "pending"
    for visibility in ("direct", "followers"):
        doc = note(bob, blog.post.ap_id, visibility=visibility, mention=blog.rt.urls.actor)
        assert await outcome(await blog.send(bob, activity(bob, "Create", doc))) == "created"
    bob.name = "Robert"
    assert (await actors.fetch_actor(blog.rt, bob.id)).name == "Robert"  # a refetch

    assert await _validators(blog) == before
    assert await _revalidate(blog, f"/api/v1/thread?id={blog.post.id}", before[0],
                             "application/json") == 304
    assert await _revalidate(blog, f"/posts/{blog.post.slug}", before[2], "text/html") == 304

    await moderation.approve_comments(blog.rt, [held["id"]])
    after = await _validators(blog)
    assert (after[0] != before[0], after[2] != before[2]) == (True, True)
