"""`fedcomments worker` as a real process: kill -9 in the middle of a fan-out loses
nothing, and SIGTERM lets in-flight requests finish without marking anything unsent done."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from fedcomments.config import Settings, load_settings
from fedcomments.runtime import Runtime, open_runtime
from fedcomments.store import queue
from tests.helpers.peers import Arrival, Peer, peers, until, until_true

REPO = Path(__file__).resolve().parent.parent
CONCURRENCY = 8
ACTIVITY = "http://127.0.0.1:9/activities/create/fanout"


def _config(tmp_path: Path) -> tuple[Path, Settings]:
    """The worker's config file, and the same settings for the test's own runtime."""
    cfg = tmp_path / "worker.toml"
    cfg.write_text(
        '[server]\nbase_url = "http://127.0.0.1:9"\n'
        f'[storage]\ndatabase = "{tmp_path / "db.sqlite3"}"\n'
        "[federation]\nallow_private_addresses = true\n"
        f"delivery_concurrency = {CONCURRENCY}\ndelivery_per_host = 4\ndelivery_lease = 1\n"
        '[logging]\nlevel = "warning"\n'
    )
    return cfg, load_settings(cfg)


async def _start_worker(cfg: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fedcomments", "worker", "--config", str(cfg),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env)


async def _statuses(rt: Runtime) -> dict[str, int]:
    return await queue.counts(rt.db.read)


async def _all_done(rt: Runtime) -> bool:
    return (await _statuses(rt))["done"] == 200


async def test_kill_9_mid_fanout_loses_nothing(tmp_path: Path) -> None:
    """Given 200 jobs to loopback inboxes and a worker killed with SIGKILL while 8 requests
    hang, when a new worker starts, then every inbox ends with the activity (verified
    signature) and the duplicates are at most the 8 that were in flight."""
    cfg, settings = _config(tmp_path)
    addresses = [f"127.0.0.{n}" for n in range(2, 7)]
    async with open_runtime(settings) as rt, peers(*addresses) as remote:
        key = {rt.urls.key_id: rt.keys.public_pem}
        gate = asyncio.Event()
        arrived: list[tuple[str, Arrival]] = []

        def record(arrival: Arrival, peer: Peer, hold: bool) -> None:
            arrived.append((peer.url + arrival.path, arrival))
            if hold and len(arrived) > 60 and not gate.is_set():
                peer.hold = gate

        inboxes: list[str] = []
        for peer in remote:
            peer.known_keys.update(key)
            peer.on_arrival = lambda a, p=peer: record(a, p, True)
            inboxes += [f"{peer.url}/users/u{n}/inbox" for n in range(40)]
        async with rt.db.transaction() as tx:
            assert await queue.enqueue_many(tx, activity_id=ACTIVITY, inboxes=inboxes,
                                            body=b'{"type":"Create"}', now=rt.now()) == 200

        first = await _start_worker(cfg)
        await until(lambda: sum(p.waiting for p in remote) == CONCURRENCY, bound=20)
        in_flight = sum(p.waiting for p in remote)
        first.kill()
        assert await first.wait() == -signal.SIGKILL
        for peer in remote:
            peer.on_arrival = lambda a, p=peer: record(a, p, False)
        gate.set()
        done_before = (await _statuses(rt))["done"]
        assert 50 <= done_before <= 200 - in_flight

        second = await _start_worker(cfg)
        try:
            await until(lambda: len({url for url, _ in arrived}) == 200, bound=30)
            await until_true(lambda: _all_done(rt), bound=10)
        finally:
            second.send_signal(signal.SIGTERM)
            stderr = (await second.communicate())[1].decode()
        assert second.returncode == 0, stderr
        assert {url for url, _ in arrived} == set(inboxes)
        assert all(a.verified and a.scheme == "cavage" for _, a in arrived)
        duplicates = len(arrived) - 200
        assert 0 <= duplicates <= in_flight == CONCURRENCY
        assert await _statuses(rt) == {"pending": 0, "done": 200, "failed": 0, "gone": 0,
                                       "cancelled": 0}


async def test_sigterm_finishes_in_flight_requests(tmp_path: Path) -> None:
    """Given a worker process with requests in flight, when it gets SIGTERM and the peer
    then answers, then it exits 0, the answered jobs are done, and every other job is back
    in the queue untouched: nothing is done without a 2xx."""
    cfg, settings = _config(tmp_path)
    async with open_runtime(settings) as rt, peers("127.0.0.2") as [peer]:
        peer.known_keys[rt.urls.key_id] = rt.keys.public_pem
        peer.hold = asyncio.Event()
        inboxes = [f"{peer.url}/users/u{n}/inbox" for n in range(10)]
        async with rt.db.transaction() as tx:
            await queue.enqueue_many(tx, activity_id=ACTIVITY, inboxes=inboxes, body=b"{}",
                                     now=rt.now())
        worker = await _start_worker(cfg)
        await until(lambda: peer.waiting == 4, bound=20)
        worker.send_signal(signal.SIGTERM)
        peer.hold.set()
        async with asyncio.timeout(15):
            stderr = (await worker.communicate())[1].decode()
        assert worker.returncode == 0, stderr
        rows = await rt.db.read.fetchall(
            "SELECT inbox, status, attempts, locked_until FROM deliveries ORDER BY id")
        answered = {f"{peer.url}{a.path}" for a in peer.arrivals if a.answered == 202}
        done = {r["inbox"] for r in rows if r["status"] == "done"}
        assert len(done) >= 4 and done == answered
        assert {(r["status"], r["attempts"], r["locked_until"]) for r in rows
                if r["inbox"] not in done} <= {("pending", 0, None)}
