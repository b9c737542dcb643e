"""How soon the worker acts: jobs committed while it waits start at once (not at the next
poll), and a freed slot is refilled at once (not after a batch of requests finished)."""

from __future__ import annotations

import asyncio
from typing import Any

from fedcomments.store import queue
from tests.helpers.blogkit import deliveries, start_blog, worker
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
    fc = await start_blog(make_instance)
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
    fc = await start_blog(make_instance, federation={"delivery_concurrency": 8,
                                                     "delivery_per_host": 1})
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
