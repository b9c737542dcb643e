"""The delivery worker: claim due jobs with a lease → sign afresh → POST → classify → record.

A global and a per-host limit keep one slow server from holding up the others; a request
that stays unanswered far longer than usual gives its slot back (it keeps waiting, up to
a bound); a per-host breaker pauses servers that keep failing; on shutdown in-flight
requests get a grace period and whatever is still running goes back to the queue
untouched.

The queue is worked in passes, each one trip to the SQLite writer thread (a unit of
work): record the outcomes that came in, renew leases, claim the next jobs. A request
holds its slot until its outcome is written, so after a crash at most
`delivery_concurrency` deliveries (and the slow ones) are sent again. Passes follow each
other as long as requests finish: every pass writes all the outcomes that came in while
the previous one ran, and claims jobs ahead, which wait in memory for a slot.
`attempt` makes one attempt; `queue_pass` is the pass on the writer thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import statistics
from collections import Counter, deque
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from fedcomments.delivery.attempt import Attempt, attempt, is_blocked
from fedcomments.delivery.channels import CHANNELS
from fedcomments.delivery.queue_pass import PassWriter, Plan
from fedcomments.model import DeliveryJob, JobKind
from fedcomments.runtime import Runtime
from fedcomments.services import deliveries, publish
from fedcomments.store import queue

log = logging.getLogger("fedcomments.delivery")

#: How often an idle worker looks for due jobs (seconds of real time).
POLL_INTERVAL = 0.5
#: How often a worker with free slots checks whether anything was committed (seconds): jobs
#: enqueued by this process or another one start then, not at the next poll.
WATCH_INTERVAL = 0.05
#: Blocks added by another process are picked up at most this late (seconds); the admin
#: commands cancel the pending jobs themselves, and every attempt checks the blocklist.
BLOCKLIST_REFRESH = 1.0
#: How often scheduled posts are checked for having become due (seconds).
DUE_POSTS_INTERVAL = 15.0
#: Deadline of one attempt, double knock included (seconds).
REQUEST_TIMEOUT = 30.0
#: How long in-flight requests may finish after a stop before they are given back.
SHUTDOWN_GRACE = 10.0
#: How often jobs to hosts marked unavailable are failed in bulk.
UNAVAILABLE_CHECK = timedelta(seconds=10)
#: A request is slow once it has run SLOW_FACTOR times the median of recent answers, and
#: at least SLOW_MIN seconds: it then stops counting against the concurrency (a hung
#: server must not hold up the healthy ones for the whole request timeout). Slow
#: requests keep waiting for their answer, up to SLOW_PER_SLOT per slot at once.
SLOW_FACTOR = 8
SLOW_MIN = 0.25
SLOW_PER_SLOT = 3
_DURATIONS = 256

class DeliveryWorker:
    """Runs deliveries for one process; several workers may share a database safely.

    `run()` is the long-running loop (serve, `fedcomments worker`); `run_once()` and
    `run_until_idle()` drive it by hand. Do not mix them on one instance concurrently.
    """

    def __init__(
        self,
        rt: Runtime,
        *,
        concurrency: int | None = None,
        per_host: int | None = None,
        lease: float | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        poll_interval: float = POLL_INTERVAL,
        grace: float = SHUTDOWN_GRACE,
        rng: random.Random | None = None,
    ) -> None:
        fed = rt.settings.federation
        self.rt = rt
        self.concurrency = concurrency or fed.delivery_concurrency
        self.per_host = per_host or fed.delivery_per_host
        self.lease = timedelta(seconds=lease or fed.delivery_lease)
        self.request_timeout = request_timeout
        self.poll_interval = poll_interval
        self.grace = grace
        self._writer = PassWriter(lease=self.lease, per_host=self.per_host,
                                  rng=rng or random.Random(),
                                  blocked=functools.partial(is_blocked, rt))
        #: Claimed (leased) jobs waiting for a slot, oldest first.
        self._ready: deque[DeliveryJob] = deque()
        self._tasks: dict[asyncio.Task[Attempt], DeliveryJob] = {}
        self._began: dict[asyncio.Task[Attempt], float] = {}
        self._timers: dict[asyncio.Task[Attempt], asyncio.TimerHandle] = {}
        self._slow: set[asyncio.Task[Attempt]] = set()
        self._durations: deque[float] = deque(maxlen=_DURATIONS)
        self._slow_after = SLOW_MIN
        self._answered = 0
        #: Jobs claimed or running, per host; slots of those hosts (1 while half-open).
        self._load: Counter[str] = Counter()
        self._limits: dict[str, int] = {}
        self._finished: list[Attempt] = []
        self._released: list[int] = []
        self._unrecorded: list[Attempt] = []
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._last_renew: datetime | None = None
        self._last_due_check: float | None = None
        self._last_refresh: float | None = None
        self._last_summary: datetime | None = None
        self._last_unavailable_check: datetime | None = None

    @property
    def in_flight(self) -> list[DeliveryJob]:
        return list(self._tasks.values())

    # --- driving ---------------------------------------------------------------------

    async def run_once(self) -> int:
        """Record finished attempts, then claim what is due and start what fits; returns
        the number of jobs started."""
        self._wake.clear()
        attempts = [*self._unrecorded, *self._finished]
        released = self._released
        self._unrecorded, self._finished, self._released = [], [], []
        now = self.rt.now()
        renew = self._renew_due(now)
        want = self._room()
        if not attempts and not released and not renew and (
                want <= 0 or not await queue.any_due(self.rt.db.read, now)):
            return self._fill()
        check = self._last_unavailable_check is None or (
            now - self._last_unavailable_check >= UNAVAILABLE_CHECK)
        plan = Plan(now=now, attempts=attempts, released=released,
                    renew=[j.id for j in (*self._tasks.values(), *self._ready)] if renew else [],
                    want=want, load=Counter(self._load), limits=dict(self._limits),
                    fail_unavailable=check)
        try:
            done = await self.rt.db.unit(functools.partial(self._writer.run, plan=plan))
        except BaseException:
            # Nothing was written: keep the outcomes for the next pass (the leases cover
            # the jobs meanwhile).
            self._unrecorded = attempts
            self._released += released
            raise
        if check:
            self._last_unavailable_check = now
        claimed = {j.host for j in done.jobs}
        for host, slots in done.limits.items():
            if host in self._load or host in claimed:
                self._limits[host] = slots
        self._hold_back({h for h, slots in done.limits.items() if slots == 0})
        for job in done.jobs:
            self._load[job.host] += 1
        self._ready.extend(done.jobs)
        if done.jobs and self._last_renew is None:
            self._last_renew = now
        return self._fill()

    async def run_until_idle(self) -> None:
        """Deliver until nothing is due and nothing is in flight (tests, one-shot runs)."""
        await publish.federate_due_posts(self.rt)
        while True:
            await self.rt.refresh_shared()
            started = await self.run_once()
            if not self._tasks and not self._ready:
                if started == 0 and not (self._finished or self._unrecorded or self._released):
                    return
                continue
            await self._wait(None)

    async def run(self) -> None:
        """The worker loop, until `stop()`; then drain (see `SHUTDOWN_GRACE`)."""
        loop = asyncio.get_running_loop()
        try:
            while not self._stop.is_set():
                version: int | None = None
                try:
                    if self._watching():
                        # Read before the pass: whatever is committed from here on (by
                        # another task, another process, or this pass itself) ends the
                        # wait below early.
                        version = await self.rt.db.data_version()
                    if self._last_refresh is None or (
                            loop.time() - self._last_refresh >= BLOCKLIST_REFRESH):
                        self._last_refresh = loop.time()
                        await self.rt.refresh_shared()
                    await self._chores()
                    await self.run_once()
                    if version is None and self._watching():
                        # All claimed jobs ended within the pass: watch from here on.
                        version = await self.rt.db.data_version()
                except Exception:
                    # Task boundary: a failed pass (database busy, disk full) is logged and
                    # tried again after a pause, never at once: a lasting fault must not
                    # become a loop that fills the log. Leases keep the claimed jobs safe.
                    log.exception("delivery pass failed")
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), self.poll_interval)
                    continue
                await self._wait(self.poll_interval, version)
        finally:
            await self.drain()

    async def _wait(self, patience: float | None, version: int | None = None) -> None:
        """Wait until a pass is worth making: a request finished, a slow one left its
        slot free, something was committed to the database (new jobs, from this process
        or another) while there is room, `patience` ran out, or a stop was asked.
        """
        loop = asyncio.get_running_loop()
        deadline = None if patience is None else loop.time() + patience
        while not self._wake.is_set() and not self._stop.is_set():
            if patience is None and not self._tasks:
                return
            now = loop.time()
            left = None if deadline is None else deadline - now
            watch = version is not None and self._watching()
            if watch:
                left = WATCH_INTERVAL if left is None else min(left, WATCH_INTERVAL)
            if left is not None and left <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), left)
            if watch and not self._wake.is_set() and await self._committed_since(version):
                return

    async def _committed_since(self, version: int | None) -> bool:
        try:
            return await self.rt.db.data_version() != version
        except Exception:  # the pass that follows logs what is wrong with the database
            return True

    def stop(self) -> None:
        """Ask `run()` to finish: no new claims, in-flight work gets the grace period."""
        self._stop.set()
        self._wake.set()

    async def drain(self) -> None:
        """Let in-flight requests finish (up to the grace period), give the rest back."""
        self._stopping = True
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=self.grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in [t for t in self._tasks if t.done()]:
            self._finish(task)
        while self._ready:
            job = self._ready.popleft()
            self._released.append(job.id)
            self._unload(job.host)
        attempts = [*self._unrecorded, *self._finished]
        released = self._released
        self._unrecorded, self._finished, self._released = [], [], []
        if not attempts and not released:
            return
        plan = Plan(now=self.rt.now(), attempts=attempts, released=released, renew=[],
                    want=0, load=Counter(), limits={}, fail_unavailable=False)
        try:
            await self.rt.db.unit(functools.partial(self._writer.run, plan=plan))
        except Exception:
            log.exception("could not record the last deliveries; their leases will expire")
        if released:
            log.info("returned unfinished deliveries to the queue", extra={"jobs": len(released)})

    async def _chores(self) -> None:
        loop = asyncio.get_running_loop()
        if self._last_due_check is None or loop.time() - self._last_due_check >= DUE_POSTS_INTERVAL:
            self._last_due_check = loop.time()
            await publish.federate_due_posts(self.rt)
        now = self.rt.now()
        if self._last_summary is None or now - self._last_summary >= deliveries.SUMMARY_INTERVAL:
            self._last_summary = now
            await deliveries.log_summary(self.rt)

    def _renew_due(self, now: datetime) -> bool:
        """Leases of claimed jobs are pushed forward every third of the lease."""
        if not self._tasks and not self._ready:
            self._last_renew = None
            return False
        if self._last_renew is None:
            self._last_renew = now
        if now - self._last_renew < self.lease / 3:
            return False
        self._last_renew = now
        return True

    # --- slots -----------------------------------------------------------------------

    def _busy(self) -> int:
        """Slots taken: requests running (slow ones aside) and outcomes not yet written."""
        return (len(self._tasks) - len(self._slow) + len(self._finished)
                + len(self._unrecorded))

    def _room(self) -> int:
        """How many more jobs to claim: enough to refill every slot once more."""
        if self._stopping:
            return 0
        room = 2 * self.concurrency - self._busy() - len(self._ready)
        bound = self.concurrency * (1 + SLOW_PER_SLOT) - len(self._tasks) - len(self._ready)
        return max(0, min(room, bound))

    def _watching(self) -> bool:
        """Nothing claimed is waiting and a slot is free: new jobs would start at once."""
        return not self._ready and self._room() > 0

    def _fill(self) -> int:
        """Start claimed jobs while slots are free; returns how many started."""
        started = 0
        cap = self.concurrency * (1 + SLOW_PER_SLOT)
        while (self._ready and not self._stopping and len(self._tasks) < cap
               and self._busy() < self.concurrency):
            self._start(self._ready.popleft())
            started += 1
        return started

    def _start(self, job: DeliveryJob) -> None:
        loop = asyncio.get_running_loop()
        # Webhooks, mails and spam-service calls share the queue; deliveries stay a
        # straight call.
        run = attempt if job.kind is JobKind.ACTIVITY else CHANNELS[job.kind]
        task = asyncio.create_task(run(self.rt, job, seconds=self.request_timeout),
                                   name=f"delivery-{job.id}")
        self._tasks[task] = job
        self._began[task] = loop.time()
        self._timers[task] = loop.call_later(self._slow_after, self._mark_slow, task)
        task.add_done_callback(self._finish)

    def _mark_slow(self, task: asyncio.Task[Attempt]) -> None:
        if task in self._tasks and not task.done():
            self._slow.add(task)
            self._fill()
            if not self._ready:
                self._wake.set()

    def _finish(self, task: asyncio.Task[Attempt]) -> None:
        """A request ended: its slot is free once the next pass has written the outcome."""
        job = self._tasks.pop(task, None)
        if job is None:
            return
        self._timers.pop(task).cancel()
        began = self._began.pop(task)
        slow = task in self._slow
        self._slow.discard(task)
        self._unload(job.host)
        if task.cancelled():
            self._released.append(job.id)
        else:
            self._finished.append(task.result())
            if not slow:
                self._note_duration(asyncio.get_running_loop().time() - began)
        self._fill()
        self._wake.set()

    def _hold_back(self, paused: set[str]) -> None:
        """Claimed jobs of hosts that were just paused go back to the queue unsent."""
        if not paused or not self._ready:
            return
        keep: deque[DeliveryJob] = deque()
        for job in self._ready:
            if job.host in paused:
                self._released.append(job.id)
                self._unload(job.host)
            else:
                keep.append(job)
        self._ready = keep

    def _unload(self, host: str) -> None:
        self._load[host] -= 1
        if self._load[host] <= 0:
            del self._load[host]
            self._limits.pop(host, None)

    def _note_duration(self, seconds: float) -> None:
        self._durations.append(seconds)
        self._answered += 1
        if self._answered % 32 == 0:
            self._slow_after = max(SLOW_MIN, SLOW_FACTOR * statistics.median(self._durations))


# --- outside the worker ----------------------------------------------------------------


@contextlib.asynccontextmanager
async def running_worker(rt: Runtime, **options: float) -> AsyncIterator[DeliveryWorker]:
    """A worker running in the background for the duration of the block (used by serve)."""
    worker = DeliveryWorker(rt, **options)  # type: ignore[arg-type]
    task = asyncio.create_task(worker.run(), name="delivery-worker")
    try:
        yield worker
    finally:
        worker.stop()
        await task
