"""The delivery worker against real peers that verify our signatures independently:
Accept{Follow}, retries on the FakeClock, gone inboxes, rate limits, redirects, double
knocking, leases and blocks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fedcomments.store import blocks as block_store
from fedcomments.store import queue
from fedcomments.store.rows import dt_required
from tests.helpers.blogkit import deliveries, follow, followed, start_blog_without_worker, worker
from tests.helpers.peers import peers, until
from tests.helpers.posts import add_post_via_api


async def test_follow_gets_accept_that_verifies(make_instance: Any) -> None:
    """Given a peer's Follow, when the worker runs, then one Accept{Follow} arrives at the
    follower's own inbox, signed draft-cavage so that pyhttpsig verifies it."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        alice = peer.actor("alice")
        follow_doc = peer.follow(alice, fc.rt.urls.actor)
        assert await peer.send(alice, fc.rt.urls.shared_inbox, follow_doc, fc.clock()) == 202
        await worker(fc).run_until_idle()
        [arrival] = peer.arrivals
        accept = arrival.json()
        assert arrival.path == "/users/alice/inbox"
        assert (arrival.scheme, arrival.verified, arrival.answered) == ("cavage", True, 202)
        assert accept["type"] == "Accept" and accept["actor"] == fc.rt.urls.actor
        assert accept["object"]["id"] == follow_doc["id"]
        assert accept["object"]["actor"] == alice.id
        signed = arrival.headers["Signature"]
        assert 'algorithm="rsa-sha256"' in signed
        assert 'headers="(request-target) host date digest content-type"' in signed
        assert [d["status"] for d in await deliveries(fc)] == ["done"]


async def test_500_then_202_delivered_exactly_once(make_instance: Any) -> None:
    """Given a follower answering 500 three times, when the clock moves past each backoff,
    then the fourth attempt gets 202 and the job is done: one accepted delivery, every
    attempt freshly signed over the same bytes."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        alice = peer.actor("alice")
        await followed(fc, (peer, alice))
        peer.plan = [(500, {}), (500, {}), (500, {})]
        await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        assert len(peer.arrivals) == 1
        await w.run_until_idle()  # not due yet: nothing more is sent
        assert len(peer.arrivals) == 1
        for expected in (2, 3, 4):
            fc.clock.advance(hours=1)
            await w.run_until_idle()
            assert len(peer.arrivals) == expected
        assert [a.answered for a in peer.arrivals] == [500, 500, 500, 202]
        assert all(a.verified for a in peer.arrivals)
        assert len({a.body for a in peer.arrivals}) == 1
        assert len({a.headers["Date"] for a in peer.arrivals}) == 4
        assert len({a.headers["Signature"] for a in peer.arrivals}) == 4
        [job] = [d for d in await deliveries(fc) if d["inbox"] == peer.shared_inbox_url]
        assert (job["status"], job["attempts"], job["last_status"]) == ("done", 4, 202)
        fc.clock.advance(days=3)
        await w.run_until_idle()
        assert len(peer.arrivals) == 4


async def test_retry_waits_for_backoff(make_instance: Any) -> None:
    """Given a 503, when the worker runs again before the backoff, then nothing is sent;
    the job's next attempt is 30–37.5 s after the failure."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        alice = peer.actor("alice")
        await followed(fc, (peer, alice))
        peer.plan = [(503, {})]
        await add_post_via_api(fc, "hello")
        w = worker(fc)
        failed_at = fc.clock()
        await w.run_until_idle()
        [job] = [d for d in await deliveries(fc) if d["status"] == "pending"]
        next_at = dt_required(job["next_attempt_at"]) - failed_at
        assert timedelta(seconds=30) <= next_at <= timedelta(seconds=37.5)
        assert (job["attempts"], job["last_status"], job["locked_until"]) == (1, 503, None)
        fc.clock.advance(seconds=29)
        await w.run_until_idle()
        assert len(peer.arrivals) == 1
        fc.clock.advance(seconds=9)
        await w.run_until_idle()
        assert [a.answered for a in peer.arrivals] == [503, 202]


async def test_410_marks_gone_and_removes_follower(make_instance: Any) -> None:
    """Given a follower whose inbox answers 410, when a post is delivered, then the job is
    gone (never retried) and the actor is no longer a follower."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", shared_inbox=False) as [peer]:
        alice = peer.actor("alice")
        await followed(fc, (peer, alice))
        peer.default_status = 410
        await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        fc.clock.advance(days=3)
        await w.run_until_idle()
        assert [a.answered for a in peer.arrivals] == [410]
        gone = [d for d in await deliveries(fc) if d["inbox"] == alice.inbox][-1]
        assert (gone["status"], gone["attempts"], gone["last_status"]) == ("gone", 1, 410)
        assert await fc.rt.db.read.fetchall("SELECT * FROM followers") == []


async def test_429_retry_after_is_honoured(make_instance: Any) -> None:
    """Given a 429 with Retry-After: 3600, when the clock moves 59 minutes, then nothing is
    sent to that host (not even another job); after the hour it is delivered."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        alice = peer.actor("alice")
        await followed(fc, (peer, alice))
        peer.plan = [(429, {"Retry-After": "3600"})]
        await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        await add_post_via_api(fc, "second")
        fc.clock.advance(minutes=59)
        await w.run_until_idle()
        assert [a.answered for a in peer.arrivals] == [429]
        fc.clock.advance(minutes=2)
        await w.run_until_idle()
        assert [a.answered for a in peer.arrivals] == [429, 202, 202]
        assert {d["status"] for d in await deliveries(fc)} == {"done"}


async def test_redirect_is_not_followed(make_instance: Any) -> None:
    """Given an inbox answering 307 to another server, when delivering, then the signed
    body is not re-sent there and the job fails with the redirect recorded."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [peer, elsewhere]:
        alice = peer.actor("alice")
        await followed(fc, (peer, alice))
        peer.plan = [(307, {"Location": f"{elsewhere.url}/inbox"})]
        await add_post_via_api(fc, "hello")
        w = worker(fc)
        await w.run_until_idle()
        fc.clock.advance(days=3)
        await w.run_until_idle()
        assert [a.answered for a in peer.arrivals] == [307]
        assert elsewhere.arrivals == []
        [job] = [d for d in await deliveries(fc) if d["status"] != "done"]
        assert (job["status"], job["last_status"]) == ("failed", 307)
        assert f"redirected to {elsewhere.url}/inbox (not followed" in job["last_error"]


async def test_double_knock_retries_with_rfc9421(make_instance: Any) -> None:
    """Given double_knock and a peer that accepts only RFC 9421, when delivering, then a
    cavage attempt gets 401 and the immediate second knock (RFC 9421, verified by
    http-message-signatures) gets 202: done in one attempt."""
    fc = await start_blog_without_worker(make_instance, federation={"double_knock": True})
    async with peers("127.0.0.2") as [peer]:
        alice = peer.actor("alice")
        await followed(fc, (peer, alice))
        peer.accept_schemes = ("rfc9421",)
        await add_post_via_api(fc, "hello")
        await worker(fc).run_until_idle()
        assert [(a.scheme, a.verified, a.answered) for a in peer.arrivals] == [
            ("cavage", True, 401), ("rfc9421", True, 202)]
        assert peer.arrivals[0].body == peer.arrivals[1].body
        [job] = [d for d in await deliveries(fc) if d["inbox"] == peer.shared_inbox_url]
        assert (job["status"], job["attempts"]) == ("done", 1)


async def test_without_double_knock_401_is_retried_later(make_instance: Any) -> None:
    """Given double_knock off and a peer that refuses cavage, when delivering, then one
    401 is recorded and the job waits for its retry instead of knocking again."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        alice = peer.actor("alice")
        await followed(fc, (peer, alice))
        peer.accept_schemes = ("rfc9421",)
        await add_post_via_api(fc, "hello")
        await worker(fc).run_until_idle()
        assert [(a.scheme, a.answered) for a in peer.arrivals] == [("cavage", 401)]
        [job] = [d for d in await deliveries(fc) if d["status"] == "pending"]
        assert (job["attempts"], job["last_status"]) == (1, 401)


async def test_rfc9421_scheme_setting(make_instance: Any) -> None:
    """Given signature_scheme = rfc9421, when the Accept goes out, then it carries an
    RFC 9421 signature with Content-Digest that http-message-signatures verifies."""
    fc = await start_blog_without_worker(make_instance, federation={"signature_scheme": "rfc9421"})
    async with peers("127.0.0.2") as [peer]:
        await follow(fc, peer, peer.actor("alice"))
        await worker(fc).run_until_idle()
        [arrival] = peer.arrivals
        assert (arrival.scheme, arrival.verified, arrival.answered) == ("rfc9421", True, 202)
        assert arrival.headers["Content-Digest"].startswith("sha-256=:")


async def test_abandoned_claim_is_picked_up_after_lease(make_instance: Any) -> None:
    """Given two due jobs, one claimed by a worker that then crashed, when another worker
    runs, then it delivers only the free one until the lease expires, then the other once."""
    fc = await start_blog_without_worker(make_instance, federation={"delivery_lease": 120})
    async with peers("127.0.0.2", "127.0.0.3") as [crashed, free]:
        await follow(fc, crashed, crashed.actor("alice"))
        async with fc.rt.db.transaction() as tx:
            [candidate] = await queue.due(tx, fc.clock(), exclude_hosts=(), limit=10)
            await queue.lease(tx, [candidate.id], fc.clock() + timedelta(seconds=120))
        await follow(fc, free, free.actor("bob"))
        w = worker(fc)
        await w.run_until_idle()
        assert (crashed.arrivals, [a.type for a in free.arrivals]) == ([], ["Accept"])
        fc.clock.advance(seconds=119)
        await w.run_until_idle()
        assert crashed.arrivals == []
        fc.clock.advance(seconds=2)
        await w.run_until_idle()
        assert [a.type for a in crashed.arrivals] == ["Accept"]
        assert [a.type for a in free.arrivals] == ["Accept"]
        assert [d["status"] for d in await deliveries(fc)] == ["done", "done"]


async def test_blocked_domain_is_never_delivered(make_instance: Any) -> None:
    """Given a pending job to a server that gets blocked before the worker runs, when the
    worker runs, then nothing is sent and the job is cancelled."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [blocked, fine]:
        await follow(fc, blocked, blocked.actor("alice"))
        await follow(fc, fine, fine.actor("bob"))
        async with fc.rt.db.transaction() as tx:
            await block_store.insert_domain_block(tx, "127.0.0.2", reason="", keep_content=True,
                                                  now=fc.clock())
        await worker(fc).run_until_idle()
        assert blocked.arrivals == []
        assert [a.type for a in fine.arrivals] == ["Accept"]
        by_host = {d["host"]: (d["status"], d["last_error"]) for d in await deliveries(fc)}
        assert by_host == {"127.0.0.2": ("cancelled", "blocked"), "127.0.0.3": ("done", None)}


async def test_server_runs_its_own_worker(make_instance: Any) -> None:
    """Given the default settings (worker inside the server), when a peer follows, then the
    Accept arrives without the test driving anything."""
    fc = await make_instance()
    assert fc.settings.federation.delivery_worker is True
    async with peers("127.0.0.2") as [peer]:
        await follow(fc, peer, peer.actor("alice"))
        await until(lambda: bool(peer.arrivals), bound=10)
        [arrival] = peer.arrivals
        assert (arrival.type, arrival.verified, arrival.answered) == ("Accept", True, 202)


async def test_jobs_to_one_inbox_are_claimed_in_queue_order(make_instance: Any) -> None:
    """Given a Create, Update and Delete queued for one inbox and a job for another, then a
    claim offers only the Create and the other inbox's job; while the Create is in flight
    the Update still waits; once the Create waits out a retry delay the Update goes; once
    the Update is delivered the Delete goes."""
    from fedcomments.model import DeliveryStatus

    fc = await start_blog_without_worker(make_instance)
    now = fc.clock()
    inbox, other = "https://one.example/inbox", "https://two.example/inbox"
    async with fc.rt.db.transaction() as tx:
        for name in ("create", "update", "delete"):
            await queue.enqueue(tx, activity_id=f"{fc.url}/a/{name}", inbox=inbox, body=b"{}",
                                now=now)
        await queue.enqueue(tx, activity_id=f"{fc.url}/a/other", inbox=other, body=b"{}",
                            now=now)

    async def offered() -> list[str]:
        found = await queue.due(fc.rt.db.read, fc.clock(), exclude_hosts=(), limit=10)
        names = []
        for candidate in found:
            job = await queue.by_id(fc.rt.db.read, candidate.id)
            assert job is not None
            names.append(job.activity_id.rsplit("/", 1)[1])
        return names

    assert await offered() == ["create", "other"]
    create_id = (await fc.rt.db.read.fetchone(
        "SELECT id FROM deliveries WHERE activity_id LIKE '%/create'"))[0]
    async with fc.rt.db.transaction() as tx:
        await queue.lease(tx, [create_id], now + timedelta(seconds=60))
    assert await offered() == ["other"]
    async with fc.rt.db.transaction() as tx:
        await queue.record(tx, [queue.Outcome(create_id, 1, 500, "HTTP 500",
                                              next_attempt_at=now + timedelta(minutes=5))], now)
    assert await offered() == ["update", "other"]
    update_id = create_id + 1
    async with fc.rt.db.transaction() as tx:
        await queue.record(tx, [queue.Outcome(update_id, 1, 202, None,
                                              status=DeliveryStatus.DONE)], now)
    assert await offered() == ["delete", "other"]
