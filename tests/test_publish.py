"""Publishing posts to followers: Create on add, Update on change, Delete on removal, one
job per shared inbox, scheduled posts when they are due, never to blocked servers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fedcomments.services import publish
from fedcomments.store import blocks as block_store
from tests.helpers.blogkit import deliveries, followed, start_blog_without_worker, worker
from tests.helpers.peers import PUBLIC, peers
from tests.helpers.posts import add_post_via_api


async def test_post_reaches_each_server_once(make_instance: Any) -> None:
    """Given two followers on one server (shared inbox) and one on another, when a post is
    added, then each server receives exactly one Create{Article}, signed so that an
    independent verifier accepts it."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [one, two]:
        await followed(fc, (one, one.actor("alice")), (one, one.actor("bob")),
                       (two, two.actor("carol")))
        post = await add_post_via_api(fc, "hello", tags=["intro"])
        jobs = [d for d in await deliveries(fc) if d["status"] == "pending"]
        assert sorted(j["inbox"] for j in jobs) == [one.shared_inbox_url, two.shared_inbox_url]
        w = worker(fc)
        await w.run_until_idle()
        fc.clock.advance(days=3)
        await w.run_until_idle()
        for peer in (one, two):
            [arrival] = peer.arrivals
            create = arrival.json()
            assert (arrival.path, arrival.verified, arrival.answered) == ("/inbox", True, 202)
            assert create["type"] == "Create" and create["actor"] == fc.rt.urls.actor
            assert create["id"] == f"{post['ap_id']}#create"
            article = create["object"]
            assert (article["type"], article["id"], article["url"]) == (
                "Article", post["ap_id"], "https://blog.example/hello/")
            assert create["to"] == [PUBLIC] and create["cc"] == [fc.rt.urls.followers]
            assert article["tag"][0]["name"] == "#intro"


async def test_followers_without_shared_inbox_get_their_own(make_instance: Any) -> None:
    """Given two followers on a server without a shared inbox, when a post is added, then
    each follower's own inbox gets one job."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", shared_inbox=False) as [peer]:
        alice, bob = peer.actor("alice"), peer.actor("bob")
        await followed(fc, (peer, alice), (peer, bob))
        await add_post_via_api(fc, "hello")
        await worker(fc).run_until_idle()
        assert sorted(a.path for a in peer.arrivals) == ["/users/alice/inbox", "/users/bob/inbox"]
        assert {a.type for a in peer.arrivals} == {"Create"}


async def test_update_and_delete_are_federated(make_instance: Any) -> None:
    """Given a published post, when it is edited then deleted, then followers get an Update
    carrying the new title and `updated`, then a Delete of a Tombstone; registering it again
    unchanged sends nothing."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        await followed(fc, (peer, peer.actor("alice")))
        post = await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        await add_post_via_api(fc, "hello", expect=200)  # a site build re-registering the same post
        await w.run_until_idle()
        assert [a.type for a in peer.arrivals] == ["Create"]
        fc.clock.advance(minutes=5)
        resp = await fc.admin("PUT", f"/api/v1/admin/posts/{post['id']}",
                              json={"url": "https://blog.example/hello/", "title": "Hello again"})
        assert resp.status == 200
        await w.run_until_idle()
        update = peer.arrivals[-1].json()
        assert update["type"] == "Update" and update["actor"] == fc.rt.urls.actor
        assert update["object"]["id"] == post["ap_id"]
        assert update["object"]["name"] == "Hello again"
        assert update["object"]["updated"] > update["object"]["published"]
        resp = await fc.admin("DELETE", f"/api/v1/admin/posts/{post['id']}")
        assert resp.status == 200
        await w.run_until_idle()
        delete = peer.arrivals[-1].json()
        assert delete["type"] == "Delete"
        assert delete["object"]["type"] == "Tombstone"
        assert (delete["object"]["id"], delete["object"]["formerType"]) == (post["ap_id"],
                                                                            "Article")
        assert [a.type for a in peer.arrivals] == ["Create", "Update", "Delete"]
        assert all(a.verified for a in peer.arrivals)


async def test_future_post_federated_when_due(make_instance: Any) -> None:
    """Given a post published two hours ahead, when the worker runs now, then nothing is
    sent; when the clock passes its date, then exactly one Create goes out."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        await followed(fc, (peer, peer.actor("alice")))
        due = (fc.clock() + timedelta(hours=2)).isoformat()
        post = await add_post_via_api(fc, "hello", published=due)
        w = worker(fc)
        await w.run_until_idle()
        assert peer.arrivals == []
        assert [d["status"] for d in await deliveries(fc)] == ["done"]  # the Accept only
        fc.clock.advance(hours=1, minutes=59)
        await w.run_until_idle()
        assert peer.arrivals == []
        fc.clock.advance(minutes=2)
        await w.run_until_idle()
        await w.run_until_idle()
        assert [(a.type, a.json()["object"]["id"]) for a in peer.arrivals] == [
            ("Create", post["ap_id"])]
        assert await publish.federate_due_posts(fc.rt) == 0


async def test_blocked_follower_server_gets_nothing(make_instance: Any) -> None:
    """Given followers on two servers, one of them blocked with its content kept, when a
    post is added, then only the other server gets a job."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [blocked, fine]:
        await followed(fc, (blocked, blocked.actor("alice")), (fine, fine.actor("bob")))
        async with fc.rt.db.transaction() as tx:
            await block_store.insert_domain_block(tx, "127.0.0.2", reason="", keep_content=True,
                                                  now=fc.clock())
        await fc.rt.refresh_shared(force=True)
        await add_post_via_api(fc, "hello")
        creates = [d for d in await deliveries(fc) if d["activity_id"].endswith("#create")]
        assert [d["inbox"] for d in creates] == [fine.shared_inbox_url]


async def test_blocked_follower_account_gets_nothing(make_instance: Any) -> None:
    """Given two followers with their own inboxes on one server, one of them blocked as an
    account, when a post is added, then only the other follower's inbox gets a job."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", shared_inbox=False) as [peer]:
        alice, bob = peer.actor("alice"), peer.actor("bob")
        await followed(fc, (peer, alice), (peer, bob))
        async with fc.rt.db.transaction() as tx:
            await block_store.insert_actor_block(tx, alice.id, reason="", keep_content=True,
                                                 now=fc.clock())
        await fc.rt.refresh_shared(force=True)
        await add_post_via_api(fc, "hello")
        creates = [d for d in await deliveries(fc) if d["activity_id"].endswith("#create")]
        assert [d["inbox"] for d in creates] == [bob.inbox]


async def test_many_followers_one_job_per_inbox_in_follow_order(make_instance: Any) -> None:
    """Given 30 followers spread over three servers' shared inboxes, when a post is added,
    then there are exactly three Create jobs, in the order the servers first followed."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3", "127.0.0.4") as remote:
        order = [remote[1], remote[0], remote[2]]
        await followed(fc, *[(p, p.actor(f"u{n}")) for n in range(10) for p in order])
        await add_post_via_api(fc, "hello")
        creates = [d for d in await deliveries(fc) if d["activity_id"].endswith("#create")]
        assert [d["inbox"] for d in creates] == [p.shared_inbox_url for p in order]


async def test_post_and_jobs_commit_together(make_instance: Any) -> None:
    """Given a follower, when adding a post fails validation, then neither a post nor a
    delivery is stored."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        await followed(fc, (peer, peer.actor("alice")))
        before = await deliveries(fc)
        resp = await fc.admin("POST", "/api/v1/admin/posts",
                              json={"url": "https://blog.example/x/", "title": "  "})
        assert resp.status == 400
        assert await deliveries(fc) == before
        assert await fc.rt.db.read.fetchall("SELECT id FROM posts") == []
