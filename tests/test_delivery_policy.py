"""The retry and host policy as pure functions: classification, backoff, Retry-After,
the 16-attempt/48-hour horizon, the breaker and the unavailable mark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fedcomments.delivery.policy import (
    BREAKER_THRESHOLD,
    MAX_ATTEMPTS,
    HostState,
    Verdict,
    backoff,
    classify,
    decide,
    host_after_contact,
    host_after_failure,
    host_after_rate_limit,
    host_after_success,
    host_slots,
    parse_retry_after,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("status", "verdict"), [
    (200, Verdict.DONE), (202, Verdict.DONE), (204, Verdict.DONE),
    (404, Verdict.GONE), (410, Verdict.GONE),
    (401, Verdict.RETRY), (408, Verdict.RETRY), (429, Verdict.RETRY), (500, Verdict.RETRY),
    (502, Verdict.RETRY), (503, Verdict.RETRY), (None, Verdict.RETRY),
    (301, Verdict.FAILED), (307, Verdict.FAILED), (400, Verdict.FAILED),
    (403, Verdict.FAILED), (405, Verdict.FAILED), (413, Verdict.FAILED), (422, Verdict.FAILED),
])
def test_classify(status: int | None, verdict: Verdict) -> None:
    """Given an answer status, when classified, then it maps as the issue specifies."""
    assert classify(status) is verdict


def test_backoff_doubles_with_upward_jitter() -> None:
    """Given attempts 1..3 and jitter 0 or 1, when computing delays, then 30 s doubles and
    jitter stretches by at most 25 %; the cap is 8 hours."""
    assert [backoff(n, 0.0) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (30, 60, 120)]
    assert backoff(1, 1.0) == timedelta(seconds=37.5)
    assert backoff(40, 0.0) == timedelta(hours=8)


def test_sixteen_attempts_span_at_least_48_hours() -> None:
    """Given the smallest jitter, when a job fails 16 times, then 16 attempts are made over
    at least 48 hours (and, with the largest jitter, not more than ~61 hours)."""
    for jitter in (0.0, 1.0):
        at, first, attempts = NOW, NOW, 0
        while True:
            attempts += 1
            decision = decide(attempts, 503, None, at, jitter, first_attempt_at=first)
            if decision.verdict is Verdict.FAILED:
                break
            assert decision.next_attempt_at is not None
            at = decision.next_attempt_at
        assert attempts == MAX_ATTEMPTS
        assert at - first >= timedelta(hours=48)
        assert at - first <= timedelta(hours=61)


def test_not_failed_before_horizon() -> None:
    """Given 16 attempts made within an hour (long Retry-After chains cut short), when the
    horizon has not passed, then the job is retried again rather than failed."""
    decision = decide(16, 500, None, NOW, 0.5, first_attempt_at=NOW - timedelta(hours=1))
    assert decision.verdict is Verdict.RETRY
    decision = decide(16, 500, None, NOW, 0.5, first_attempt_at=NOW - timedelta(hours=49))
    assert decision.verdict is Verdict.FAILED


def test_retry_after_honoured_and_capped() -> None:
    """Given Retry-After as seconds, as a date, too far away or garbage, when deciding, then
    the wait is the larger of backoff and Retry-After, capped at six hours."""
    assert decide(1, 429, "3600", NOW, 0.0).next_attempt_at == NOW + timedelta(hours=1)
    assert decide(1, 429, "5", NOW, 0.0).next_attempt_at == NOW + timedelta(seconds=30)
    date = "Wed, 01 May 2024 14:00:00 GMT"
    assert decide(1, 503, date, NOW, 0.0).next_attempt_at == NOW + timedelta(hours=2)
    assert decide(1, 503, "999999999", NOW, 0.0).next_attempt_at == NOW + timedelta(hours=6)
    assert decide(1, 503, "soon", NOW, 0.0).next_attempt_at == NOW + timedelta(seconds=30)
    assert parse_retry_after(None, NOW) is None
    assert parse_retry_after("Tue, 30 Apr 2024 00:00:00 GMT", NOW) == timedelta(0)


def test_final_answers_are_not_rescheduled() -> None:
    """Given 2xx, 410 or 403, when deciding, then no next attempt is set."""
    assert decide(1, 202, None, NOW, 0.3).next_attempt_at is None
    assert decide(1, 410, "60", NOW, 0.3).verdict is Verdict.GONE
    assert decide(1, 403, None, NOW, 0.3).verdict is Verdict.FAILED


def test_breaker_opens_and_backs_off() -> None:
    """Given consecutive failures, when the threshold is reached, then the host is paused
    for a minute, then 2, 4 … up to an hour, with one probe slot once the pause ends."""
    state = HostState(host="x.example")
    for _ in range(BREAKER_THRESHOLD - 1):
        state = host_after_failure(state, NOW)
    assert state.paused_until is None and host_slots(state, NOW, 4) == 4
    pauses = []
    for _ in range(10):
        state = host_after_failure(state, NOW)
        assert state.paused_until is not None
        pauses.append(state.paused_until - NOW)
    assert pauses[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert pauses[-1] == timedelta(hours=1)
    assert host_slots(state, NOW, 4) == 0
    assert host_slots(state, NOW + timedelta(hours=2), 4) == 1
    closed = host_after_success(state, NOW)
    assert (closed.consecutive_failures, closed.paused_until, closed.last_success_at) == (
        0, None, NOW)
    assert host_slots(closed, NOW, 4) == 4


def test_unavailable_after_seven_distinct_days() -> None:
    """Given failures on six distinct days (several per day), when a seventh day fails,
    then the host is unavailable; a contact or a success clears it."""
    state = HostState(host="x.example")
    for day in range(7):
        for hour in (1, 5):
            state = host_after_failure(state, NOW + timedelta(days=day, hours=hour))
        assert (state.unavailable_since is None) == (day < 6)
    assert len(state.failure_days) == 7
    assert host_slots(state, NOW + timedelta(days=30), 4) == 0
    back = host_after_contact(state)
    assert (back.unavailable_since, back.failure_days) == (None, ())
    assert host_after_success(state, NOW).unavailable_since is None


def test_rate_limit_pause_and_quiet_success() -> None:
    """Given a 429 pause, when another shorter one comes, then the longer pause stays; a
    healthy host's success within a minute returns the very same state (no write)."""
    state = host_after_rate_limit(HostState(host="x"), NOW + timedelta(hours=1))
    assert host_after_rate_limit(state, NOW).paused_until == NOW + timedelta(hours=1)
    healthy = HostState(host="x", last_success_at=NOW)
    assert host_after_success(healthy, NOW + timedelta(seconds=30)) is healthy
    assert host_after_success(healthy, NOW + timedelta(minutes=2)).last_success_at == (
        NOW + timedelta(minutes=2))
