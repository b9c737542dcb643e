"""The owner's answers and federated reader comments: what peers receive, how it is
addressed, and how our Notes and replies collections are served."""

from __future__ import annotations

from typing import Any

import pytest

from fedcomments.errors import Gone, InvalidInput, NotFound
from fedcomments.model import CommentStatus, Origin, Visibility
from fedcomments.services import replies
from fedcomments.store import comments as comment_store
from fedcomments.store.comments import NewComment
from tests.conftest import Instance
from tests.helpers.blogkit import (
    deliveries,
    followed,
    reply_from,
    start_blog_without_worker,
    worker,
)
from tests.helpers.peers import PUBLIC, peers
from tests.helpers.posts import add_post_via_api


async def _as2(fc: Instance, path: str) -> tuple[int, dict[str, Any]]:
    resp = await fc.get(path)
    return resp.status, await resp.json(content_type=None)


async def test_owner_reply_reaches_replier_and_followers(make_instance: Any) -> None:
    """Given a follower's public reply, when the owner answers it, then a Note arrives at
    the replier's server and every follower server, once each, with inReplyTo, a Mention
    of the replier, to = replier, cc = Public + followers, and a verified signature."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3", "127.0.0.4") as [one, two, three]:
        alice = one.actor("alice")
        await followed(fc, (one, alice), (three, three.actor("carol")))
        post = await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        for peer in (one, three):
            peer.arrivals.clear()
        comment_id, note = await reply_from(fc, one, alice, post["ap_id"])
        answer = await replies.owner_reply(fc.rt, comment_id, "Thanks!\n\nMore: https://x.example/m")
        assert (answer.origin, answer.visibility, answer.parent_id) == (
            Origin.OWNER, Visibility.UNLISTED, comment_id)
        await w.run_until_idle()
        assert two.arrivals == []
        for peer in (one, three):
            [arrival] = peer.arrivals
            assert (arrival.path, arrival.verified, arrival.answered) == ("/inbox", True, 202)
            create = arrival.json()
            assert create["type"] == "Create" and create["actor"] == fc.rt.urls.actor
            reply = create["object"]
            assert reply["id"] == fc.rt.urls.comment(answer.id) == answer.ap_id
            assert (reply["type"], reply["attributedTo"]) == ("Note", fc.rt.urls.actor)
            assert reply["inReplyTo"] == note["id"]
            assert reply["context"] == fc.rt.urls.post_context("hello")
            assert reply["tag"] == [{"type": "Mention", "href": alice.id,
                                     "name": "@alice@127.0.0.2"}]
            assert reply["to"] == [alice.id]
            assert reply["cc"] == [PUBLIC, fc.rt.urls.followers]
            assert f'href="{one.url}/@alice" class="u-url mention">@<span>alice</span>' in (
                reply["content"])
            assert "Thanks!" in reply["content"]
            assert '<a href="https://x.example/m"' in reply["content"]
        status, served = await _as2(fc, f"/comments/{answer.id}")
        assert status == 200
        assert (served["id"], served["inReplyTo"], served["to"]) == (
            answer.ap_id, note["id"], [alice.id])
        assert served["replies"]["totalItems"] == 0
        status, listing = await _as2(fc, "/posts/hello/replies")
        assert (status, listing["totalItems"], listing["first"]["orderedItems"]) == (
            200, 1, [note["id"]])


async def test_answer_reaches_thread_branch(make_instance: Any) -> None:
    """Given alice's reply and bob's answer to it, when the owner answers bob, then bob's
    server and alice's server (a participant up the branch) both receive it; bob is in
    `to`, both are mentioned."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [one, two]:
        alice, bob = one.actor("alice"), two.actor("bob")
        post = await add_post_via_api(fc, "hello")
        first_id, first = await reply_from(fc, one, alice, post["ap_id"])
        second_id, _ = await reply_from(fc, two, bob, first["id"])
        answer = await replies.owner_reply(fc.rt, second_id, "Both of you, thanks.")
        await worker(fc).run_until_idle()
        for peer in (one, two):
            [arrival] = peer.arrivals
            note = arrival.json()["object"]
            assert arrival.verified and note["id"] == answer.ap_id
            assert note["to"] == [bob.id]
            assert note["cc"] == [PUBLIC, fc.rt.urls.followers, alice.id]
            assert [t["href"] for t in note["tag"]] == [bob.id, alice.id]
        row = await fc.rt.db.read.fetchone("SELECT parent_id FROM comments WHERE id = ?",
                                           (second_id,))
        assert row[0] == first_id


async def test_private_reply_answered_privately(make_instance: Any) -> None:
    """Given a direct reply to the blog, when the owner answers, then only the replier's
    server receives it, addressed to the replier alone (no Public, no followers), and the
    answer is not served publicly."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [one, other]:
        alice = one.actor("alice")
        await followed(fc, (other, other.actor("carol")))
        post = await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        other.arrivals.clear()
        comment_id, note = await reply_from(
            fc, one, alice, post["ap_id"], to=[fc.rt.urls.actor], cc=[],
            mentions=[(fc.rt.urls.actor, "@blog")])
        parent = await comment_store.by_id(fc.rt.db.read, comment_id)
        assert parent is not None and parent.visibility is Visibility.DIRECT
        answer = await replies.owner_reply(fc.rt, comment_id, "Just between us.")
        assert answer.visibility is Visibility.DIRECT
        await w.run_until_idle()
        assert other.arrivals == []
        [arrival] = one.arrivals
        reply = arrival.json()["object"]
        assert arrival.verified and reply["inReplyTo"] == note["id"]
        assert (reply["to"], reply["cc"]) == ([alice.id], [])
        assert PUBLIC not in arrival.body.decode()
        assert (await fc.get(f"/comments/{answer.id}")).status == 404
        assert (await _as2(fc, "/posts/hello/replies"))[1]["totalItems"] == 0


async def _local_comment(fc: Instance, post_id: int, parent_id: int | None,
                         status: CommentStatus = CommentStatus.APPROVED) -> int:
    now = fc.clock()
    async with fc.rt.db.transaction() as tx:
        return await comment_store.insert(tx, NewComment(
            post_id=post_id, parent_id=parent_id, origin=Origin.LOCAL,
            visibility=Visibility.PUBLIC, status=status, content="<p>Same here &lt;3</p>",
            published_at=now, author_name="Alice <Reader>", source="Same here <3"), now)


async def test_local_comment_federated_to_fediverse_author(make_instance: Any) -> None:
    """Given an approved reader comment answering a fediverse reply, when it is federated,
    then the fediverse author receives a Note by the blog that names the reader, threaded
    under their note; followers get nothing; a second call sends nothing new; a fediverse
    answer to it threads under it."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [one, other]:
        alice = one.actor("alice")
        await followed(fc, (other, other.actor("carol")))
        post = await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        other.arrivals.clear()
        parent_id, note = await reply_from(fc, one, alice, post["ap_id"])
        local_id = await _local_comment(fc, post["id"], parent_id)
        await replies.federate_local_comment(fc.rt, local_id)
        await replies.federate_local_comment(fc.rt, local_id)
        await w.run_until_idle()
        assert other.arrivals == []
        [arrival] = one.arrivals
        sent = arrival.json()["object"]
        assert arrival.verified
        assert (sent["id"], sent["attributedTo"], sent["inReplyTo"]) == (
            fc.rt.urls.comment(local_id), fc.rt.urls.actor, note["id"])
        assert "Alice &lt;Reader&gt; wrote:</p><p>Same here &lt;3</p>" in sent["content"]
        assert (sent["to"], sent["cc"]) == ([alice.id], [PUBLIC])
        status, served = await _as2(fc, f"/comments/{local_id}")
        assert status == 200 and served["content"] == sent["content"]
        answer_id, _ = await reply_from(fc, one, alice, sent["id"])
        answer = await comment_store.by_id(fc.rt.db.read, answer_id)
        assert answer is not None and answer.parent_id == local_id
        status, collection = await _as2(fc, f"/comments/{local_id}/replies")
        assert collection["first"]["orderedItems"] == [answer.ap_id]


async def test_local_comment_must_be_approved(make_instance: Any) -> None:
    """Given a pending reader comment, when federating it, then it is refused and nothing
    is enqueued."""
    fc = await start_blog_without_worker(make_instance)
    post = await add_post_via_api(fc, "hello")
    local_id = await _local_comment(fc, post["id"], None, CommentStatus.PENDING)
    before = await deliveries(fc)
    with pytest.raises(InvalidInput, match="not approved and public"):
        await replies.federate_local_comment(fc.rt, local_id)
    assert await deliveries(fc) == before
    assert (await fc.get(f"/comments/{local_id}")).status == 404


async def test_owner_reply_bad_input_stores_nothing(make_instance: Any) -> None:
    """Given a reply, when the owner sends empty text, answers an unknown comment or a
    pending public one, then a typed error is raised and nothing is stored or enqueued."""
    fc = await start_blog_without_worker(make_instance, moderation={"policy": "all"})
    async with peers("127.0.0.2") as [one]:
        alice = one.actor("alice")
        post = await add_post_via_api(fc, "hello")
        comment_id, _ = await reply_from(fc, one, alice, post["ap_id"])
        count = await fc.rt.db.read.fetchone("SELECT COUNT(*) FROM comments")
        with pytest.raises(InvalidInput, match="text: must not be empty"):
            await replies.owner_reply(fc.rt, comment_id, "  \n ")
        with pytest.raises(InvalidInput, match="text: at most 5000"):
            await replies.owner_reply(fc.rt, comment_id, "x" * 5001)
        with pytest.raises(NotFound):
            await replies.owner_reply(fc.rt, 9999, "Hello")
        with pytest.raises(InvalidInput, match="pending; approve it"):
            await replies.owner_reply(fc.rt, comment_id, "Hello")
        assert await fc.rt.db.read.fetchone("SELECT COUNT(*) FROM comments") == count
        assert await deliveries(fc) == []


async def test_reply_through_admin_api(make_instance: Any) -> None:
    """Given a reply, when the admin API's reply endpoint is called with a bearer token,
    then 201 comes back with the new comment's id and its delivery is enqueued."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [one]:
        alice = one.actor("alice")
        post = await add_post_via_api(fc, "hello")
        comment_id, _ = await reply_from(fc, one, alice, post["ap_id"])
        resp = await fc.admin("POST", f"/api/v1/admin/comments/{comment_id}/reply",
                              json={"text": "Thanks"})
        assert resp.status == 201, await resp.text()
        new_id = (await resp.json())["id"]
        [job] = await deliveries(fc)
        assert job["activity_id"] == f"{fc.rt.urls.comment(new_id)}#create"
        assert job["inbox"] == one.shared_inbox_url


async def test_served_comment_objects(make_instance: Any) -> None:
    """Given an owner answer, a remote reply and a deleted owner answer, when fetched at
    their ids, then the answer is a Note (browsers are sent to the thread), the remote one
    is 404 and the deleted one a 410 Tombstone; once the post is deleted, answering is
    refused and the answer is gone too."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [one]:
        alice = one.actor("alice")
        post = await add_post_via_api(fc, "hello")
        comment_id, _ = await reply_from(fc, one, alice, post["ap_id"])
        kept = await replies.owner_reply(fc.rt, comment_id, "Kept")
        dropped = await replies.owner_reply(fc.rt, comment_id, "Dropped")
        async with fc.rt.db.transaction() as tx:
            await comment_store.remove(tx, dropped, fc.clock())
        status, doc = await _as2(fc, f"/comments/{kept.id}")
        assert (status, doc["type"], doc["@context"][0]) == (
            200, "Note", "https://www.w3.org/ns/activitystreams")
        browser = await fc.get(f"/comments/{kept.id}", accept="text/html", allow_redirects=False)
        assert browser.status == 303
        assert browser.headers["Location"] == f"{post['ap_id']}#comment-{kept.id}"
        assert (await fc.get(f"/comments/{comment_id}")).status == 404
        assert (await fc.get("/comments/abc")).status == 404
        status, doc = await _as2(fc, f"/comments/{dropped.id}")
        assert (status, doc["type"], doc["id"]) == (410, "Tombstone", dropped.ap_id)
        assert (await fc.admin("DELETE", f"/api/v1/admin/posts/{post['id']}")).status == 200
        with pytest.raises(Gone, match="post was deleted"):
            await replies.owner_reply(fc.rt, comment_id, "too late")
        assert (await fc.get(f"/comments/{kept.id}")).status == 410


async def test_replies_collection_pages(make_instance: Any) -> None:
    """Given 55 public replies and one pending, when the post's replies collection is
    fetched, then it counts 55, inlines the first 50 in order and pages to the rest."""
    fc = await start_blog_without_worker(make_instance)
    post = await add_post_via_api(fc, "hello")
    ids = []
    for n in range(56):
        now = fc.clock()
        async with fc.rt.db.transaction() as tx:
            ids.append(await comment_store.insert(tx, NewComment(
                post_id=post["id"], parent_id=None, origin=Origin.LOCAL,
                visibility=Visibility.PUBLIC,
                status=CommentStatus.PENDING if n == 3 else CommentStatus.APPROVED,
                content="<p>hi</p>", published_at=now, author_name=f"R{n}"), now))
        fc.clock.advance(seconds=1)
    public = [fc.rt.urls.comment(i) for n, i in enumerate(ids) if n != 3]
    status, doc = await _as2(fc, "/posts/hello/replies")
    assert (status, doc["totalItems"], doc["first"]["orderedItems"]) == (200, 55, public[:50])
    assert doc["first"]["next"] == f"{fc.rt.urls.post_replies('hello')}?page=2"
    status, page = await _as2(fc, "/posts/hello/replies?page=2")
    assert (status, page["type"], page["orderedItems"]) == (
        200, "OrderedCollectionPage", public[50:])
    assert "next" not in page
    assert (await fc.get("/posts/hello/replies?page=x")).status == 400


async def test_answer_edited_then_withdrawn_reaches_same_inboxes(make_instance: Any) -> None:
    """Given an owner answer delivered to the replier's and a follower's server, when it is
    edited and then deleted, then both servers get an Update with the new text and a newer
    `updated`, then a Delete of its Tombstone; a third server gets nothing."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3", "127.0.0.4") as [one, two, three]:
        alice = one.actor("alice")
        await followed(fc, (two, two.actor("carol")))
        post = await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        two.arrivals.clear()
        comment_id, _ = await reply_from(fc, one, alice, post["ap_id"])
        answer = await replies.owner_reply(fc.rt, comment_id, "First words")
        fc.clock.advance(minutes=3)
        async with fc.rt.db.transaction() as tx:
            await comment_store.update_content(
                tx, answer.id, content="<p>Better words</p>", summary=None, sensitive=False,
                language=None, attachments=(), mentions=answer.mentions, updated_at=fc.clock())
            assert await replies.comment_edited(fc.rt, tx, answer.id) == 2
        async with fc.rt.db.transaction() as tx:
            await comment_store.remove(tx, answer, fc.clock())
            assert await replies.comment_withdrawn(fc.rt, tx, answer) == 2
        await w.run_until_idle()
        assert three.arrivals == []
        for peer in (one, two):
            assert [a.type for a in peer.arrivals] == ["Create", "Update", "Delete"]
            assert all(a.verified for a in peer.arrivals)
            update = peer.arrivals[1].json()["object"]
            assert (update["id"], update["content"]) == (answer.ap_id, "<p>Better words</p>")
            assert update["updated"] > update["published"]
            tombstone = peer.arrivals[2].json()["object"]
            assert (tombstone["type"], tombstone["id"], tombstone["formerType"]) == (
                "Tombstone", answer.ap_id, "Note")


async def test_answer_to_reader_comment_goes_to_followers(make_instance: Any) -> None:
    """Given a reader's comment (no fediverse author), when the owner answers it, then the
    followers get a public Note (to Public, cc followers) that mentions nobody, threaded
    under the reader comment's id."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [one]:
        await followed(fc, (one, one.actor("carol")))
        post = await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        one.arrivals.clear()
        local_id = await _local_comment(fc, post["id"], None)
        answer = await replies.owner_reply(fc.rt, local_id, "Welcome!")
        await w.run_until_idle()
        [arrival] = one.arrivals
        note = arrival.json()["object"]
        assert arrival.verified and note["id"] == answer.ap_id
        assert (note["to"], note["cc"], note["tag"]) == ([PUBLIC], [fc.rt.urls.followers], [])
        assert note["inReplyTo"] == fc.rt.urls.comment(local_id)
        assert note["content"] == "<p>Welcome!</p>"


async def test_reader_edit_and_delete_reach_the_fediverse(make_instance: Any) -> None:
    """Given a reader's approved comment federated to the fediverse author it answers, when
    the reader edits it and then deletes it with their secret, then that server receives an
    Update with the new text and then a Delete of the Note."""
    from tests.helpers.reader import post_local

    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [one]:
        alice = one.actor("alice")
        post = await add_post_via_api(fc, "hello")
        w = worker(fc)
        parent_id, _ = await reply_from(fc, one, alice, post["ap_id"])
        resp = await post_local(fc, post["id"], parent=str(parent_id), name="Bob",
                                text="First words")
        assert resp.status == 201, await resp.text()
        posted = await resp.json()
        assert posted["pending"] is False
        url = f"{fc.url}/api/v1/comments/{posted['comment']['id']}"
        secret = {"X-Comment-Secret": posted["secret"], "Origin": fc.url}
        await w.run_until_idle()
        fc.clock.advance(minutes=2)
        edited = await fc.session.patch(url, json={"text": "Better words"}, headers=secret)
        assert edited.status == 200, await edited.text()
        assert (await fc.session.delete(url, headers=secret)).status in (200, 204)
        await w.run_until_idle()
        assert [a.type for a in one.arrivals] == ["Create", "Update", "Delete"]
        assert all(a.verified for a in one.arrivals)
        note_id = fc.rt.urls.comment(posted["comment"]["id"])
        update = one.arrivals[1].json()["object"]
        assert update["id"] == note_id and "Better words" in update["content"]
        assert one.arrivals[2].json()["object"]["id"] == note_id
