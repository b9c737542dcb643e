"""Handles cannot impersonate: only a WebFinger-valid preferredUsername is shown as
@name@host, on every surface (thread JSON and widget, the post page, admin listings, the
mentions of the owner's answers)."""

from __future__ import annotations

from typing import Any

from fedcomments.services import replies
from tests.helpers.fediverse import FakeInstance, activity, note
from tests.helpers.inbox import Blog


async def _thread_author(blog: Blog) -> dict[str, Any]:
    resp = await blog.instance.get(f"/api/v1/thread?id={blog.post.id}",
                                   accept="application/json")
    assert resp.status == 200
    (comment,) = (await resp.json())["comments"]
    return dict(comment["author"])


async def test_username_that_reads_as_another_account_is_shown_as_a_name_only(
        blog: Blog, remote: FakeInstance) -> None:
    """Given an actor whose preferredUsername is `admin@other.example`, when its reply is
    shown, then no surface shows @admin@other.example@<its host>: the thread JSON (which
    the widget renders) has no handle, the post page shows the name only, the admin API and
    the owner's answer name the actor by its id; a valid name still shows its handle."""
    mallory = remote.actor("mallory")
    mallory.name = "Admin"
    mallory.extra = {"preferredUsername": "admin@other.example"}
    r = await blog.send(mallory, activity(mallory, "Create", note(mallory, blog.post.ap_id)))
    assert r.status == 202
    forged = "@admin@other.example@127.0.0.1"

    author = await _thread_author(blog)
    assert (author["name"], author["handle"]) == ("Admin", None)

    page = await blog.instance.get(f"/posts/{blog.post.slug}", accept="text/html")
    html = await page.text()
    assert page.status == 200 and "admin@other.example" not in html and "Admin" in html

    resp = await blog.instance.admin("GET", "/api/v1/admin/comments")
    (listed,) = (await resp.json())["comments"]
    assert listed["author"]["handle"] == mallory.id

    answer = await replies.owner_reply(blog.rt, (await blog.comments())[0]["id"], "Thanks")
    note_doc = await replies.note_document(blog.rt, blog.rt.db.read, answer)
    assert forged not in str(note_doc)
    assert [t["name"] for t in note_doc["tag"]] == [mallory.id]

    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)))
    assert r.status == 202
    resp = await blog.instance.get(f"/api/v1/thread?id={blog.post.id}",
                                   accept="application/json")
    handles = [c["author"]["handle"] for c in (await resp.json())["comments"]]
    assert "@alice@127.0.0.1" in handles and forged not in handles
