"""Per-host behaviour of the worker: a hanging server does not hold up the others, the
breaker pauses failing servers, "unavailable" marks, graceful shutdown, the summary line."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest

from fedcomments.delivery import policy as delivery_policy
from fedcomments.services import deliveries as delivery_admin
from fedcomments.store import queue
from fedcomments.store.rows import dt
from tests.helpers.blogkit import deliveries, start_blog_without_worker, worker
from tests.helpers.peers import Peer, peers, until

BODY = b'{"type":"Create"}'


async def enqueue(fc: Any, peer: Peer, count: int, tag: str) -> None:
    """`count` jobs (distinct activities) to `peer`, each to its own inbox there: jobs to
    one inbox go out one after the other, and these tests need them side by side."""
    async with fc.rt.db.transaction() as tx:
        for n in range(count):
            await queue.enqueue(tx, activity_id=f"{fc.url}/activities/{tag}/{n}",
                                inbox=f"{peer.url}/users/{tag}{n}/inbox", body=BODY,
                                now=fc.clock())


async def test_hanging_peer_does_not_delay_others(make_instance: Any) -> None:
    """Given a peer that never answers and two healthy ones, with 4 slots and 2 per host,
    when the worker runs with a 1 s request timeout, then every healthy delivery lands
    before the hung requests time out, and the hung jobs are rescheduled."""
    fc = await start_blog_without_worker(
        make_instance, federation={"delivery_concurrency": 4, "delivery_per_host": 2})
    async with peers("127.0.0.2", "127.0.0.3", "127.0.0.4") as [hang, ok1, ok2]:
        hang.hold = asyncio.Event()
        await enqueue(fc, hang, 2, "h")
        await enqueue(fc, ok1, 4, "a")
        await enqueue(fc, ok2, 4, "b")
        await worker(fc, request_timeout=1.0).run_until_idle()
        healthy = ok1.arrivals + ok2.arrivals
        assert len(healthy) == 8 and all(a.answered == 202 for a in healthy)
        assert len(hang.arrivals) == 2 and len(hang.released) == 2
        assert max(a.loop_time for a in healthy) < min(hang.released)
        jobs = await deliveries(fc)
        hung = [j for j in jobs if j["host"] == "127.0.0.2"]
        assert {(j["status"], j["attempts"], j["last_error"]) for j in hung} == {
            ("pending", 1, "timed out after 1 s")}
        assert {j["status"] for j in jobs if j["host"] != "127.0.0.2"} == {"done"}


async def test_hanging_peer_never_gets_more_than_per_host(make_instance: Any) -> None:
    """Given a hanging peer with many jobs queued ahead of others, when the worker runs in
    the background, then at most `delivery_per_host` requests to it are open at any time
    and the jobs behind it still flow."""
    fc = await start_blog_without_worker(
        make_instance, federation={"delivery_concurrency": 3, "delivery_per_host": 1})
    async with peers("127.0.0.2", "127.0.0.3") as [hang, ok]:
        hang.hold = asyncio.Event()
        seen: list[int] = []
        ok.on_arrival = lambda _a: seen.append(hang.waiting)
        await enqueue(fc, hang, 30, "h")
        await enqueue(fc, ok, 8, "a")
        w = worker(fc, grace=0.05)
        task = asyncio.create_task(w.run())
        await until(lambda: len(ok.arrivals) == 8 and hang.waiting == 1)
        assert max(seen) <= 1 and len(hang.arrivals) == 1
        w.stop()
        await task


async def test_graceful_stop_returns_inflight_jobs(make_instance: Any) -> None:
    """Given requests hanging when the worker is stopped, when the grace period ends, then
    those jobs go back to the queue untouched (pending, no attempt counted, no lease) and
    nothing is marked done without a 2xx."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [hang, ok]:
        hang.hold = asyncio.Event()
        await enqueue(fc, hang, 2, "h")
        await enqueue(fc, ok, 1, "a")
        w = worker(fc, grace=0.1)
        task = asyncio.create_task(w.run())
        await until(lambda: hang.waiting == 2 and len(ok.arrivals) == 1)
        await until(lambda: len(w.in_flight) == 2)
        w.stop()
        await asyncio.wait_for(task, 5)
        jobs = {j["host"]: [] for j in await deliveries(fc)}
        for j in await deliveries(fc):
            jobs[j["host"]].append((j["status"], j["attempts"], j["locked_until"]))
        assert jobs == {"127.0.0.2": [("pending", 0, None), ("pending", 0, None)],
                        "127.0.0.3": [("done", 1, None)]}


async def test_graceful_stop_lets_quick_requests_finish(make_instance: Any) -> None:
    """Given a request that completes within the grace period, when the worker is stopped
    mid-request, then its 2xx is recorded as done."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        peer.hold = asyncio.Event()
        await enqueue(fc, peer, 1, "h")
        w = worker(fc, grace=5)
        task = asyncio.create_task(w.run())
        await until(lambda: peer.waiting == 1)
        w.stop()
        peer.hold.set()
        await asyncio.wait_for(task, 5)
        assert [(j["status"], j["attempts"]) for j in await deliveries(fc)] == [("done", 1)]


async def test_breaker_pauses_failing_host_then_probes(make_instance: Any) -> None:
    """Given a server failing 5 times in a row, when more jobs for it are due, then none is
    tried during the pause; after it, a single probe goes first and its success reopens
    the host to every job."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2", "127.0.0.3") as [bad, ok]:
        bad.default_status = 500
        await enqueue(fc, bad, 5, "first")
        w = worker(fc)
        await w.run_until_idle()  # four in parallel (per-host limit), then the fifth
        state = await queue.host_state(fc.rt.db.read, "127.0.0.2")
        assert state.consecutive_failures == 5
        assert state.paused_until == fc.clock() + delivery_policy.BREAKER_PAUSE_BASE
        await enqueue(fc, bad, 3, "second")
        await enqueue(fc, ok, 1, "ok")
        await w.run_until_idle()
        assert len(bad.arrivals) == 5 and len(ok.arrivals) == 1
        bad.default_status = 202
        fc.clock.advance(minutes=2)
        bad.hold = asyncio.Event()
        run = asyncio.create_task(w.run_until_idle())
        await until(lambda: bad.waiting == 1)
        # The claim pass is over once the probe is out: it is the only job to that host.
        assert [j.host for j in w.in_flight].count("127.0.0.2") == 1
        assert len(bad.arrivals) == 6
        bad.hold.set()
        await asyncio.wait_for(run, 5)
        assert len(bad.arrivals) == 5 + 8
        state = await queue.host_state(fc.rt.db.read, "127.0.0.2")
        assert (state.consecutive_failures, state.paused_until) == (0, None)
        assert {j["status"] for j in await deliveries(fc)} == {"done"}


async def test_unavailable_after_failures_on_seven_days(make_instance: Any) -> None:
    """Given a server that fails every day for a week, when the seventh distinct day fails,
    then it is marked unavailable and its jobs fail at once (kept for the admin); a signed
    request from that host clears the mark."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [bad]:
        bad.default_status = 503
        await enqueue(fc, bad, 1, "daily")
        w = worker(fc)
        for day in range(7):
            await w.run_until_idle()
            state = await queue.host_state(fc.rt.db.read, "127.0.0.2")
            assert len(state.failure_days) == day + 1
            assert (state.unavailable_since is None) == (day < 6)
            fc.clock.advance(days=1)
        assert len(bad.arrivals) == 7
        await enqueue(fc, bad, 1, "later")
        await w.run_until_idle()
        assert len(bad.arrivals) == 7
        statuses = [(j["status"], (j["last_error"] or "")[:23]) for j in await deliveries(fc)]
        assert statuses == [("failed", "host unavailable since "),
                            ("failed", "host unavailable since ")]
        assert await delivery_admin.host_contacted(fc.rt, f"{bad.url}/users/alice#main-key") is True
        state = await queue.host_state(fc.rt.db.read, "127.0.0.2")
        assert (state.unavailable_since, state.failure_days) == (None, ())
        assert await delivery_admin.host_contacted(fc.rt, f"{bad.url}/users/alice") is False


async def test_success_clears_failure_days(make_instance: Any) -> None:
    """Given a server that failed on two days, when a delivery to it succeeds, then its
    failure days, failures and pause are forgotten and its last success recorded."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        peer.plan = [(502, {}), (502, {})]
        await enqueue(fc, peer, 1, "x")
        w = worker(fc)
        await w.run_until_idle()
        fc.clock.advance(days=1)
        await w.run_until_idle()
        assert len((await queue.host_state(fc.rt.db.read, "127.0.0.2")).failure_days) == 2
        fc.clock.advance(days=1)
        await w.run_until_idle()
        state = await queue.host_state(fc.rt.db.read, "127.0.0.2")
        assert (state.consecutive_failures, state.failure_days) == (0, ())
        assert state.last_success_at == fc.clock()


async def test_summary_line_when_something_fails(make_instance: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Given a retrying job and a paused host, when the summary is due, then one warning
    line names the counts and the host; with nothing failing it stays silent."""
    fc = await start_blog_without_worker(make_instance)
    assert await delivery_admin.log_summary(fc.rt) is None
    async with peers("127.0.0.2") as [bad]:
        bad.default_status = 500
        await enqueue(fc, bad, 5, "x")
        await worker(fc).run_until_idle()
        with caplog.at_level(logging.WARNING, logger="fedcomments.delivery"):
            line = await delivery_admin.log_summary(fc.rt)
        assert line == ("deliveries: 5 retrying, 0 failed in the last 5 min; "
                        "paused hosts: 127.0.0.2; unavailable hosts: none")
        assert [r.getMessage() for r in caplog.records] == [line]


async def test_lease_is_renewed_while_in_flight(make_instance: Any) -> None:
    """Given a request running longer than a third of the lease, when the worker passes
    again, then the job's lease is pushed forward so no other worker takes it over."""
    fc = await start_blog_without_worker(make_instance, federation={"delivery_lease": 30})
    async with peers("127.0.0.2") as [peer]:
        peer.hold = asyncio.Event()
        await enqueue(fc, peer, 1, "x")
        w = worker(fc)
        claimed_at = fc.clock()
        assert await w.run_once() == 1
        await until(lambda: peer.waiting == 1)
        lease = timedelta(seconds=30)
        [job] = await deliveries(fc)
        assert dt(job["locked_until"]) == claimed_at + lease
        fc.clock.advance(seconds=5)
        await w.run_once()
        [job] = await deliveries(fc)
        assert dt(job["locked_until"]) == claimed_at + lease
        fc.clock.advance(seconds=6)
        await w.run_once()
        [job] = await deliveries(fc)
        assert dt(job["locked_until"]) == fc.clock() + lease
        peer.hold.set()
        await w.run_until_idle()
        [job] = await deliveries(fc)
        assert (job["status"], job["locked_until"]) == ("done", None)
