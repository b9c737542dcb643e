"""One pass of the delivery queue, run on the SQLite writer thread: record the outcomes,
release and renew leases, claim the next jobs within the per-host slots."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fedcomments.delivery import policy
from fedcomments.delivery.attempt import Attempt
from fedcomments.model import DeliveryJob, DeliveryStatus, HostState
from fedcomments.store import queue
from fedcomments.store.conn import Conn

log = logging.getLogger("fedcomments.delivery")


@dataclass(frozen=True)
class Plan:
    """What a pass is to do, fixed on the event loop before it runs on the writer thread."""

    now: datetime
    attempts: list[Attempt]
    released: list[int]
    renew: list[int]
    want: int
    load: Counter[str]
    limits: dict[str, int]
    fail_unavailable: bool


@dataclass
class Done:
    """What a pass hands back: claimed jobs and the hosts' slots as they now stand."""

    jobs: list[DeliveryJob] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PassWriter:
    """Writes a pass for one worker; its methods touch only the transaction and the plan."""

    lease: timedelta
    per_host: int
    rng: random.Random
    #: whether an inbox URL is blocked (claimed jobs to it are cancelled unsent)
    blocked: Callable[[str], bool]

    async def run(self, tx: Conn, plan: Plan) -> Done:
        """Record, release, renew, claim. Runs as a unit of work on the SQLite writer
        thread: it reads only `plan` and returns what the loop is to change."""
        done = Done()
        done.limits = await self._record(tx, plan.attempts, plan.now)
        await queue.release(tx, plan.released)
        if plan.renew:
            await queue.renew(tx, plan.renew, plan.now + self.lease)
        if plan.want > 0:
            if plan.fail_unavailable:
                await queue.fail_unavailable(tx, plan.now)
            limits = {**plan.limits, **done.limits}
            await self._claim(tx, plan, limits, done)
        return done

    async def _claim(self, tx: Conn, plan: Plan, limits: dict[str, int], done: Done) -> None:
        load = Counter(plan.load)
        free = plan.want
        scan = free * 2 + 8
        # A few rounds: a round's candidates may crowd on hosts that are already full.
        for _round in range(4):
            exclude = {h for h, n in load.items() if n >= limits.get(h, self.per_host)}
            candidates = await queue.due(tx, plan.now, exclude_hosts=exclude, limit=scan)
            picked: list[int] = []
            blocked: list[int] = []
            for c in candidates:
                if len(done.jobs) + len(picked) >= free:
                    break
                if self.blocked(c.inbox):
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
            await queue.cancel(tx, blocked, plan.now, "blocked")
            done.jobs += await queue.lease(tx, picked, plan.now + self.lease)
            if len(candidates) < scan or len(done.jobs) >= free:
                break
        for job in done.jobs:
            done.limits[job.host] = limits.get(job.host, self.per_host)

    async def _record(self, tx: Conn, attempts: Iterable[Attempt], now: datetime
                      ) -> dict[str, int]:
        """Write outcomes and host states; returns the slots of the hosts that changed."""
        attempts = list(attempts)
        if not attempts:
            return {}
        hosts = {a.job.host for a in attempts if not (a.blocked or a.refused)}
        before = await queue.host_states(tx, hosts)
        states = {h: before.get(h, HostState(host=h)) for h in hosts}
        outcomes = [await self._outcome(tx, a, now, states) for a in attempts]
        await queue.record(tx, outcomes, now)
        changed = {h: s for h, s in states.items() if s is not before.get(h)}
        await queue.save_hosts(tx, changed.values())
        slots: dict[str, int] = {}
        for host, state in changed.items():
            old = before.get(host)
            paused = state.paused_until
            if paused is not None and paused > now and (old is None or old.paused_until != paused):
                await queue.defer_host(tx, host, paused)
            if state.unavailable_since is not None and (old is None or
                                                         old.unavailable_since is None):
                log.warning("host marked unavailable after failures on several days",
                            extra={"host": host, "days": list(state.failure_days)})
            slots[host] = policy.host_slots(state, now, self.per_host)
        return slots

    async def _outcome(self, tx: Conn, attempt: Attempt, now: datetime,
                       states: dict[str, HostState]) -> queue.Outcome:
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
                                 self.rng.random(), first_attempt_at=job.created_at)
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
