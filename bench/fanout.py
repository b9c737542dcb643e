"""Fan-out: publish a post to 10,000 followers spread over 2,000 shared inboxes.

    python bench/fanout.py [--quick]

Every shared inbox is its own host on the loopback interface (127.0.A.B, one port), so
the delivery worker's per-host limits behave as they would with 2,000 servers. Each
inbox verifies the draft-cavage signature with the blog's public key before it counts a
delivery. Reported: time until every inbox has the Create and deliveries per second,
against the floor of raw RSA-2048 signatures per second measured in the same run; then a
second post with 10 % of the inboxes answering 500 and 1 % never answering, and how long
the healthy inboxes took compared with the fault-free run.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any, cast

import common
from common import Report, Server, ratio
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from multidict import CIMultiDict


@dataclass(frozen=True)
class Sizes:
    followers: int
    inboxes: int
    wait: float  # seconds allowed for one fan-out to complete


QUICK = Sizes(followers=2_000, inboxes=400, wait=90)
FULL = Sizes(followers=10_000, inboxes=2_000, wait=300)
FAILING_EVERY = 10  # every 10th inbox answers 500 in the fault run
HANGING_EVERY = 100  # every 100th never answers (until the run ends)


def address(i: int) -> str:
    """The loopback address of inbox i: 127.0.1.1, 127.0.1.2, … (250 per /24)."""
    return f"127.0.{1 + i // 250}.{1 + i % 250}"


@dataclass
class Inboxes:
    """n shared inboxes, one per loopback address, verifying every delivery.

    Each is a bare asyncio Protocol speaking just enough keep-alive HTTP/1.1 (as
    `loadgen.py` does on the other side of the inbox benchmark): on this machine the
    inboxes share the cores with the server, and what they spend is the benchmark's
    cost, not ours. They still check every signature and digest with the blog's key.
    """

    n: int
    port: int
    public_key: Any = None
    modes: dict[int, str] = field(default_factory=dict)  # index → "fail" | "hang"
    arrivals: dict[str, dict[int, float]] = field(default_factory=dict)  # object → inbox → t
    counts: Counter[tuple[str, int]] = field(default_factory=Counter)
    served: Counter[str] = field(default_factory=Counter)
    watch: tuple[str, set[int], asyncio.Event] | None = None
    servers: list[asyncio.Server] = field(default_factory=list)
    held: list[asyncio.Transport] = field(default_factory=list)
    #: Seconds the admin request took (post stored, deliveries queued), per post slug.
    answered: dict[str, float] = field(default_factory=dict)
    _missing: set[int] = field(default_factory=set)

    async def start(self) -> Inboxes:
        loop = asyncio.get_running_loop()
        for i in range(self.n):
            self.servers.append(await loop.create_server(
                lambda i=i: InboxProtocol(self, i), address(i), self.port, backlog=64))
        return self

    def expect(self, object_id: str, wanted: set[int], done: asyncio.Event) -> None:
        self.watch = (object_id, wanted, done)
        self._missing = set(wanted) - set(self.arrivals.get(object_id, {}))

    def release(self) -> None:
        """End the hanging requests (the run is over)."""
        for transport in self.held:
            transport.close()
        self.held.clear()

    async def close(self) -> None:
        self.release()
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()

    def receive(self, i: int, method: str, target: str, headers: CIMultiDict[str],
                body: bytes) -> tuple[int, bytes] | None:
        """The answer to one request (None: never answer)."""
        mode = self.modes.get(i)
        if mode == "fail":
            self.served["500"] += 1
            return 500, b"down for maintenance"
        if mode == "hang":
            self.served["hung"] += 1
            return None
        try:
            common.verify_cavage(self.public_key, method, target, headers, body)
        except Exception:  # any failure to verify is a refused delivery
            self.served["401"] += 1
            return 401, b"signature did not verify"
        doc = json.loads(body)
        obj = doc.get("object")
        object_id = obj.get("id") if isinstance(obj, dict) else obj
        self.counts[(object_id, i)] += 1
        self.served["202"] += 1
        self.arrivals.setdefault(object_id, {}).setdefault(i, time.perf_counter())
        if self.watch is not None and self.watch[0] == object_id:
            self._missing.discard(i)
            if not self._missing:
                self.watch[2].set()
        return 202, b""


class InboxProtocol(asyncio.Protocol):
    """One connection to inbox `index`: requests parsed from the stream, one at a time."""

    def __init__(self, inboxes: Inboxes, index: int) -> None:
        self.inboxes = inboxes
        self.index = index
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
            headers: CIMultiDict[str] = CIMultiDict()
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers.add(name.strip(), value.strip())
            size = int(headers.get("Content-Length", "0"))
            if len(self.buffer) < end + 4 + size:
                return
            body = bytes(self.buffer[end + 4:end + 4 + size])
            del self.buffer[:end + 4 + size]
            method, target, _ = lines[0].split(" ", 2)
            answer = self.inboxes.receive(self.index, method, target, headers, body)
            if answer is None:
                self.inboxes.held.append(self.transport)
                self.transport = None
                return
            status, text = answer
            self.transport.write(f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
                                 f"Content-Length: {len(text)}\r\n\r\n".encode() + text)


@dataclass
class LagMonitor:
    """How late this process's event loop wakes up: if the fake inboxes' own loop lagged,
    the benchmark, not the server, would be the bottleneck."""

    lags: list[float] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(100_000):  # bounded: 10 ms ticks, stopped by stop() long before
            start = loop.time()
            await asyncio.sleep(0.01)
            self.lags.append(loop.time() - start - 0.01)

    def stop(self) -> str:
        if self.task is not None:
            self.task.cancel()
        if not self.lags:
            return "n/a"
        ordered = sorted(self.lags)
        return (f"p50 {ordered[len(ordered) // 2] * 1000:.1f} ms, "
                f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.1f} ms, "
                f"max {ordered[-1] * 1000:.0f} ms")


def loop_cpu_seconds(pid: int) -> float:
    """CPU time of a process's main thread (its event loop), from /proc."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def signing_floor(key: Any, seconds: float) -> float:
    """Raw RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second, one thread."""
    base = ("(request-target): post /inbox\nhost: 127.0.1.1:8080\n"
            "date: Wed, 01 May 2024 08:00:00 GMT\ndigest: SHA-256=" + "A" * 44 +
            "\ncontent-type: application/activity+json").encode()
    n = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        for _ in range(20):
            key.sign(base, padding.PKCS1v15(), hashes.SHA256())
        n += 20
    return n / (time.perf_counter() - start)


async def seed_followers(server: Server, sizes: Sizes, port: int) -> str:
    """Followers through the store layer; returns the blog's public key PEM."""
    from fedcomments.runtime import open_runtime
    from fedcomments.store import actors as actor_store
    from fedcomments.store.actors import ActorFields

    async with open_runtime(common.settings_object(server.config)) as rt:
        now = datetime.now(UTC)
        async with rt.db.transaction() as tx:
            for j in range(sizes.followers):
                host = f"{address(j % sizes.inboxes)}:{port}"
                actor = f"http://{host}/users/f{j}"
                actor_id = await actor_store.upsert(tx, ActorFields(
                    ap_id=actor, domain=address(j % sizes.inboxes), type="Person",
                    username=f"f{j}", name=f"Follower {j}", summary=None, url=actor, icon=None,
                    inbox=f"{actor}/inbox", shared_inbox=f"http://{host}/inbox",
                    followers_url=f"{actor}/followers"), now)
                await actor_store.add_follower(tx, actor_id, f"{actor}#follows/1", now)
        return rt.keys.public_pem


async def publish(server: Server, inboxes: Inboxes, slug: str, healthy: set[int],
                  wait: float) -> tuple[str, float, float | None]:
    """Add a post: (its id, when the request was sent, seconds until every inbox in
    `healthy` had its Create or None on timeout)."""
    done = asyncio.Event()
    ap_id = f"{server.url}/posts/{slug}"
    inboxes.expect(ap_id, healthy, done)
    start = time.perf_counter()
    post = await server.admin("POST", "/api/v1/admin/posts", {
        "url": f"https://blog.example/{slug}/", "title": f"Post {slug}"})
    assert post["ap_id"] == ap_id, post
    inboxes.answered[slug] = time.perf_counter() - start
    try:
        await asyncio.wait_for(done.wait(), wait)
    except TimeoutError:
        return ap_id, start, None
    return ap_id, start, max(inboxes.arrivals[ap_id][i] for i in healthy) - start


def bind_port(n: int) -> int:
    """A port free on the first and last loopback address used."""
    import socket

    for _ in range(20):
        port = common.free_port()
        try:
            for addr in {address(0), address(n - 1)}:
                with socket.socket() as s:
                    s.bind((addr, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port on the loopback addresses")


async def run(args: Any) -> Report:
    sizes = QUICK if args.quick else FULL
    report = Report(f"Fan-out: a post to {sizes.followers:,} followers over "
                    f"{sizes.inboxes:,} shared inboxes")
    with common.workdir(args.keep) as tmp:
        server = Server.prepare(tmp / "ours")
        port = bind_port(sizes.inboxes)
        common.progress(f"seeding {sizes.followers:,} followers; opening {sizes.inboxes:,} "
                        "inboxes")
        pem = await seed_followers(server, sizes, port)
        inboxes = Inboxes(sizes.inboxes, port, serialization.load_pem_public_key(pem.encode()))
        await inboxes.start()
        floor_key = common.rsa_keys(1)[0]
        try:
            await server.start()
            everyone = set(range(sizes.inboxes))
            common.progress("signing floor")
            sign_rate = await asyncio.to_thread(signing_floor, floor_key, 3 if args.quick else 5)
            common.progress("fan-out without faults")
            lag = LagMonitor()
            lag.start()
            cpu0, own0 = common.cpu_seconds(server.pid), time.process_time()
            loop0 = loop_cpu_seconds(server.pid)
            first, first_start, clean = await publish(server, inboxes, "launch", everyone,
                                                      sizes.wait)
            cpu = common.cpu_seconds(server.pid) - cpu0
            loop_cpu = loop_cpu_seconds(server.pid) - loop0
            own = time.process_time() - own0
            lag_text = lag.stop()
            for i in everyone:
                if i % HANGING_EVERY == 7:
                    inboxes.modes[i] = "hang"
                elif i % FAILING_EVERY == 3:
                    inboxes.modes[i] = "fail"
            healthy = everyone - set(inboxes.modes)
            common.progress("fan-out with failing and hanging inboxes")
            second, second_start, faulty = await publish(server, inboxes, "followup", healthy,
                                                         sizes.wait)
            sign_after = await asyncio.to_thread(signing_floor, floor_key, 2)
            inboxes.release()
            rss = server.rss_mb()
        finally:
            inboxes.release()
            await server.stop()
            await inboxes.close()

    if clean is None:
        got = len(inboxes.arrivals.get(first, {}))
        report.add("fan-out without faults", f"timed out: {got} of {sizes.inboxes} inboxes "
                   f"after {sizes.wait:.0f} s", "", "")
    else:
        rate = sizes.inboxes / clean
        report.add("time until every inbox has the Create", f"{clean:.2f} s")
        report.add("deliveries/s (signed, POSTed, verified)", f"{rate:,.0f}/s",
                   f"RSA-2048 signing {sign_rate:,.0f}/s", ratio(rate, sign_rate))
        report.add("server CPU per delivery", f"{cpu / sizes.inboxes * 1e3:.2f} ms",
                   f"one signature {1e3 / sign_rate:.2f} ms",
                   ratio(cpu / sizes.inboxes, 1 / sign_rate, percent=False))
        report.add("… of which the event loop's thread", f"{loop_cpu / sizes.inboxes * 1e3:.2f} ms",
                   "(the rest: signing and SQLite threads)")
        # Below 100 %, the worker waits on something other than the CPU.
        report.add("server CPU busy during the fan-out", f"{cpu / clean * 100:.0f} % of a core")
        # The fake inboxes share the machine: their cost is the benchmark's, not ours.
        report.add("benchmark's CPU per delivery (fake inboxes, verify)",
                   f"{own / sizes.inboxes * 1e3:.2f} ms",
                   f"{own / clean * 100:.0f} % of a core")
    if faulty is None:
        got = len(set(inboxes.arrivals.get(second, {})) & healthy)
        report.add("healthy inboxes with faults present",
                   f"timed out: {got} of {len(healthy)} after {sizes.wait:.0f} s", "", "")
    elif clean is not None:
        # Both from the admin request to the last arrival among the same healthy inboxes.
        clean_subset = max(inboxes.arrivals[first][i] for i in healthy) - first_start
        report.add(f"healthy inboxes done ({len(healthy):,}), with faults",
                   f"{faulty:.2f} s", f"without faults {clean_subset:.2f} s",
                   ratio(faulty, clean_subset, percent=False))
    if clean is not None and faulty is not None:
        def spread(object_id: str, start: float) -> str:
            times = sorted(inboxes.arrivals[object_id][i] - start for i in healthy)
            return " / ".join(f"{times[int(q * (len(times) - 1))]:.2f}" for q in (0.1, 0.5, 0.9, 1))
        report.note("healthy inboxes served after 10 / 50 / 90 / 100 % of them, in seconds: "
                    f"without faults {spread(first, first_start)}, "
                    f"with faults {spread(second, second_start)}")
    dupes = sum(1 for n in inboxes.counts.values() if n > 1)
    report.add("deliveries verified and counted once", f"{sum(inboxes.counts.values()):,}",
               f"duplicates {dupes}", "")
    report.add("server RSS after both fan-outs", f"{rss:.0f} MB")
    modes = Counter(inboxes.modes.values())
    report.note(f"fault run: {modes['fail']} inboxes answer 500, {modes['hang']} never answer "
                f"(until the run ends); inbox answers served: {dict(inboxes.served)}")
    report.note("the admin request that adds the post (stored, deliveries queued) took "
                + ", ".join(f"{t * 1000:.0f} ms" for t in inboxes.answered.values())
                + "; the times above include it")
    report.note(f"signing floor re-measured after the runs: {sign_after:,.0f}/s "
                f"(before: {sign_rate:,.0f}/s)")
    report.note("server defaults: [federation] delivery_concurrency 32, delivery_per_host 4; "
                "2 signing threads; timings include the worker noticing the new jobs "
                "(it checks for commits every 50 ms)")
    report.note(f"event-loop lag of the process hosting the inboxes, fault-free run: {lag_text}")
    return report


def main() -> int:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    asyncio.run(run(args)).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
