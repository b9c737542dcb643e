"""Inbox activities other than replies: follows, reactions, undo, reports, actor updates and
deletes, unknown types (issue 3, points 10, 13-16)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from fedcomments.model import CommentStatus, Origin, Visibility
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store.comments import NewComment
from tests.helpers.fediverse import (
    SIGNERS,
    FakeInstance,
    Signer,
    activity,
    note,
)
from tests.helpers.inbox import Blog, outcome, stored_state


async def local_comment(blog: Blog, *, visibility: Visibility = Visibility.PUBLIC) -> str:
    """A reader's comment under the post, with its AP id on our server."""
    now = blog.rt.now()
    async with blog.rt.db.transaction() as tx:
        cid = await comment_store.insert(tx, NewComment(
            post_id=blog.post.id, parent_id=None, origin=Origin.LOCAL, visibility=visibility,
            status=CommentStatus.APPROVED, content="<p>local</p>", published_at=now,
            author_name="Reader"), now)
        await comment_store.set_ap_id(tx, cid, blog.rt.urls.comment(cid))
    return blog.rt.urls.comment(cid)


async def reactions(blog: Blog) -> list[tuple[Any, ...]]:
    return await blog.rows("SELECT a.ap_id, r.type, r.target_ap_id, r.comment_id IS NOT NULL "
                           "FROM reactions r JOIN actors a ON a.id = r.actor_id ORDER BY r.id")


# --- Follow / Undo{Follow} -----------------------------------------------------------------


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
async def test_follow_stores_follower_and_queues_accept(blog: Blog, remote: FakeInstance,
                                                        signer: Signer) -> None:
    """Given alice, when she follows the blog, then she is a follower and an Accept of her
    Follow, from the blog actor, is queued to her own inbox."""
    alice = remote.actor("alice")
    follow = activity(alice, "Follow", blog.rt.urls.actor)
    assert await outcome(await blog.send(alice, follow, signer=signer)) == "follower added"
    assert await blog.rows("SELECT a.ap_id, f.follow_id FROM followers f JOIN actors a "
                           "ON a.id = f.actor_id") == [(alice.id, follow["id"])]
    ((inbox, body),) = await blog.rows("SELECT inbox, body FROM deliveries")
    assert inbox == alice.inbox
    accept = json.loads(body)
    assert accept["type"] == "Accept" and accept["actor"] == blog.rt.urls.actor
    assert accept["to"] == [alice.id]
    assert accept["object"] == {"id": follow["id"], "type": "Follow", "actor": alice.id,
                                "object": blog.rt.urls.actor}


async def test_follow_of_someone_else_ignored(blog: Blog, remote: FakeInstance) -> None:
    """Given alice, when a Follow of another actor reaches our inbox, then nothing is stored
    and nothing is queued."""
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Follow", f"{remote.url}/users/bob"))
    assert await outcome(r) == "follow of someone else"
    assert await blog.rows("SELECT count(*) FROM followers") == [(0,)]
    assert await blog.rows("SELECT count(*) FROM deliveries") == [(0,)]


@pytest.mark.parametrize("form", ["embedded", "by-id"])
async def test_undo_follow(blog: Blog, remote: FakeInstance, form: str) -> None:
    """Given alice follows, when she sends Undo{Follow} (embedded, or only the Follow's id as
    Misskey does), then she is no longer a follower."""
    alice = remote.actor("alice")
    follow = activity(alice, "Follow", blog.rt.urls.actor)
    await outcome(await blog.send(alice, follow))
    undo = activity(alice, "Undo", follow if form == "embedded" else follow["id"])
    assert await outcome(await blog.send(alice, undo)) == "follower removed"
    assert await blog.rows("SELECT count(*) FROM followers") == [(0,)]


async def test_undo_of_a_follow_of_someone_else(blog: Blog, remote: FakeInstance) -> None:
    """Given alice follows the blog, when she undoes a Follow of someone else, then she stays
    a follower."""
    alice = remote.actor("alice")
    await outcome(await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor)))
    other = activity(alice, "Follow", f"{remote.url}/users/bob")
    await outcome(await blog.send(alice, activity(alice, "Undo", other)))
    assert await blog.rows("SELECT count(*) FROM followers") == [(1,)]


# --- Like / Announce / Undo ------------------------------------------------------------------


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
async def test_like_and_announce_of_post(blog: Blog, remote: FakeInstance,
                                         signer: Signer) -> None:
    """Given our post, when alice likes it twice (two activity ids) and boosts it, and bob
    likes it, then there are three reactions: once per actor and type."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    post = blog.post.ap_id
    for actor, kind in ((alice, "Like"), (alice, "Like"), (alice, "Announce"), (bob, "Like")):
        await outcome(await blog.send(actor, activity(actor, kind, post), signer=signer))
    assert await reactions(blog) == [(alice.id, "like", post, 0), (alice.id, "announce", post, 0),
                                     (bob.id, "like", post, 0)]


async def test_like_of_local_comment(blog: Blog, remote: FakeInstance) -> None:
    """Given a reader's comment of ours, when alice likes it, then the reaction is counted on
    that comment."""
    alice = remote.actor("alice")
    target = await local_comment(blog)
    assert await outcome(await blog.send(alice, activity(alice, "Like", target))) == \
        "reaction added"
    assert await reactions(blog) == [(alice.id, "like", target, 1)]


async def test_like_of_private_local_comment_not_counted(blog: Blog,
                                                         remote: FakeInstance) -> None:
    """Given a direct (owner-only) comment of ours, when alice likes it, it is not counted."""
    alice = remote.actor("alice")
    target = await local_comment(blog, visibility=Visibility.DIRECT)
    r = await blog.send(alice, activity(alice, "Like", target))
    assert await outcome(r) == "target not public"
    assert await reactions(blog) == []


async def test_reactions_to_remote_objects_not_counted(blog: Blog, remote: FakeInstance) -> None:
    """Given bob's reply in our thread, when alice likes or boosts it, or likes a note we do
    not know, then nothing is counted and nothing stored: only our objects count."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    reply = note(bob, blog.post.ap_id)
    await outcome(await blog.send(bob, activity(bob, "Create", reply)))
    before = await stored_state(blog.rt)
    for doc in (activity(alice, "Like", reply["id"]), activity(alice, "Announce", reply),
                activity(alice, "Like", f"{remote.url}/objects/999")):
        assert await outcome(await blog.send(alice, doc)) == "not ours"
    after = await stored_state(blog.rt)
    assert after["reactions"] == [] and after["processed_activities"] == \
        before["processed_activities"]


@pytest.mark.parametrize("kind", ["Like", "Announce"])
@pytest.mark.parametrize("form", ["embedded", "by-id"])
async def test_undo_reaction(blog: Blog, remote: FakeInstance, kind: str, form: str) -> None:
    """Given alice's Like/Announce of our post, when she undoes it (embedded, or Mastodon's
    compact form with only the id), then the reaction is gone; bob's stays."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    mine = activity(alice, kind, blog.post.ap_id)
    await outcome(await blog.send(alice, mine))
    await outcome(await blog.send(bob, activity(bob, kind, blog.post.ap_id)))
    undo = activity(alice, "Undo", mine if form == "embedded" else mine["id"])
    assert await outcome(await blog.send(alice, undo)) == "reaction removed"
    assert await reactions(blog) == [(bob.id, kind.lower(), blog.post.ap_id, 0)]


async def test_undo_of_someone_elses_like(blog: Blog, remote: FakeInstance) -> None:
    """Given bob's Like, when alice sends an Undo embedding bob's Like, nothing changes."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    like = activity(bob, "Like", blog.post.ap_id)
    await outcome(await blog.send(bob, like))
    await outcome(await blog.send(alice, activity(alice, "Undo", like)))
    r = await blog.send(alice, activity(alice, "Undo", like["id"]))
    assert await outcome(r) == "nothing to undo"
    assert len(await reactions(blog)) == 1


# --- Flag, unknown types ----------------------------------------------------------------------


async def test_flag_stored_as_report(blog: Blog, remote: FakeInstance) -> None:
    """Given a moderator on another server, when it sends a Flag naming our post with a
    comment, then a report with the comment (plain text) and the object ids is stored."""
    mod = remote.actor("mod")
    flag = activity(mod, "Flag", [blog.rt.urls.actor, blog.post.ap_id],
                    content="<b>Spam</b> here")
    assert await outcome(await blog.send(mod, flag)) == "report stored"
    ((ap_id, actor, text, objects),) = await blog.rows(
        "SELECT r.ap_id, a.ap_id, r.content, r.object_ids FROM reports r "
        "JOIN actors a ON a.id = r.actor_id")
    assert (ap_id, actor, text) == (flag["id"], mod.id, "Spam here")
    assert json.loads(objects) == [blog.rt.urls.actor, blog.post.ap_id]


@pytest.mark.parametrize("kind", ["Bite", "QuoteRequest", "EmojiReaction", "ChatMessage",
                                  "Move", "Accept", "Read", "EmojiReact"])
async def test_unknown_or_unhandled_type_acknowledged(blog: Blog, remote: FakeInstance,
                                                      kind: str) -> None:
    """Given a signed activity of a type we do not handle (unknown to the parser, or known
    but unhandled), when it arrives, then 202 and nothing stored, not even the sender."""
    alice = remote.actor("alice")
    before = await stored_state(blog.rt)
    r = await blog.send(alice, activity(alice, kind, blog.post.ap_id))
    assert await outcome(r) == "ignored type"
    assert await stored_state(blog.rt) == before
    assert remote.hits == ["/users/alice"]


async def test_mastodon_quote_request_acknowledged(blog: Blog, remote: FakeInstance) -> None:
    """Given Mastodon's QuoteRequest for our post (FEP-044f context, the quoting note
    embedded as instrument), when it arrives, then 202 "ignored type" naming it, with one
    key fetch and nothing stored."""
    alice = remote.actor("alice")
    quote = note(alice, None, extra={"quote": blog.post.ap_id})
    request = activity(alice, "QuoteRequest", blog.post.ap_id, instrument=quote)
    request["@context"] = [*request["@context"], {
        "QuoteRequest": "https://w3id.org/fep/044f#QuoteRequest",
        "quote": {"@id": "https://w3id.org/fep/044f#quote", "@type": "@id"}}]
    before = await stored_state(blog.rt)
    r = await blog.send(alice, request)
    assert r.status == 202
    assert await r.json() == {"id": request["id"], "outcome": "ignored type"}
    assert await stored_state(blog.rt) == before
    assert remote.hits == ["/users/alice"]


async def test_unknown_type_still_needs_a_valid_signature(blog: Blog,
                                                          remote: FakeInstance) -> None:
    """Given an activity of an unknown type signed with the wrong key, then 401."""
    alice = remote.actor("alice")
    r = await blog.send(alice, activity(alice, "Bite", blog.post.ap_id),
                        private_pem=remote.actor("mallory").keypair.private_pem)
    assert r.status == 401


async def test_unknown_type_signed_by_someone_else_is_refused(blog: Blog,
                                                              remote: FakeInstance) -> None:
    """Given a Bite claiming alice as actor but signed (validly) with bob's key, when it
    arrives, then 401: the key's owner must be the actor whatever the type."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    before = await stored_state(blog.rt)
    r = await blog.send(bob, activity(alice, "Bite", blog.post.ap_id))
    assert r.status == 401
    assert "not to actor" in (await r.json())["error"]
    assert await stored_state(blog.rt) == before


@pytest.mark.parametrize("missing", ["id", "actor"])
async def test_unknown_type_without_id_or_actor_is_malformed(blog: Blog, remote: FakeInstance,
                                                             missing: str) -> None:
    """Given a signed QuoteRequest lacking its id or actor, when it arrives, then 400 before
    any key fetch, and nothing stored."""
    alice = remote.actor("alice")
    doc = activity(alice, "QuoteRequest", blog.post.ap_id)
    del doc[missing]
    before = await stored_state(blog.rt)
    r = await blog.send(alice, doc)
    assert r.status == 400
    assert f"{missing} is missing" in (await r.json())["error"]
    assert await stored_state(blog.rt) == before
    assert remote.hits == []


# --- Update{Person}, Delete{actor} -------------------------------------------------------------


async def test_update_person_refetches_from_origin(blog: Blog, remote: FakeInstance) -> None:
    """Given a known alice, when she sends Update{Person} carrying a new name and a new key,
    then the actor is fetched again from her server and what it serves is stored: the key
    in the pushed body is ignored."""
    alice = remote.actor("alice")
    await outcome(await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor)))
    alice.name = "Alice Origin"
    pushed = {**alice.document(), "name": "Alice Pushed",
              "publicKey": {"id": alice.key_id, "owner": alice.id,
                            "publicKeyPem": remote.actor("mallory").keypair.public_pem}}
    blog.instance.clock.advance(minutes=5)  # past the Update{Person} rate limit
    r = await blog.send(alice, activity(alice, "Update", pushed), now=blog.instance.clock())
    assert await outcome(r) == "actor refreshed"
    assert remote.count("/users/alice") == 2
    assert await blog.rows("SELECT name FROM actors") == [("Alice Origin",)]
    assert await blog.rows("SELECT pem FROM actor_keys") == [(alice.keypair.public_pem.strip(),)]


async def test_update_person_refetch_is_rate_limited(blog: Blog, remote: FakeInstance) -> None:
    """Given alice, fetched when she followed, when she floods Update{Person}, then her
    actor is refetched at most once per 5 minutes (counting the fetch that verified her
    first request), per actor, and a failed refetch is not retried before 5 minutes."""
    clock = blog.instance.clock
    alice, bob = remote.actor("alice"), remote.actor("bob")

    async def update(who: Any) -> str:
        return await outcome(await blog.send(who, activity(who, "Update", who.document()),
                                             now=clock()))

    await outcome(await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor),
                                  now=clock()))
    assert await update(alice) == "actor fetched recently"
    clock.advance(minutes=5)
    alice.name = "Alice Renamed"
    assert [await update(alice) for _ in range(3)] == [
        "actor refreshed", "actor fetched recently", "actor fetched recently"]
    assert remote.count("/users/alice") == 2
    assert await blog.rows("SELECT name FROM actors WHERE ap_id = ?", alice.id) == \
        [("Alice Renamed",)]
    clock.advance(minutes=4, seconds=59)
    assert await update(alice) == "actor fetched recently"
    clock.advance(seconds=1)
    assert await update(alice) == "actor refreshed"
    assert remote.count("/users/alice") == 3
    # Per actor: bob, first seen now, is fetched for his key; his update waits its turn.
    assert await update(bob) == "actor fetched recently"
    assert remote.count("/users/bob") == 1
    # A failing origin is asked once, then left alone for the interval.
    remote.gone.add("/users/alice")
    clock.advance(minutes=5)
    first = await update(alice)
    assert first.startswith("actor not refreshed (") and "410" in first
    assert await update(alice) == "actor fetched recently"
    assert remote.count("/users/alice") == 4


async def test_rotated_out_key_is_forgotten(blog: Blog, remote: FakeInstance) -> None:
    """Given alice's cached key, when she moves to a new key under a new id and sends
    Update{Person} with it, then only the new key is kept and the old one no longer
    verifies anything."""
    alice = remote.actor("alice")
    await outcome(await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor)))
    old_key, old_pem = alice.key_id, alice.keypair.private_pem
    alice.rotate()
    alice.key_style = "gotosocial"
    r = await blog.send(alice, activity(alice, "Update", alice.document()))
    # The unknown new key was fetched with her document just now: that is the refresh.
    assert await outcome(r) == "actor fetched recently"
    assert remote.hits == ["/users/alice", "/users/alice/main-key", "/users/alice"]
    assert await blog.rows("SELECT key_id FROM actor_keys") == [(alice.key_id,)]
    r = await blog.send(alice, activity(alice, "Like", blog.post.ap_id), key_id=old_key,
                        private_pem=old_pem)
    assert r.status == 401
    assert await reactions(blog) == []


async def test_delete_actor_removes_everything_of_theirs(blog: Blog,
                                                         remote: FakeInstance) -> None:
    """Given alice follows, liked the post and wrote two replies (bob answered one), when
    her Delete{actor} arrives, then her follow, reaction and replies are gone, except a
    tombstone holding bob's answer in place."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    await outcome(await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor)))
    await outcome(await blog.send(alice, activity(alice, "Like", blog.post.ap_id)))
    first, second = note(alice, blog.post.ap_id), note(alice, blog.post.ap_id)
    await outcome(await blog.send(alice, activity(alice, "Create", first)))
    await outcome(await blog.send(alice, activity(alice, "Create", second)))
    answer = note(bob, first["id"])
    await outcome(await blog.send(bob, activity(bob, "Create", answer)))
    delete = activity(alice, "Delete", alice.id, id=f"{alice.id}#delete")
    assert await outcome(await blog.send(alice, delete)) == "actor deleted (2 comments removed)"
    assert [(c["ap_id"], c["status"], c["content"], c["parent_ap_id"])
            for c in await blog.comments()] == [
        (first["id"], "deleted", "", None), (answer["id"], "approved", "<p>Nice post!</p>",
                                             first["id"])]
    assert await blog.rows("SELECT count(*) FROM followers") == [(0,)]
    assert await reactions(blog) == []
    assert await blog.rows("SELECT count(*) FROM actor_keys a JOIN actors b ON b.id = a.actor_id"
                           " WHERE b.ap_id = ?", alice.id) == [(0,)]


async def test_deleted_actor_key_is_not_served_from_memory(blog: Blog,
                                                          remote: FakeInstance) -> None:
    """Given alice's key was used (and so held in memory), when her Delete{actor} arrives
    and her account is gone at its origin, then a later request signed with that key is
    refused 401, not verified from the in-memory copy."""
    alice = remote.actor("alice")
    await outcome(await blog.send(alice, activity(alice, "Like", blog.post.ap_id)))
    assert blog.rt.key_cache.get(alice.key_id, blog.rt.now(),
                                 blog.rt.db.version(actor_store.ACTORS)) is not None
    await outcome(await blog.send(alice, activity(alice, "Delete", alice.id,
                                                  id=f"{alice.id}#delete")))
    remote.gone.add("/users/alice")
    r = await blog.send(alice, activity(alice, "Announce", blog.post.ap_id))
    assert r.status == 401, await r.text()
    assert await reactions(blog) == []


async def test_inbox_request_logs_one_line_with_its_activity(
        blog: Blog, remote: FakeInstance, caplog: pytest.LogCaptureFixture) -> None:
    """Given a reply, when it is delivered, then the request's single log line names the
    activity, its type, actor and outcome beside the status."""
    alice = remote.actor("alice")
    create = activity(alice, "Create", note(alice, blog.post.ap_id))
    with caplog.at_level(logging.INFO, logger="fedcomments"):
        await outcome(await blog.send(alice, create))
    lines = [r for r in caplog.records if r.name.startswith("fedcomments")
             and getattr(r, "path", None) == "/inbox"]
    assert [(r.getMessage(), r.status, r.activity, r.type, r.actor, r.outcome)  # type: ignore[attr-defined]
            for r in lines] == [("request", 202, create["id"], "Create", alice.id, "created")]
