"""The delivery worker: claim due jobs with a lease → sign afresh → POST → classify → record.

A global and a per-host limit keep one slow server from holding up the others; a per-host
breaker pauses servers that keep failing; on shutdown in-flight requests get a grace period
and whatever is still running goes back to the queue untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fedcomments import delivery_policy as policy
from fedcomments.model import DeliveryJob, DeliveryStatus
from fedcomments.netguard import RefusalReason
from fedcomments.remote import FetchFailed, FetchRefused, PostResult
from fedcomments.runtime import Runtime
from fedcomments.services import deliveries, publish
from fedcomments.store import queue
from fedcomments.store.db import Conn

log = logging.getLogger("fedcomments.delivery")

#: How often an idle worker looks for due jobs (seconds of real time).
POLL_INTERVAL = 0.5
#: How often a worker with free slots checks whether anything was committed (seconds): jobs
#: enqueued by this process or another one start then, not at the next poll.
WATCH_INTERVAL = 0.05
#: How often scheduled posts are checked for having become due (seconds).
DUE_POSTS_INTERVAL = 15.0
#: Deadline of one attempt, double knock included (seconds).
REQUEST_TIMEOUT = 30.0
#: How long in-flight requests may finish after a stop before they are given back.
SHUTDOWN_GRACE = 10.0
#: How often jobs to hosts marked unavailable are failed in bulk.
UNAVAILABLE_CHECK = timedelta(seconds=10)
_ERROR_EXCERPT = 200


@dataclass(frozen=True)
class Attempt:
    """What one attempt at a job produced."""

    job: DeliveryJob
    status: int | None = None
    retry_after: str | None = None
    error: str | None = None
    #: No request was made: the inbox is blocked.
    blocked: bool = False
    #: The address guard refused the URL: retrying cannot help.
    refused: bool = False


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
        self._rng = rng or random.Random()
        self._tasks: dict[asyncio.Task[Attempt], DeliveryJob] = {}
        self._load: Counter[str] = Counter()
        #: Slots of hosts with jobs in flight (1 while the breaker is half-open).
        self._limits: dict[str, int] = {}
        self._unrecorded: list[Attempt] = []
        self._stop = asyncio.Event()
        self._stopping = False
        self._last_renew: datetime | None = None
        self._last_due_check: float | None = None
        self._last_summary: datetime | None = None
        self._last_unavailable_check: datetime | None = None

    @property
    def in_flight(self) -> list[DeliveryJob]:
        return list(self._tasks.values())

    # --- driving ---------------------------------------------------------------------

    async def run_once(self) -> int:
        """Record finished attempts, then claim and start what is due; returns jobs started."""
        await self.rt.refresh_blocklist()
        finished, released = self._collect()
        attempts = [*self._unrecorded, *finished]
        self._unrecorded = []
        now = self.rt.now()
        renew = self._renew_due(now)
        free = 0 if self._stopping else self.concurrency - len(self._tasks)
        if not attempts and not released and not renew and (
                free <= 0 or not await queue.any_due(self.rt.db.read, now)):
            return 0
        try:
            async with self.rt.db.transaction() as tx:
                await self._record(tx, attempts, now)
                await queue.release(tx, released)
                if renew:
                    await queue.renew(tx, [j.id for j in self._tasks.values()], now + self.lease)
                jobs = await self._claim(tx, now, free) if free > 0 else []
        except BaseException:
            # Nothing was written: keep the outcomes for the next pass (the leases cover
            # the jobs meanwhile).
            self._unrecorded = attempts
            raise
        for job in jobs:
            self._start(job)
        if jobs and self._last_renew is None:
            self._last_renew = now
        return len(jobs)

    async def run_until_idle(self) -> None:
        """Deliver until nothing is due and nothing is in flight (tests, one-shot runs)."""
        await publish.federate_due_posts(self.rt)
        while True:
            started = await self.run_once()
            if not self._tasks:
                if started == 0 and not self._unrecorded:
                    return
                continue
            await self._wait_for_slots(None)

    async def run(self) -> None:
        """The worker loop, until `stop()`; then drain (see `SHUTDOWN_GRACE`)."""
        stop_wait = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                version: int | None = None
                try:
                    # Read before the pass: whatever is committed from here on (by another
                    # task, another process, or this pass itself) ends the wait below early.
                    version = await self.rt.db.data_version()
                    await self._chores()
                    await self.run_once()
                except Exception:
                    # Task boundary: a failed pass (database busy, disk full) is logged and
                    # tried again; leases keep the claimed jobs safe meanwhile.
                    log.exception("delivery pass failed")
                await self._wait_for_slots(self.poll_interval, stop_wait, version)
        finally:
            stop_wait.cancel()
            await self.drain()

    async def _wait_for_slots(self, patience: float | None,
                              stop_wait: asyncio.Future[bool] | None = None,
                              version: int | None = None) -> None:
        """Wait until a request finished, something was committed to the database (new
        jobs, from this process or another), the timeout passes or a stop is asked.

        Slots are refilled as soon as one frees: waiting for a batch of them left slots
        idle while the slowest of the batch ran (a pass costs a few database round trips
        whatever its size, and requests finishing meanwhile are recorded together).
        """
        loop = asyncio.get_running_loop()
        deadline = None if patience is None else loop.time() + patience
        while True:
            running = [t for t in self._tasks if not t.done()]
            if len(self._tasks) > len(running) or (stop_wait is not None and stop_wait.done()):
                return
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            watch = version is not None and len(self._tasks) < self.concurrency
            if watch:
                left = WATCH_INTERVAL if left is None else min(left, WATCH_INTERVAL)
            waiting: list[asyncio.Future[Any]] = [*running]
            if stop_wait is not None:
                waiting.append(stop_wait)
            done, _ = await asyncio.wait(waiting, timeout=left,
                                         return_when=asyncio.FIRST_COMPLETED)
            if watch and not done and await self._committed_since(version):
                return

    async def _committed_since(self, version: int | None) -> bool:
        try:
            return await self.rt.db.data_version() != version
        except Exception:  # the pass that follows logs what is wrong with the database
            return True

    def stop(self) -> None:
        """Ask `run()` to finish: no new claims, in-flight work gets the grace period."""
        self._stop.set()

    async def drain(self) -> None:
        """Let in-flight requests finish (up to the grace period), give the rest back."""
        self._stopping = True
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=self.grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finished, released = self._collect()
        attempts = [*self._unrecorded, *finished]
        self._unrecorded = []
        if not attempts and not released:
            return
        try:
            async with self.rt.db.transaction() as tx:
                await self._record(tx, attempts, self.rt.now())
                await queue.release(tx, released)
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
        """Leases of in-flight jobs are pushed forward every third of the lease."""
        if not self._tasks:
            self._last_renew = None
            return False
        if self._last_renew is None:
            self._last_renew = now
        if now - self._last_renew < self.lease / 3:
            return False
        self._last_renew = now
        return True

    # --- claiming --------------------------------------------------------------------

    async def _claim(self, tx: Conn, now: datetime, free: int) -> list[DeliveryJob]:
        if self._last_unavailable_check is None or (
                now - self._last_unavailable_check >= UNAVAILABLE_CHECK):
            self._last_unavailable_check = now
            await queue.fail_unavailable(tx, now)
        load = Counter(self._load)
        limits = dict(self._limits)
        jobs: list[DeliveryJob] = []
        scan = free * 2 + 8
        # A few rounds: a round's candidates may crowd on hosts that are already full.
        for _round in range(4):
            exclude = {h for h, n in load.items() if n >= limits.get(h, self.per_host)}
            candidates = await queue.due(tx, now, exclude_hosts=exclude, limit=scan)
            picked: list[int] = []
            blocked: list[int] = []
            for c in candidates:
                if len(jobs) + len(picked) >= free:
                    break
                if self.rt.blocklist.url_blocked(c.inbox):
                    blocked.append(c.id)
                    continue
                # Paused and unavailable hosts never come back from `due`; a host whose
                # breaker tripped gets one probe at a time.
                limits[c.host] = 1 if c.host_failures >= policy.BREAKER_THRESHOLD else (
                    self.per_host)
                if load[c.host] >= limits[c.host]:
                    continue
                load[c.host] += 1
                picked.append(c.id)
            await queue.cancel(tx, blocked, now, "blocked")
            jobs += await queue.lease(tx, picked, now + self.lease)
            if len(candidates) < scan or len(jobs) >= free:
                break
        for job in jobs:
            self._limits[job.host] = limits.get(job.host, self.per_host)
        return jobs

    def _start(self, job: DeliveryJob) -> None:
        self._load[job.host] += 1
        task = asyncio.create_task(self._attempt(job), name=f"delivery-{job.id}")
        self._tasks[task] = job

    def _collect(self) -> tuple[list[Attempt], list[int]]:
        """Finished attempts, and the ids of jobs whose attempt was cancelled."""
        attempts: list[Attempt] = []
        released: list[int] = []
        for task in [t for t in self._tasks if t.done()]:
            job = self._tasks.pop(task)
            self._load[job.host] -= 1
            if self._load[job.host] <= 0:
                del self._load[job.host]
                self._limits.pop(job.host, None)
            if task.cancelled():
                released.append(job.id)
            else:
                attempts.append(task.result())
        return attempts, released

    # --- one attempt -----------------------------------------------------------------

    async def _attempt(self, job: DeliveryJob) -> Attempt:
        rt = self.rt
        if rt.blocklist.url_blocked(job.inbox):
            return Attempt(job, blocked=True)
        try:
            async with asyncio.timeout(self.request_timeout):
                # The client signs every request afresh (new Date, new signature) over the
                # same body bytes; redirects are never followed with a signed body.
                result = await rt.remote.post(job.inbox, job.body)
                if rt.settings.federation.double_knock and policy.should_double_knock(
                        result.status):
                    result = await rt.remote.post(job.inbox, job.body,
                                                  signer=self._other_signer())
        except FetchRefused as exc:
            blocked = exc.reason is RefusalReason.BLOCKED
            return Attempt(job, error=str(exc), blocked=blocked, refused=not blocked)
        except FetchFailed as exc:
            return Attempt(job, status=exc.status, error=str(exc)[:_ERROR_EXCERPT])
        except TimeoutError:
            return Attempt(job, error=f"timed out after {self.request_timeout:g} s")
        except Exception as exc:  # task boundary: record it as a failed attempt, keep going
            log.exception("delivery attempt crashed", extra={"job": job.id})
            return Attempt(job, error=f"{type(exc).__name__}: {exc}"[:_ERROR_EXCERPT])
        return Attempt(job, status=result.status, retry_after=result.retry_after,
                       error=_describe(result))

    def _other_signer(self) -> functools.partial[dict[str, str]]:
        scheme = self.rt.settings.federation.signature_scheme
        return functools.partial(self.rt.sign, scheme="cavage" if scheme == "rfc9421"
                                 else "rfc9421")

    # --- recording -------------------------------------------------------------------

    async def _record(self, tx: Conn, attempts: Iterable[Attempt], now: datetime) -> None:
        attempts = list(attempts)
        if not attempts:
            return
        hosts = {a.job.host for a in attempts if not (a.blocked or a.refused)}
        before = await queue.host_states(tx, hosts)
        states = {h: before.get(h, policy.HostState(host=h)) for h in hosts}
        outcomes = [await self._outcome(tx, a, now, states) for a in attempts]
        await queue.record(tx, outcomes, now)
        changed = {h: s for h, s in states.items() if s is not before.get(h)}
        await queue.save_hosts(tx, changed.values())
        for host, state in changed.items():
            old = before.get(host)
            paused = state.paused_until
            if paused is not None and paused > now and (old is None or old.paused_until != paused):
                await queue.defer_host(tx, host, paused)
            if state.unavailable_since is not None and (old is None or
                                                         old.unavailable_since is None):
                log.warning("host marked unavailable after failures on several days",
                            extra={"host": host, "days": list(state.failure_days)})
            if host in self._load:
                self._limits[host] = policy.host_slots(state, now, self.per_host)

    async def _outcome(self, tx: Conn, attempt: Attempt, now: datetime,
                       states: dict[str, policy.HostState]) -> queue.Outcome:
        """The job's fate (and its host's) after one attempt."""
        job = attempt.job
        if attempt.blocked:
            return queue.Outcome(job.id, job.attempts, None, "blocked",
                                 status=DeliveryStatus.CANCELLED)
        tries = job.attempts + 1
        if attempt.refused:
            log.info("delivery refused", extra={"job": job.id, "inbox": job.inbox,
                                                "error": attempt.error})
            return queue.Outcome(job.id, tries, None, attempt.error,
                                 status=DeliveryStatus.FAILED)
        decision = policy.decide(tries, attempt.status, attempt.retry_after, now,
                                 self._rng.random(), first_attempt_at=job.created_at)
        if decision.verdict is policy.Verdict.GONE:
            removed = await queue.remove_followers_at(tx, job.inbox)
            log.info("inbox gone", extra={"inbox": job.inbox, "status": attempt.status,
                                          "followers_removed": removed})
        elif decision.verdict is policy.Verdict.FAILED:
            log.info("delivery failed", extra={"job": job.id, "inbox": job.inbox,
                                               "status": attempt.status,
                                               "error": attempt.error})
        state = states[job.host]
        if policy.is_host_failure(attempt.status):
            state = policy.host_after_failure(state, now)
        else:
            state = policy.host_after_success(state, now)
            if attempt.status == 429 and decision.next_attempt_at is not None:
                state = policy.host_after_rate_limit(state, decision.next_attempt_at)
        states[job.host] = state
        if decision.verdict is policy.Verdict.RETRY:
            return queue.Outcome(job.id, tries, attempt.status, attempt.error,
                                 next_attempt_at=decision.next_attempt_at)
        return queue.Outcome(job.id, tries, attempt.status, attempt.error,
                             status=DeliveryStatus(decision.verdict.value))


def _describe(result: PostResult) -> str | None:
    status = result.status
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        where = result.headers.get("Location", "?")
        return f"HTTP {status}: redirected to {where} (not followed with a signed body)"
    excerpt = " ".join(result.body_excerpt.split())[:_ERROR_EXCERPT]
    return f"HTTP {status}: {excerpt}" if excerpt else f"HTTP {status}"


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
