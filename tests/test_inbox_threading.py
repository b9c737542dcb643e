"""Replies become threaded comments: direct replies, replies to replies, fetched ancestor
chains, edits, deletes, idempotency and content handling (issue 3, points 11, 13, 14, 16, 17)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fedcomments.services import posts as posts_service
from tests.conftest import InstanceFactory
from tests.helpers.fediverse import (
    SIGNERS,
    FakeActor,
    FakeInstance,
    Signer,
    activity,
    note,
    running,
)
from tests.helpers.inbox import Blog, block_domain, outcome, start_blog_with_post, stored_state


@pytest.fixture
def remote(remotes: list[FakeInstance]) -> FakeInstance:
    return remotes[0]


async def thread(blog: Blog) -> list[tuple[str, str | None, str]]:
    """(ap_id, parent ap_id, author) of every comment, oldest first."""
    return [(c["ap_id"], c["parent_ap_id"], c["author"]) for c in await blog.comments()]


def chain(actors: list[FakeActor], root: str, *, publish: bool = True) -> list[dict[str, Any]]:
    """Notes each replying to the previous one, the first replying to `root`; published."""
    notes: list[dict[str, Any]] = []
    parent = root
    for actor in actors:
        n = note(actor, parent)
        if publish:
            actor.instance.publish(n)
        notes.append(n)
        parent = n["id"]
    return notes


# --- direct replies ----------------------------------------------------------------------------


@pytest.mark.parametrize("signer", SIGNERS.values(), ids=SIGNERS.keys())
async def test_reply_and_reply_to_reply(blog: Blog, remote: FakeInstance, signer: Signer) -> None:
    """Given our post, when alice replies to it and bob replies to alice, then two comments
    thread under the post: alice's at the top, bob's under hers."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    first = note(alice, blog.post.ap_id)
    second = note(bob, first["id"])
    assert await outcome(await blog.send(alice, activity(alice, "Create", first),
                                         signer=signer)) == "created"
    assert await outcome(await blog.send(bob, activity(bob, "Create", second),
                                         signer=signer)) == "created"
    assert await thread(blog) == [(first["id"], None, alice.id), (second["id"], first["id"],
                                                                  bob.id)]
    assert {c["post_id"] for c in await blog.comments()} == {blog.post.id}


@pytest.mark.parametrize("kind", ["Article", "Page", "Question"])
async def test_note_like_types(blog: Blog, remote: FakeInstance, kind: str) -> None:
    """Given an Article, Page or Question replying to our post, then it becomes a comment."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id, extra={"type": kind})
    assert await outcome(await blog.send(alice, activity(alice, "Create", reply))) == "created"
    assert len(await blog.comments()) == 1


async def test_other_object_types_ignored(blog: Blog, remote: FakeInstance) -> None:
    """Given a Video replying to our post, when it arrives, then nothing is stored."""
    alice = remote.actor("alice")
    video = note(alice, blog.post.ap_id, extra={"type": "Video"})
    assert await outcome(await blog.send(alice, activity(alice, "Create", video))) == "not a note"
    assert await blog.comments() == []


async def test_object_by_reference_fetched_from_origin(blog: Blog, remote: FakeInstance) -> None:
    """Given a Create carrying only its object's id, when it arrives, then the note is
    fetched from the actor's server and imported."""
    alice = remote.actor("alice")
    reply = remote.publish(note(alice, blog.post.ap_id))
    r = await blog.send(alice, activity(alice, "Create", reply["id"]))
    assert await outcome(r) == "created"
    assert await thread(blog) == [(reply["id"], None, alice.id)]


@pytest.mark.parametrize("case", ["no-reply", "mention-only", "reply-elsewhere"])
async def test_unsolicited_notes_never_become_comments(blog: Blog, remote: FakeInstance,
                                                       case: str) -> None:
    """Given notes that do not answer our threads (a plain post, a post mentioning the blog,
    a reply to an unrelated note that cannot be linked to us), then nothing is stored."""
    alice = remote.actor("alice")
    unrelated = remote.publish(note(alice, None))
    doc = {
        "no-reply": note(alice, None),
        "mention-only": note(alice, None, mention=blog.rt.urls.actor, visibility="direct"),
        "reply-elsewhere": note(alice, unrelated["id"]),
    }[case]
    await outcome(await blog.send(alice, activity(alice, "Create", doc)))
    after = await stored_state(blog.rt)
    assert after["comments"] == [] and after["processed_activities"] == []
    assert await blog.rows("SELECT ap_id FROM actors") == [(alice.id,)]


# --- ancestors ----------------------------------------------------------------------------------


async def test_ancestor_chain_fetched_across_servers(blog: Blog,
                                                     remotes: list[FakeInstance]) -> None:
    """Given carol (server A) replied to our post and bob (server B) to carol, none of which
    reached us, when alice (A) replies to bob, then bob's and carol's notes are fetched from
    their own servers and the three comments thread correctly."""
    a, b = remotes
    alice, carol, bob = a.actor("alice"), a.actor("carol"), b.actor("bob")
    c_note, b_note = chain([carol, bob], blog.post.ap_id)
    reply = note(alice, b_note["id"])
    assert await outcome(await blog.send(alice, activity(alice, "Create", reply))) == "created"
    assert await thread(blog) == [
        (c_note["id"], None, carol.id), (b_note["id"], c_note["id"], bob.id),
        (reply["id"], b_note["id"], alice.id)]
    assert b.hits == [b_note["id"].removeprefix(b.url), "/users/bob"]
    assert a.hits == ["/users/alice", c_note["id"].removeprefix(a.url), "/users/carol"]


async def test_ancestor_chain_into_known_comment(blog: Blog, remote: FakeInstance) -> None:
    """Given alice's comment we know, when dave replies to a note of bob's we missed (which
    answers alice), then bob's note is fetched and threads under alice's comment."""
    alice, bob, dave = remote.actor("alice"), remote.actor("bob"), remote.actor("dave")
    first = note(alice, blog.post.ap_id)
    await outcome(await blog.send(alice, activity(alice, "Create", first)))
    (missed,) = chain([bob], first["id"])
    reply = note(dave, missed["id"])
    await outcome(await blog.send(dave, activity(dave, "Create", reply)))
    assert await thread(blog) == [(first["id"], None, alice.id), (missed["id"], first["id"],
                                                                  bob.id),
                                  (reply["id"], missed["id"], dave.id)]


async def test_ancestor_depth_limit(blog: Blog, remote: FakeInstance) -> None:
    """Given a chain of 17 unknown notes above a reply (our post at the top), when the reply
    arrives, then at most 16 ancestors are fetched and nothing is stored; a chain of 16 is
    imported whole."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    long_chain = chain([bob] * 17, blog.post.ap_id)
    reply = note(alice, long_chain[-1]["id"])
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    assert await blog.comments() == []
    assert sum(h.startswith("/objects/") for h in remote.hits) == 16
    ok_chain = chain([bob] * 16, blog.post.ap_id)
    reply = note(alice, ok_chain[-1]["id"])
    assert await outcome(await blog.send(alice, activity(alice, "Create", reply))) == "created"
    assert len(await blog.comments()) == 17


async def test_ancestor_fetch_budget(blog: Blog, remote: FakeInstance) -> None:
    """Given a chain of 15 unknown notes each by a different unknown author, when a reply to
    its end arrives, then at most 24 requests are spent walking it and nothing is stored."""
    alice = remote.actor("alice")
    authors = [remote.actor(f"u{i}") for i in range(15)]
    notes = chain(authors, blog.post.ap_id)
    await outcome(await blog.send(alice, activity(alice, "Create", note(alice, notes[-1]["id"]))))
    assert await blog.comments() == []
    assert len(remote.hits) == 1 + 24  # alice's key, then the budget
    assert await blog.rows("SELECT ap_id FROM actors") == [(alice.id,)]


@pytest.mark.parametrize("lie", ["other-id", "foreign-author", "not-a-note", "gone"])
async def test_bad_ancestor_stops_the_walk(blog: Blog, remotes: list[FakeInstance],
                                           lie: str) -> None:
    """Given a missing parent that is served with another id, attributed to an actor on
    another server, is not a note, or is gone, when a reply to it arrives, then nothing is
    stored and nothing above it is fetched."""
    remote, other = remotes
    alice, bob = remote.actor("alice"), remote.actor("bob")
    grand, parent = chain([bob, bob], blog.post.ap_id)
    path = parent["id"].removeprefix(remote.url)
    if lie == "other-id":
        remote.objects[parent["id"]] = {**parent, "id": f"{remote.url}/objects/elsewhere"}
    elif lie == "foreign-author":
        remote.objects[parent["id"]] = {**parent, "attributedTo": f"{other.url}/users/bob"}
    elif lie == "not-a-note":
        remote.objects[parent["id"]] = {**parent, "type": "Person"}
    else:
        remote.gone.add(path)
    await outcome(await blog.send(alice, activity(alice, "Create", note(alice, parent["id"]))))
    assert await blog.comments() == []
    assert grand["id"].removeprefix(remote.url) not in remote.hits
    assert other.hits == []


@pytest.mark.parametrize("blocked", [False, True])
async def test_ancestor_on_blocked_domain_not_fetched(blog: Blog, remote: FakeInstance,
                                                      blocked: bool) -> None:
    """Given a missing parent on another server (reachable as localhost), when a reply to it
    arrives, then the parent is fetched and imported, unless that domain is blocked: then
    nothing is stored and the blocked server is never asked."""
    alice = remote.actor("alice")
    async with running(host="localhost") as (elsewhere,):
        (parent,) = chain([elsewhere.actor("bob")], blog.post.ap_id)
        if blocked:
            await block_domain(blog.rt, "localhost")
        reply = note(alice, parent["id"])
        await outcome(await blog.send(alice, activity(alice, "Create", reply)))
        if blocked:
            assert await blog.comments() == []
            assert elsewhere.requests == []
        else:
            assert await thread(blog) == [(parent["id"], None, f"{elsewhere.url}/users/bob"),
                                          (reply["id"], parent["id"], alice.id)]


# --- edits -------------------------------------------------------------------------------------


async def test_update_edits_comment(blog: Blog, remote: FakeInstance) -> None:
    """Given alice's comment, when she edits it (new text, a content warning), then content,
    summary, sensitive and updated time change and the published time stays."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id, content="<p>v1</p>")
    reply["published"] = "2026-01-01T10:00:00Z"
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    edited = {**reply, "content": "<p>v2</p>", "summary": "spoilers", "sensitive": True,
              "updated": "2026-01-01T11:00:00Z", "published": "2025-01-01T00:00:00Z"}
    assert await outcome(await blog.send(alice, activity(alice, "Update", edited))) == "edited"
    (c,) = await blog.comments()
    assert (c["content"], c["summary"], c["sensitive"]) == ("<p>v2</p>", "spoilers", 1)
    assert c["published_at"].startswith("2026-01-01T10:00:00")
    assert c["updated_at"].startswith("2026-01-01T11:00:00")


async def test_out_of_order_updates(blog: Blog, remote: FakeInstance) -> None:
    """Given alice edits twice, when the newer Update arrives before the older one, then the
    older one is ignored."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id, content="<p>v1</p>")
    reply["published"] = "2026-01-01T10:00:00Z"
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    v2 = {**reply, "content": "<p>v2</p>", "updated": "2026-01-01T11:00:00Z"}
    v3 = {**reply, "content": "<p>v3</p>", "updated": "2026-01-01T12:00:00Z"}
    await outcome(await blog.send(alice, activity(alice, "Update", v3)))
    assert await outcome(await blog.send(alice, activity(alice, "Update", v2))) == "stale update"
    assert [c["content"] for c in await blog.comments()] == ["<p>v3</p>"]


# --- deletes -----------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["id", "tombstone"])
async def test_delete_without_replies_removes(blog: Blog, remote: FakeInstance, form: str) -> None:
    """Given alice's comment without replies, when she deletes it (by id or Tombstone), then
    it is gone, and a later Create of the same note does not bring it back."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id)
    create = activity(alice, "Create", reply)
    await outcome(await blog.send(alice, create))
    obj = reply["id"] if form == "id" else {"id": reply["id"], "type": "Tombstone"}
    assert await outcome(await blog.send(alice, activity(alice, "Delete", obj))) == "deleted"
    assert await blog.comments() == []
    again = activity(alice, "Create", reply)
    assert await outcome(await blog.send(alice, again)) == "deleted before"
    assert await blog.comments() == []


async def test_delete_with_replies_keeps_tombstone(blog: Blog, remote: FakeInstance) -> None:
    """Given alice's comment with bob's reply below, when alice deletes hers, then it stays as
    an empty 'deleted' placeholder holding bob's reply; when bob deletes his, both go."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    first = note(alice, blog.post.ap_id, summary="cw")
    second = note(bob, first["id"])
    await outcome(await blog.send(alice, activity(alice, "Create", first)))
    await outcome(await blog.send(bob, activity(bob, "Create", second)))
    assert await outcome(await blog.send(alice, activity(alice, "Delete", first["id"]))) == \
        "tombstoned"
    assert [(c["ap_id"], c["status"], c["content"], c["summary"], c["parent_ap_id"])
            for c in await blog.comments()] == [
        (first["id"], "deleted", "", None, None),
        (second["id"], "approved", "<p>Nice post!</p>", None, first["id"])]
    await outcome(await blog.send(bob, activity(bob, "Delete", second["id"])))
    assert await blog.comments() == []


async def test_delete_before_create(blog: Blog, remote: FakeInstance) -> None:
    """Given a Delete of alice's note that overtook its Create, when the Create arrives,
    then no comment appears."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id)
    assert await outcome(await blog.send(alice, activity(alice, "Delete", reply["id"]))) == \
        "unknown object"
    assert await outcome(await blog.send(alice, activity(alice, "Create", reply))) == \
        "deleted before"
    assert await blog.comments() == []


async def test_concurrent_create_and_delete_end_deleted(blog: Blog, remote: FakeInstance) -> None:
    """Given a reply whose missing parent is being fetched, when the reply's Delete arrives
    during that fetch, then once the fetch completes the reply is not stored (deleted wins)."""
    alice, bob = remote.actor("alice"), remote.actor("bob")
    await outcome(await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor)))
    (parent,) = chain([bob], blog.post.ap_id)
    gate = remote.gate(parent["id"].removeprefix(remote.url))
    reply = note(alice, parent["id"])
    creating = asyncio.create_task(blog.send(alice, activity(alice, "Create", reply)))
    await asyncio.wait_for(gate.arrived.wait(), 10)
    r = await blog.send(alice, activity(alice, "Delete", reply["id"]))
    assert await outcome(r) == "unknown object"
    gate.release.set()
    assert await outcome(await asyncio.wait_for(creating, 10)) == "deleted before"
    assert await blog.comments() == []


async def test_same_object_never_two_comments(blog: Blog, remote: FakeInstance) -> None:
    """Given alice's note, when it arrives in three Creates with different activity ids,
    two of them at the same time, then there is exactly one comment."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id)
    await outcome(await blog.send(alice, activity(alice, "Follow", blog.rt.urls.actor)))
    results = await asyncio.gather(*(blog.send(alice, activity(alice, "Create", reply))
                                     for _ in range(2)))
    assert sorted([await outcome(r) for r in results]) == ["already known", "created"]
    assert await outcome(await blog.send(alice, activity(alice, "Create", reply))) == \
        "already known"
    assert await thread(blog) == [(reply["id"], None, alice.id)]


# --- content -------------------------------------------------------------------------------------


async def test_content_sanitised_and_kept(blog: Blog, remote: FakeInstance) -> None:
    """Given a reply with script, a javascript: link, a mention, a hashtag, a CW, a language
    and an image with alt text, when it arrives, then the HTML is reduced to the allowlist,
    links get rel=nofollow, the CW, language, mention and attachment (a link, never
    downloaded) are kept, and the author's name is plain text."""
    alice = remote.actor("alice")
    alice.name = "<b>Alice</b> <script>x</script>"
    html = ('<p>Hi <span class="h-card"><a href="https://blog.example/@blog" class="u-url '
            'mention">@<span>blog</span></a></span> <a href="javascript:alert(1)">click</a>'
            '<script>alert(1)</script> <a href="https://t.example/tags/x" class="mention '
            'hashtag" rel="tag">#<span>x</span></a></p>')
    reply = note(alice, blog.post.ap_id, content=html, summary="<b>food</b>",
                 mention=blog.rt.urls.actor, extra={
                     "contentMap": {"de": html},
                     "attachment": [{"type": "Document", "mediaType": "image/png",
                                     "url": f"{remote.url}/media/1.png",
                                     "name": "a <i>cat</i>"}]})
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    (c,) = await blog.comments()
    assert "<script" not in c["content"] and "javascript:" not in c["content"]
    assert "click" in c["content"]
    assert 'rel="nofollow noopener noreferrer"' in c["content"]
    assert 'class="mention hashtag"' in c["content"] and "#<span>x</span>" in c["content"]
    assert (c["summary"], c["sensitive"], c["language"]) == ("food", 1, "de")
    assert c["mentions"] == f'["{blog.rt.urls.actor}"]'
    assert c["attachments"] == (f'[{{"url":"{remote.url}/media/1.png",'
                                '"media_type":"image/png","name":"a cat"}]')
    assert "/media/1.png" not in remote.hits
    assert await blog.rows("SELECT name FROM actors") == [("Alice",)]


async def test_long_content_capped(blog: Blog, remote: FakeInstance) -> None:
    """Given a reply of 200,000 characters, when it arrives, then at most 50,000 are kept."""
    alice = remote.actor("alice")
    reply = note(alice, blog.post.ap_id, content="<p>" + "ab " * 66_000 + "</p>")
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    (c,) = await blog.comments()
    assert 10_000 < len(c["content"]) <= 50_000


@pytest.mark.parametrize(("policy", "status"), [("none", "approved"), ("first-time", "pending"),
                                                ("all", "pending")])
async def test_moderation_policy(make_instance: InstanceFactory, remote: FakeInstance,
                                 policy: str, status: str) -> None:
    """Given a moderation policy, when a first-time commenter replies, then the comment's
    status follows it."""
    blog = await start_blog_with_post(make_instance, moderation={"policy": policy})
    alice = remote.actor("alice")
    await outcome(await blog.send(alice, activity(alice, "Create", note(alice, blog.post.ap_id))))
    assert [c["status"] for c in await blog.comments()] == [status]


async def test_reply_to_deleted_post_ignored(blog: Blog, remote: FakeInstance) -> None:
    """Given a post that was deleted, when a reply to it arrives, then nothing is stored."""
    alice = remote.actor("alice")
    await posts_service.delete_post(blog.rt, blog.post.slug)
    reply = note(alice, blog.post.ap_id)
    await outcome(await blog.send(alice, activity(alice, "Create", reply)))
    assert await blog.comments() == []
