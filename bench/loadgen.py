"""A closed-loop HTTP/1.1 load generator that runs in its own process.

Requests are serialised to bytes before the clock starts, and each connection is a tiny
keep-alive asyncio Protocol (no client library), so one core of load
generation comfortably outpaces one core of any Python server measured here. The work
runs in a spawned child process: on a 2-core machine the server under test gets one core
and the generator the other.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

#: Grace after the time limit for requests in flight; then they count as timeouts.
REQUEST_TIMEOUT = 60.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def raw(self, host: str) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {host}"]
        names = {k.lower() for k, _ in self.headers}
        lines += [f"{k}: {v}" for k, v in self.headers]
        if self.body or self.method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(self.body)}")
        if "connection" not in names:
            lines.append("Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass
class LoadResult:
    """What one load run saw: per-request latency (seconds) and status, in send order."""

    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    #: The first response body seen for each status (to check what was served).
    samples: dict[int, bytes] = field(default_factory=dict)
    #: Index into the request list of each completed request (same order as statuses).
    indexes: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.statuses)

    def merge(self, other: LoadResult, offset: int = 0) -> LoadResult:
        """Both runs as one (interleaved rounds of one measurement); `offset` shifts the
        other run's request indexes."""
        merged = LoadResult(
            elapsed=self.elapsed + other.elapsed,
            latencies=self.latencies + other.latencies,
            statuses=self.statuses + other.statuses,
            errors=self.errors + other.errors,
            samples={**other.samples, **self.samples},
            indexes=self.indexes + [i + offset for i in other.indexes],
        )
        return merged

    def ok(self, *codes: int) -> int:
        wanted = set(codes)
        return sum(1 for s in self.statuses if s in wanted)

    def rate(self, *codes: int) -> float:
        n = self.ok(*codes) if codes else self.count
        return n / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float, *codes: int) -> float:
        values = sorted(
            lat for lat, s in zip(self.latencies, self.statuses, strict=True)
            if not codes or s in codes
        )
        if not values:
            return float("nan")
        rank = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
        return values[rank]


class _Client(asyncio.Protocol):
    """One keep-alive connection sending jobs one after another (closed loop).

    A bare Protocol rather than streams: parsing a response costs a few bytes.find()
    calls, which keeps the generator several times cheaper per request than the servers.
    """

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.job: tuple[int, bytes, str] | None = None
        self.started = 0.0
        self.need = -1  # bytes still expected for the body (-1: headers not parsed yet)
        self.status = 0
        self.keep_alive = True
        self.chunked = False
        self.head_end = 0
        self.closed = pool.loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.pool.clients.add(self)
        self.send_next()

    def send_next(self) -> None:
        assert self.transport is not None
        job = self.pool.next_job()
        if job is None:
            self.job = None
            self.transport.close()
            return
        self.job = job
        self.buffer.clear()
        self.need = -1
        self.started = time.perf_counter()
        self.transport.write(job[1])

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            if self.need < 0 and not self._parse_head():
                return
        except ValueError as exc:
            self.pool.result.errors[f"bad response: {exc}"] += 1
            self.job = None
            assert self.transport is not None
            self.transport.close()
            return
        if self.chunked:
            body = _dechunk(self.buffer, self.head_end)
            if body is None:
                return
        elif len(self.buffer) - self.head_end < self.need:
            return
        else:
            body = bytes(self.buffer[self.head_end:self.head_end + self.need])
        self._done(body)

    def _parse_head(self) -> bool:
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buffer[:end]).decode("latin-1").lower()
        self.head_end = end + 4
        self.status = int(head[9:12])
        self.keep_alive = not head.startswith("http/1.0") and "connection: close" not in head
        self.chunked = "transfer-encoding: chunked" in head
        assert self.job is not None
        if self.job[2] == "HEAD" or self.status in (204, 304) or self.status < 200:
            self.need = 0
            self.chunked = False
        elif not self.chunked:
            at = head.find("content-length:")
            if at < 0:
                raise ValueError("response without Content-Length")
            line_end = head.find("\r\n", at)
            self.need = int(head[at + 15:line_end if line_end >= 0 else None])
        else:
            self.need = 0
        return True

    def _done(self, body: bytes) -> None:
        assert self.job is not None
        result = self.pool.result
        result.latencies.append(time.perf_counter() - self.started)
        result.statuses.append(self.status)
        result.indexes.append(self.job[0])
        if self.status not in result.samples:
            result.samples[self.status] = body
        if self.keep_alive:
            self.send_next()
        else:
            self.job = None
            assert self.transport is not None
            self.transport.close()
            self.pool.reconnect()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.job is not None:  # the server closed mid-request
            self.pool.result.errors["connection lost"] += 1
            self.job = None
            self.pool.reconnect()
        self.pool.clients.discard(self)
        if not self.closed.done():
            self.closed.set_result(None)


def _dechunk(buffer: bytearray, at: int) -> bytes | None:
    """The body of a complete chunked message from `at`, or None when more is needed."""
    parts = []
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";")[0].strip() or b"0", 16)
        start = line_end + 2
        if size == 0:
            return b"".join(parts) if buffer.find(b"\r\n", start) >= 0 else None
        if len(buffer) < start + size + 2:
            return None
        parts.append(bytes(buffer[start:start + size]))
        at = start + size + 2


class _Pool:
    """Hands jobs to connections until the jobs or the time run out."""

    def __init__(self, host: str, port: int, jobs: Iterator[tuple[int, bytes, str]],
                 deadline: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.host, self.port = host, port
        self.jobs = jobs
        self.deadline = deadline
        self.result = LoadResult()
        self.pending: set[asyncio.Future[None]] = set()
        self.clients: set[_Client] = set()

    def next_job(self) -> tuple[int, bytes, str] | None:
        if time.perf_counter() > self.deadline:
            return None
        return next(self.jobs, None)

    def reconnect(self) -> None:
        task = self.loop.create_task(self.connect())
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def connect(self) -> None:
        try:
            _, client = await self.loop.create_connection(
                lambda: _Client(self), self.host, self.port)
        except OSError as exc:
            self.result.errors[type(exc).__name__] += 1
            return
        await client.closed

    async def wait(self, limit: float) -> None:
        """Until every connection is done; after `limit` seconds the stragglers are cut."""
        end = self.loop.time() + limit
        while self.pending and self.loop.time() < end:
            await asyncio.wait(set(self.pending), timeout=end - self.loop.time())
        for client in list(self.clients):
            if client.job is not None:
                self.result.errors["timeout"] += 1
                client.job = None
            if client.transport is not None:
                client.transport.close()
        if self.pending:
            await asyncio.wait(set(self.pending), timeout=5)


async def _run(host: str, port: int, requests: Sequence[Request], total: int,
               concurrency: int, time_limit: float, grace: float) -> LoadResult:
    authority = f"{host}:{port}"
    raws = [(r.raw(authority), r.method) for r in requests]
    # One shared iterator: every request is sent once (or the list cycles up to `total`).
    jobs = ((i % len(raws), *raws[i % len(raws)]) for i in range(total))
    start = time.perf_counter()
    pool = _Pool(host, port, jobs, start + time_limit)
    for _ in range(concurrency):
        pool.reconnect()
    await pool.wait(time_limit + grace)
    pool.result.elapsed = time.perf_counter() - start
    return pool.result


def run_load_here(host: str, port: int, requests: Sequence[Request], *, total: int | None = None,
                  concurrency: int = 16, time_limit: float = 60.0,
                  grace: float = REQUEST_TIMEOUT) -> LoadResult:
    """Run a load in this process (blocking); `total` defaults to each request once (the
    list cycles when `total` is larger). No request starts after `time_limit` seconds;
    requests still running `grace` seconds later are cut and counted as timeouts."""
    count = len(requests) if total is None else total
    return asyncio.run(_run(host, port, list(requests), count, concurrency, time_limit, grace))


class LoadGenerator:
    """Runs loads in one spawned child process, kept for the whole benchmark."""

    def __init__(self) -> None:
        self._pool = ProcessPoolExecutor(max_workers=1,
                                         mp_context=multiprocessing.get_context("spawn"))

    async def run(self, host: str, port: int, requests: Sequence[Request], *,
                  total: int | None = None, concurrency: int = 16,
                  time_limit: float = 60.0, grace: float = REQUEST_TIMEOUT) -> LoadResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._pool, _child_run, host, port, list(requests), total, concurrency, time_limit,
            grace)

    async def warm(self) -> None:
        """Start the child (interpreter start-up is not part of any measurement)."""
        await asyncio.get_running_loop().run_in_executor(self._pool, _noop)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _child_run(host: str, port: int, requests: list[Request], total: int | None,
               concurrency: int, time_limit: float, grace: float) -> LoadResult:
    return run_load_here(host, port, requests, total=total, concurrency=concurrency,
                         time_limit=time_limit, grace=grace)


def _noop() -> None:
    return None

