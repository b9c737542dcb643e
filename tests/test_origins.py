"""Who may speak for whom: documents only from their id's origin (redirects included), a
signature made for our host, inboxes on the actor's own host, and names that are never
looked up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from fedcomments.store import db as dbmod
from fedcomments.store import schema
from fedcomments.store.db import Database
from fedcomments.store.schema import _foreign_inbox
from tests.helpers.admin import start_peer
from tests.helpers.fediverse import (
    SIGNERS,
    FakeInstance,
    LoopbackNames,
    Signer,
    activity,
    note,
    running,
)
from tests.helpers.inbox import Blog, start_blog_with_post, stored_state
from tests.helpers.peers import until
from tests.helpers.posts import add_post_via_service

#: What an activity may write (the sender's actor and key aside).
CONTENT_TABLES = ("comments", "tombstones", "reactions", "followers", "processed_activities",
                  "deliveries", "reports")


async def _content(blog: Blog) -> dict[str, list[tuple[Any, ...]]]:
    state = await stored_state(blog.rt)
    return {table: state[table] for table in CONTENT_TABLES}


# --- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("document", ["actor", "key", "object"])
async def test_document_redirected_to_another_origin_is_refused(
        blog: Blog, document: str) -> None:
    """Given server A that redirects an actor, key or note URL to server B (another origin),
    where B serves the document with its id on A, when a reply depends on that document,
    then it is not used: 401 for the actor or key, 'object unavailable' for the note, and
    nothing is stored. (A redirect within the origin is still followed.)"""
    async with running(2) as (a, b):
        bob = a.actor("bob")
        a.serve("/moved/bob", bob.document())
        a.redirect("/users/bob", f"{a.url}/moved/bob")
        r = await blog.send(bob, activity(bob, "Create", note(bob, blog.post.ap_id)))
        assert (r.status, (await r.json())["outcome"]) == (202, "created")

        alice = a.actor("alice", key_style="standalone" if document == "key" else "mastodon")
        doc: dict[str, Any] = activity(alice, "Create", note(alice, blog.post.ap_id))
        if document == "actor":
            b.serve("/elsewhere", alice.document())
            a.redirect("/users/alice", f"{b.url}/elsewhere")
        elif document == "key":
            key_document = alice.key_document()
            assert key_document is not None
            b.serve("/elsewhere", key_document)
            a.redirect("/keys/alice", f"{b.url}/elsewhere")
        else:  # a Create by reference: the note is fetched from its id
            obj = doc["object"]
            obj["id"] = f"{a.url}/objects/by-reference"
            b.serve("/elsewhere", obj)
            a.redirect("/objects/by-reference", f"{b.url}/elsewhere")
            doc["object"] = obj["id"]
        before = await _content(blog)
        r = await blog.send(alice, doc)
        if document == "object":
            assert (r.status, (await r.json())["outcome"]) == (202, "object unavailable")
        else:
            assert r.status == 401, await r.text()
        assert await _content(blog) == before
        assert ("GET", "/elsewhere") not in b.requests


# --- the signed Host ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ours-cavage", "pyhttpsig-cavage"])
@pytest.mark.parametrize("signed_for", ["https://other.example/inbox",
                                        "http://127.0.0.2:{port}/inbox"])
async def test_signature_made_for_another_host_is_refused(
        blog: Blog, remote: FakeInstance, name: str, signed_for: str) -> None:
    """Given a reply signed (draft-cavage, covering Host) for another server's inbox and
    sent to ours with that Host, then 401 before any key is fetched, nothing stored; the
    same reply signed for our inbox is accepted."""
    alice = remote.actor("alice")
    sign = SIGNERS[name]

    def signed_for_host(url: str) -> Signer:
        def signer(method: str, _url: str, headers: dict[str, str], body: bytes | None,
                   key_id: str, pem: str, now: datetime) -> dict[str, str]:
            return sign(method, url, headers, body, key_id, pem, now)
        return signer

    before = await stored_state(blog.rt)
    other = signed_for.format(port=blog.instance.server.port)
    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)),
                        signer=signed_for_host(other))
    assert r.status == 401
    assert "wrong_host" in (await r.json())["error"]
    assert (await stored_state(blog.rt), remote.requests) == (before, [])

    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)),
                        signer=signed_for_host(blog.shared_inbox))
    assert (r.status, (await r.json())["outcome"]) == (202, "created")


# --- special-use names ---------------------------------------------------------------------


@pytest.mark.parametrize("host", ["hiddenservice.onion", "eepsite.i2p", "gone.invalid"])
async def test_key_on_a_special_use_name_is_never_looked_up(
        make_instance: Any, remote: FakeInstance, host: str) -> None:
    """Given a signed reply whose keyId is on an .onion, .i2p or .invalid name, then 401
    and the name never reaches a resolver (development mode, where private addresses are
    allowed, included)."""
    names = LoopbackNames()
    blog = await start_blog_with_post(make_instance, resolver=names)
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id)),
                        key_id=f"http://{host}/users/alice#main-key")
    assert r.status == 401
    assert (names.asked, await stored_state(blog.rt)) == ([], before)


# --- inboxes on the actor's own host -------------------------------------------------------


async def test_follower_whose_inbox_is_on_another_host_gets_no_accept(
        blog: Blog, remote: FakeInstance) -> None:
    """Given an actor whose document puts its inbox and shared inbox on another server, when
    it follows the blog, then 400 (no usable inbox): no follower, no Accept queued, and the
    other server is never contacted."""
    victim = await start_peer("localhost")
    try:
        alice = remote.actor("alice")
        alice.extra = {"inbox": f"{victim.url}/users/v/inbox",
                       "endpoints": {"sharedInbox": f"{victim.url}/inbox"}}
        before = await _content(blog)
        r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor))
        assert r.status == 400, await r.text()
        assert (await _content(blog), victim.requests) == (before, [])
    finally:
        await victim.close()


async def test_shared_inbox_on_another_host_is_ignored(blog: Blog, remote: FakeInstance
                                                      ) -> None:
    """Given a follower whose own inbox is on its host but whose shared inbox is on another
    server, when it follows and a post is published, then the Accept and the Create go to
    its own inbox, and nothing is queued for, or sent to, the other server."""
    victim = await start_peer("localhost")
    try:
        alice = remote.actor("alice")
        alice.extra = {"endpoints": {"sharedInbox": f"{victim.url}/inbox"}}
        r = await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor))
        assert (r.status, (await r.json())["outcome"]) == (202, "follower added")
        await add_post_via_service(blog.rt, "https://blog.example/second/", "Second")
        await until(lambda: {a.json()["type"] for a in remote.received} >= {"Accept", "Create"})
        assert {a.path for a in remote.received} == {"/users/alice/inbox"}
        inboxes = await blog.rows("SELECT DISTINCT inbox FROM deliveries")
        assert inboxes == [(alice.inbox,)]
        assert victim.requests == []
    finally:
        await victim.close()


async def test_upgrade_forgets_inboxes_stored_on_another_host(tmp_path: Path,
                                                              monkeypatch: Any) -> None:
    """Given a database from before the rule, with actors whose inbox or shared inbox is on
    another host, when it is opened (migrated), then those are cleared and inboxes on the
    actor's own host (any case, any port) are kept."""
    step = next(i for i, s in enumerate(schema.MIGRATIONS) if _foreign_inbox("inbox") in s)
    path = str(tmp_path / "old.sqlite3")
    monkeypatch.setattr(dbmod, "MIGRATIONS", schema.MIGRATIONS[:step])
    db = Database(path)
    await db.open()
    rows = [("a", "a.example", "https://a.example/users/a/inbox", "https://b.example/inbox"),
            ("b", "a.example", "https://evil.example/inbox", "https://A.Example:8443/inbox"),
            ("c", "127.0.0.1", "http://127.0.0.1:9/users/c/inbox", "http://localhost:9/inbox")]
    async with db.transaction() as tx:
        for name, domain, inbox, shared in rows:
            await tx.execute(
                "INSERT INTO actors (ap_id, domain, inbox, shared_inbox, fetched_at) "
                "VALUES (?, ?, ?, ?, '2024-01-01')",
                (f"https://{domain}/users/{name}", domain, inbox, shared))
    await db.close()
    monkeypatch.setattr(dbmod, "MIGRATIONS", schema.MIGRATIONS)
    db = Database(path)
    await db.open()
    try:
        found = await db.read.fetchall("SELECT inbox, shared_inbox FROM actors ORDER BY id")
        assert [tuple(r) for r in found] == [
            ("https://a.example/users/a/inbox", None),
            (None, "https://A.Example:8443/inbox"),
            ("http://127.0.0.1:9/users/c/inbox", None)]
    finally:
        await db.close()
