"""How soon the worker acts: jobs committed while it waits start at once (not at the next
poll), a freed slot is refilled at once (not after a batch of requests finished), and a
request left hanging by its server gives its slot back once it is slow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fedcomments.delivery import worker as delivery
from fedcomments.store import queue
from tests.helpers.blogkit import deliveries, start_blog_without_worker, worker
from tests.helpers.peers import Peer, peers, until, until_true

BODY = b'{"type":"Create"}'


async def enqueue(fc: Any, peer: Peer, count: int, tag: str) -> None:
    """`count` jobs (distinct activities) to `peer`'s shared inbox, in one transaction."""
    async with fc.rt.db.transaction() as tx:
        for n in range(count):
            await queue.enqueue(tx, activity_id=f"{fc.url}/activities/{tag}/{n}",
                                inbox=peer.shared_inbox_url, body=BODY, now=fc.clock())


async def test_enqueued_jobs_wake_a_waiting_worker(make_instance: Any) -> None:
    """Given a running worker whose poll interval is 10 minutes, when jobs are committed
    while it waits, then each is delivered within seconds, long before the next poll."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        w = worker(fc, poll_interval=600.0)
        task = asyncio.create_task(w.run())
        try:
            await enqueue(fc, peer, 1, "first")
            await until(lambda: len(peer.arrivals) == 1)

            async def first_recorded() -> bool:
                return [j["status"] for j in await deliveries(fc)] == ["done"]

            await until_true(first_recorded)
            await enqueue(fc, peer, 2, "second")
            await until(lambda: len(peer.arrivals) == 3)
        finally:
            w.stop()
            await asyncio.wait_for(task, 5)
        assert [a.answered for a in peer.arrivals] == [202, 202, 202]
        assert [(j["status"], j["attempts"]) for j in await deliveries(fc)] == [("done", 1)] * 3


async def test_freed_slot_is_refilled_while_a_request_hangs(make_instance: Any) -> None:
    """Given 8 slots, one per host, a hanging peer and a healthy peer with 4 queued jobs,
    when the worker runs with a 2 s request timeout, then the healthy jobs run one after
    the other before the hung request times out (no wait for a batch of slots)."""
    fc = await start_blog_without_worker(
        make_instance, federation={"delivery_concurrency": 8, "delivery_per_host": 1})
    async with peers("127.0.0.2", "127.0.0.3") as [hang, ok]:
        hang.hold = asyncio.Event()
        await enqueue(fc, hang, 1, "h")
        await enqueue(fc, ok, 4, "a")
        await worker(fc, request_timeout=2.0).run_until_idle()
        assert [a.answered for a in ok.arrivals] == [202] * 4
        assert len(hang.released) == 1
        assert max(a.loop_time for a in ok.arrivals) < min(hang.released)
        statuses = {(j["host"], j["status"]) for j in await deliveries(fc)}
        assert statuses == {("127.0.0.2", "pending"), ("127.0.0.3", "done")}


async def test_hung_request_leaves_its_slot_to_healthy_servers(make_instance: Any) -> None:
    """Given one slot, a server that never answers queued first and a healthy one with 3
    jobs, when the worker runs with a 30 s request timeout, then the healthy jobs are all
    delivered while the hung request still waits: a slow request gives its slot back."""
    fc = await start_blog_without_worker(
        make_instance, federation={"delivery_concurrency": 1, "delivery_per_host": 1})
    async with peers("127.0.0.2", "127.0.0.3") as [hang, ok]:
        hang.hold = asyncio.Event()
        await enqueue(fc, hang, 1, "h")
        await enqueue(fc, ok, 3, "a")
        w = worker(fc, request_timeout=30.0, grace=0.05)
        task = asyncio.create_task(w.run())
        try:
            await until(lambda: len(ok.arrivals) == 3)
            assert hang.waiting == 1 and hang.released == []
        finally:
            w.stop()
            await asyncio.wait_for(task, 5)
        assert [a.answered for a in ok.arrivals] == [202] * 3
        statuses = [(j["host"], j["status"], j["attempts"]) for j in await deliveries(fc)]
        assert statuses == [("127.0.0.2", "pending", 0)] + [("127.0.0.3", "done", 1)] * 3


async def test_slow_requests_wait_beside_the_slots_up_to_a_bound(make_instance: Any) -> None:
    """Given one slot and six servers that never answer, when the worker runs, then slow
    requests make room for the next ones only up to 1 + SLOW_PER_SLOT at once: the other
    jobs stay queued, untried."""
    fc = await start_blog_without_worker(make_instance, federation={"delivery_concurrency": 1})
    addresses = [f"127.0.0.{n}" for n in range(2, 8)]
    async with peers(*addresses) as hung:
        for peer in hung:
            peer.hold = asyncio.Event()
            await enqueue(fc, peer, 1, peer.address)
        w = worker(fc, request_timeout=30.0, grace=0.05)
        task = asyncio.create_task(w.run())
        bound = 1 + delivery.SLOW_PER_SLOT
        try:
            await until(lambda: sum(p.waiting for p in hung) == bound)
            with pytest.raises(TimeoutError):
                await until(lambda: sum(p.waiting for p in hung) > bound,
                            bound=4 * delivery.SLOW_MIN)
            assert len(w.in_flight) == bound
        finally:
            w.stop()
            await asyncio.wait_for(task, 5)
        assert [(j["status"], j["attempts"]) for j in await deliveries(fc)] == [
            ("pending", 0)] * 6
