"""Delivery policy as pure functions: classify an answer, schedule the retry, track hosts.

No I/O and no clock of its own: every function takes `now` (and a random number where it
jitters), so the whole schedule is pinned by plain unit tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from fedcomments.model import HostState

#: A job is tried at least this many times and over at least RETRY_HORIZON before it is
#: marked failed (Mastodon retries about as long: Sidekiq's 16 retries span ~2 days).
MAX_ATTEMPTS = 16
RETRY_HORIZON = timedelta(hours=48)
#: First retry after BACKOFF_BASE, doubling up to BACKOFF_CAP; each delay is stretched by
#: up to JITTER so that jobs failing together do not come back together.
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_CAP = timedelta(hours=8)
JITTER = 0.25
#: A Retry-After further away than this is cut down to it.
RETRY_AFTER_CAP = timedelta(hours=6)

#: Consecutive host failures (timeouts, refused connections, 5xx) that open the breaker.
BREAKER_THRESHOLD = 5
BREAKER_PAUSE_BASE = timedelta(minutes=1)
BREAKER_PAUSE_CAP = timedelta(hours=1)
#: Failures on this many distinct UTC days, with no success in between, mark the host
#: unavailable (Mastodon's DeliveryFailureTracker uses the same threshold).
UNAVAILABLE_DAYS = 7
#: A healthy host's last success is written at most this often.
SUCCESS_RESOLUTION = timedelta(minutes=1)


class Verdict(enum.StrEnum):
    DONE = "done"
    RETRY = "retry"
    GONE = "gone"
    FAILED = "failed"


def classify(status: int | None) -> Verdict:
    """What an answer means; None is a timeout or a connection error.

    2xx done; 404/410 the inbox is gone; 401 (Mastodon answers it while it cannot fetch our
    key yet), 408, 429, 5xx and network errors are worth retrying; every other status,
    redirects included (a signed body is never re-sent elsewhere), is a permanent failure.
    """
    if status is None:
        return Verdict.RETRY
    if 200 <= status < 300:
        return Verdict.DONE
    if status in (404, 410):
        return Verdict.GONE
    if status in (401, 408, 429) or 500 <= status < 600:
        return Verdict.RETRY
    return Verdict.FAILED


def should_double_knock(status: int | None) -> bool:
    """A 400/401 may mean the peer does not speak our signature scheme: try the other once."""
    return status in (400, 401)


def is_host_failure(status: int | None) -> bool:
    """Answers that say the server itself is in trouble (what the breaker counts)."""
    return status is None or status == 408 or 500 <= status < 600


def backoff(attempts: int, random: float) -> timedelta:
    """Delay after the `attempts`-th failed attempt (1-based), jittered upwards only.

    Upward-only jitter keeps the guaranteed minimum: the 15 delays between 16 attempts
    add up to at least 48.5 hours (30 s doubling to the 8 h cap).
    """
    exponent = min(max(attempts, 1) - 1, 30)
    base = min(BACKOFF_BASE * (2**exponent), BACKOFF_CAP)
    stretched: timedelta = base * (1 + JITTER * min(max(random, 0.0), 1.0))
    return stretched


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """Retry-After as a delay: delta-seconds or an HTTP date; None when absent or unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        delay = timedelta(seconds=int(value[:9]))
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delay = when - now
    return max(timedelta(0), min(delay, RETRY_AFTER_CAP))


@dataclass(frozen=True)
class Decision:
    """What becomes of a job after an attempt."""

    verdict: Verdict
    #: When to try again (RETRY only).
    next_attempt_at: datetime | None = None


def decide(
    attempts: int,
    status: int | None,
    retry_after: str | None,
    now: datetime,
    random: float,
    *,
    first_attempt_at: datetime | None = None,
) -> Decision:
    """The job's fate after its `attempts`-th attempt got `status` at `now`.

    A retryable failure is retried until MAX_ATTEMPTS attempts were made and, when
    `first_attempt_at` is known, RETRY_HORIZON has passed since then; then it fails.
    Retry-After is honoured (capped) but never shortens the backoff.
    """
    verdict = classify(status)
    if verdict is not Verdict.RETRY:
        return Decision(verdict)
    started = first_attempt_at or now
    if attempts >= MAX_ATTEMPTS and now - started >= RETRY_HORIZON:
        return Decision(Verdict.FAILED)
    delay = backoff(attempts, random)
    asked = parse_retry_after(retry_after, now)
    if asked is not None:
        delay = max(delay, asked)
    return Decision(Verdict.RETRY, now + delay)


# --- hosts -----------------------------------------------------------------------------


def half_open(state: HostState) -> bool:
    """The breaker tripped: one probe at a time until a success closes it."""
    return state.consecutive_failures >= BREAKER_THRESHOLD


def host_slots(state: HostState | None, now: datetime, per_host: int) -> int:
    """How many requests may run at once to this host right now."""
    if state is None:
        return per_host
    if state.unavailable_since is not None:
        return 0
    if state.paused_until is not None and state.paused_until > now:
        return 0
    return 1 if half_open(state) else per_host


def host_after_success(state: HostState, now: datetime) -> HostState:
    """Any answer that shows the server alive closes the breaker and clears the marks.

    A healthy host's state is returned unchanged (the same object) while its last success
    is recent, so a fan-out does not rewrite the host row for every job.
    """
    clean = (state.consecutive_failures == 0 and state.paused_until is None
             and not state.failure_days and state.unavailable_since is None)
    last = state.last_success_at
    if clean and last is not None and timedelta(0) <= now - last < SUCCESS_RESOLUTION:
        return state
    return replace(state, consecutive_failures=0, paused_until=None, failure_days=(),
                   unavailable_since=None, last_success_at=now)


def host_after_failure(state: HostState, now: datetime) -> HostState:
    """Count a server failure; open the breaker and mark unavailable when warranted."""
    failures = state.consecutive_failures + 1
    day = now.astimezone(UTC).strftime("%Y-%m-%d")
    days = state.failure_days if day in state.failure_days else (*state.failure_days, day)
    days = days[-UNAVAILABLE_DAYS:]
    paused = state.paused_until
    if failures >= BREAKER_THRESHOLD:
        # Each failed probe doubles the pause, up to the cap.
        pause = min(BREAKER_PAUSE_BASE * (2 ** min(failures - BREAKER_THRESHOLD, 20)),
                    BREAKER_PAUSE_CAP)
        paused = now + pause
    unavailable = state.unavailable_since
    if unavailable is None and len(days) >= UNAVAILABLE_DAYS:
        unavailable = now
    return replace(state, consecutive_failures=failures, paused_until=paused,
                   failure_days=days, unavailable_since=unavailable)


def host_after_rate_limit(state: HostState, until: datetime) -> HostState:
    """A 429 speaks for the whole server: hold every job to it until `until`."""
    paused = state.paused_until
    return replace(state, paused_until=until if paused is None or until > paused else paused)


def host_after_contact(state: HostState) -> HostState:
    """The host sent us a signed request: it is up, so it is no longer unavailable."""
    return replace(state, failure_days=(), unavailable_since=None)
