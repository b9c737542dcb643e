"""Smoke: a fake Mastodon follows the blog and replies to a post."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Instance
from tests.helpers.fediverse import FakeInstance, activity, deliver, note


@pytest.fixture
async def remote() -> AsyncIterator[FakeInstance]:
    inst = await FakeInstance().start()
    yield inst
    await inst.close()


async def test_reply_becomes_comment(make_instance, remote: FakeInstance) -> None:  # type: ignore[no-untyped-def]
    """Given a post, a signed Create{Note} reply becomes a visible comment."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    resp = await fc.admin("POST", "/api/v1/admin/posts",
                          json={"url": "https://blog.example/a/", "title": "A"})
    post = await resp.json()
    alice = remote.actor("alice")
    follow = activity(alice, "Follow", fc.rt.urls.actor)
    r = await deliver(fc.session, alice, f"{fc.url}/inbox", follow)
    assert r.status == 202, await r.text()
    reply = note(alice, post["ap_id"])
    create = activity(alice, "Create", reply)
    r = await deliver(fc.session, alice, f"{fc.url}/users/blog/inbox", create)
    assert r.status == 202, await r.text()
    row = await fc.rt.db.read.fetchone("SELECT content, status, visibility FROM comments")
    assert tuple(row) == ("<p>Nice post!</p>", "approved", "public")
