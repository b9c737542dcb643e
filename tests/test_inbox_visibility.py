"""Visibility of remote replies: decided from the object's own addressing, private replies
kept for the owner only, never widened later (issue 3, point 12)."""

from __future__ import annotations

import pytest

from fedcomments.store import comments as comment_store
from tests.helpers.fediverse import (
    PUBLIC,
    FakeInstance,
    activity,
    note,
)
from tests.helpers.inbox import Blog, outcome


async def public_surfaces(blog: Blog) -> tuple[list[str | None], int, int]:
    """What the public sees: the thread's comments, the post's count, NodeInfo's count."""
    rows = await comment_store.thread_rows(blog.rt.db.read, blog.post.id)
    count = await comment_store.count_public(blog.rt.db.read, blog.post.id)
    nodeinfo = await (await blog.instance.get("/nodeinfo/2.1", accept="application/json")).json()
    return [c.ap_id for c in rows], count, nodeinfo["usage"]["localComments"]


async def published_text(blog: Blog) -> str:
    """Everything a stranger can read about the post: thread API, HTML page, replies."""
    inst, slug = blog.instance, blog.post.slug
    bodies = [
        await (await inst.get(f"/api/v1/thread?url={blog.post.permalink}",
                              accept="application/json")).text(),
        await (await inst.get(f"/posts/{slug}", accept="text/html")).text(),
        await (await inst.get(f"/posts/{slug}/replies")).text(),
        await (await inst.get(f"/posts/{slug}/replies?page=1")).text(),
    ]
    return "\n".join(bodies)


@pytest.mark.parametrize(("addressing", "stored", "shown"), [
    ("public", "public", True), ("unlisted", "unlisted", True),
    ("followers", "followers", False), ("direct", "direct", False)])
async def test_visibility_from_addressing(blog: Blog, remote: FakeInstance, addressing: str,
                                         stored: str, shown: bool) -> None:
    """Given a reply addressed public, unlisted, followers-only or directly to the blog, when
    it arrives, then it is stored with that visibility, and only public and unlisted ones
    appear in the thread, the post's count and NodeInfo."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id, visibility=addressing, mention=blog.rt.urls.actor,
                 content=f"<p>marker-{addressing}-text</p>")
    assert await outcome(await blog.send(alice, activity(alice, "Create", reply))) == "created"
    assert [(c["visibility"], c["status"]) for c in await blog.comments()] == [
        (stored, "approved")]
    expected = ([reply["id"]], 1, 1) if shown else ([], 0, 0)
    assert await public_surfaces(blog) == expected
    assert (f"marker-{addressing}-text" in await published_text(blog)) is shown


@pytest.mark.parametrize("spelling", [PUBLIC, "as:Public", "Public"])
@pytest.mark.parametrize("field", ["to", "cc"])
async def test_public_spellings_and_string_addressing(blog: Blog, remote: FakeInstance,
                                                      spelling: str, field: str) -> None:
    """Given Public spelled as the full IRI, as:Public or Public, as a bare string in `to` or
    `cc`, when the reply arrives, then it is public (to) or unlisted (cc)."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id, extra={"to": alice.followers, "cc": []})
    reply[field] = spelling
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    assert [c["visibility"] for c in await blog.comments()] == [
        "public" if field == "to" else "unlisted"]


async def test_followers_collection_not_named_followers(blog: Blog, remote: FakeInstance) -> None:
    """Given an actor whose followers collection has an unusual URL (as Misskey's does), when
    it replies to its followers only, then the reply is private."""
    alice = remote.actor("alice")
    alice.extra = {"followers": f"{remote.url}/users/alice/fans"}
    reply = note(alice, blog.post.ap_id, extra={"to": [f"{remote.url}/users/alice/fans"],
                                                "cc": [blog.rt.urls.actor]})
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    assert [c["visibility"] for c in await blog.comments()] == ["followers"]
    assert await public_surfaces(blog) == ([], 0, 0)


async def test_private_reply_to_public_comment_stays_private(blog: Blog,
                                                             remote: FakeInstance) -> None:
    """Given bob's public comment, when alice answers it followers-only, then bob's is shown
    and alice's is stored under it, private."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    top = note(bob, blog.post.ap_id)
    below = note(alice, top["id"], visibility="followers")
    await outcome(await blog.send(bob, activity(bob, "Create", top)))
    await outcome(await blog.send(alice, activity(alice, "Create", below)))
    assert [(c["ap_id"], c["parent_ap_id"], c["visibility"]) for c in await blog.comments()] == [
        (top["id"], None, "public"), (below["id"], top["id"], "followers")]
    assert await public_surfaces(blog) == ([top["id"]], 1, 1)


async def test_update_never_widens(blog: Blog, remote: FakeInstance) -> None:
    """Given a followers-only reply, when its author sends an Update addressed publicly,
    then the text is updated for the owner but the reply stays private."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id, visibility="followers", content="<p>v1</p>")
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    widened = {**reply, "to": [PUBLIC], "cc": [alice.followers], "content": "<p>v2</p>",
               "updated": "2099-01-01T00:00:00Z"}
    assert await outcome(await blog.send(alice, activity(alice, "Update", widened))) == "edited"
    assert [(c["visibility"], c["content"]) for c in await blog.comments()] == [
        ("followers", "<p>v2</p>")]
    assert await public_surfaces(blog) == ([], 0, 0)


async def test_update_may_narrow(blog: Blog, remote: FakeInstance) -> None:
    """Given a public reply, when its author narrows it to followers-only, then it leaves
    every public surface."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id)
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    narrowed = {**reply, "to": [alice.followers], "cc": [], "updated": "2099-01-01T00:00:00Z"}
    await outcome(await blog.send(alice, activity(alice, "Update", narrowed)))
    assert [c["visibility"] for c in await blog.comments()] == ["followers"]
    assert await public_surfaces(blog) == ([], 0, 0)


async def test_replayed_create_does_not_widen(blog: Blog, remote: FakeInstance) -> None:
    """Given a direct reply, when a Create of the same note, now addressed publicly, arrives
    under a new activity id, then the stored reply stays direct."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id, visibility="direct", mention=blog.rt.urls.actor)
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    public = {**reply, "to": [PUBLIC], "cc": []}
    assert await outcome(await blog.send(alice, activity(alice, "Create", public))) == \
        "already known"
    assert [c["visibility"] for c in await blog.comments()] == ["direct"]
