"""Delivery jobs and remote host state: enqueue in the caller's transaction, claim with a
lease, record outcomes, and the admin's views (list, retry, cancel)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from fedcomments.model import DeliveryJob, DeliveryStatus, HostState, JobKind
from fedcomments.names import host_of
from fedcomments.paging import Key
from fedcomments.store.conn import Conn
from fedcomments.store.paging import after, split
from fedcomments.store.rows import dt, dt_required, dumps, loads, ts

_JOB_COLUMNS = (
    "id, activity_id, inbox, host, status, attempts, next_attempt_at, created_at, "
    "last_status, last_error, finished_at, kind"
)
_KINDS = {k.value: k for k in JobKind}


def host_key(url: str) -> str:
    """The server an inbox lives on, as limits, the breaker and domain blocks see it:
    the lower-case host name without port."""
    return host_of(url)


def _job(row: sqlite3.Row, body: bytes = b"") -> DeliveryJob:
    return DeliveryJob(
        id=row["id"],
        activity_id=row["activity_id"],
        inbox=row["inbox"],
        host=row["host"],
        status=DeliveryStatus(row["status"]),
        attempts=row["attempts"],
        next_attempt_at=dt_required(row["next_attempt_at"]),
        created_at=dt_required(row["created_at"]),
        body=body,
        last_status=row["last_status"],
        last_error=row["last_error"],
        finished_at=dt(row["finished_at"]),
        kind=_KINDS[row["kind"]],
    )


def _ids(ids: Iterable[int]) -> str:
    return dumps(list(ids))


async def enqueue(conn: Conn, *, activity_id: str, inbox: str, body: bytes, now: datetime,
                  kind: JobKind = JobKind.ACTIVITY, host: str | None = None) -> bool:
    """One job per (activity, inbox); True when it was new. `host` (default: the inbox
    URL's) is what per-host limits and the breaker count the job against."""
    return await conn.rowcount(
        "INSERT OR IGNORE INTO deliveries (activity_id, inbox, host, body, status, "
        "next_attempt_at, created_at, kind) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
        (activity_id, inbox, host if host is not None else host_key(inbox), body, ts(now),
         ts(now), kind.value),
    ) > 0


async def enqueue_many(conn: Conn, *, activity_id: str, inboxes: Iterable[str], body: bytes,
                       now: datetime) -> int:
    stamp = ts(now)
    rows = [(activity_id, inbox, host_key(inbox), body, stamp, stamp)
            for inbox in dict.fromkeys(inboxes)]
    before = await _count(conn, activity_id)
    await conn.executemany(
        "INSERT OR IGNORE INTO deliveries (activity_id, inbox, host, body, status, "
        "next_attempt_at, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
        rows,
    )
    return await _count(conn, activity_id) - before


async def follower_targets(conn: Conn) -> list[tuple[str, str]]:
    """(follower actor id, where to deliver to it) in follow order: its server's shared
    inbox when it has one, else its own (Mastodon's `preferred_inbox_url`)."""
    rows = await conn.fetchall(
        "SELECT a.ap_id, a.shared_inbox, a.inbox FROM followers f "
        "JOIN actors a ON a.id = f.actor_id ORDER BY f.created_at, a.id")
    return [(r[0], target) for r in rows if (target := r[1] or r[2])]


async def inboxes_of(conn: Conn, activity_id: str) -> list[str]:
    """Every inbox an activity was queued for (a Delete or Update follows its Create)."""
    rows = await conn.fetchall(
        "SELECT inbox FROM deliveries WHERE activity_id = ? ORDER BY id", (activity_id,))
    return [r[0] for r in rows]


async def _count(conn: Conn, activity_id: str) -> int:
    row = await conn.fetchone("SELECT COUNT(*) FROM deliveries WHERE activity_id = ?",
                              (activity_id,))
    return int(row[0]) if row else 0


# --- claiming --------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    id: int
    host: str
    inbox: str
    #: The host's consecutive failures (0 when it has no row): the breaker's state.
    host_failures: int


async def due(conn: Conn, now: datetime, *, exclude_hosts: Collection[str], limit: int
              ) -> list[Candidate]:
    """Pending jobs whose time has come and whose lease (if any) expired, oldest first.

    Hosts that are paused or unavailable, and the hosts in `exclude_hosts` (already at
    their limit in this worker), are skipped so they never take a free slot. A job waits
    while an older job to the same inbox is due or in flight: a Create, its Update and its
    Delete reach a server in that order (a Delete that overtook its Create would leave
    the note up there). An older job waiting out a retry delay holds nothing back.
    """
    rows = await conn.fetchall(
        "SELECT d.id, d.host, d.inbox, COALESCE(h.consecutive_failures, 0) AS failures "
        "FROM deliveries d LEFT JOIN hosts h ON h.host = d.host "
        "WHERE d.status = 'pending' AND d.next_attempt_at <= ?1 "
        "AND (d.locked_until IS NULL OR d.locked_until <= ?1) "
        "AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.inbox = d.inbox "
        "AND e.status = 'pending' AND e.id < d.id "
        "AND (e.next_attempt_at <= ?1 OR e.locked_until > ?1)) "
        "AND d.host NOT IN (SELECT value FROM json_each(?2)) "
        "AND h.unavailable_since IS NULL AND (h.paused_until IS NULL OR h.paused_until <= ?1) "
        "ORDER BY d.next_attempt_at, d.id LIMIT ?3",
        (ts(now), dumps(sorted(exclude_hosts)), limit),
    )
    return [Candidate(r["id"], r["host"], r["inbox"], int(r["failures"])) for r in rows]


async def any_due(conn: Conn, now: datetime) -> bool:
    """Cheap read: is any job claimable now? (An idle worker then skips its write pass.)"""
    row = await conn.fetchone(
        "SELECT 1 FROM deliveries WHERE status = 'pending' AND next_attempt_at <= ?1 "
        "AND (locked_until IS NULL OR locked_until <= ?1) LIMIT 1",
        (ts(now),),
    )
    return row is not None


async def lease(conn: Conn, ids: Collection[int], until: datetime) -> list[DeliveryJob]:
    """Reserve jobs until `until` and return them with their bodies."""
    if not ids:
        return []
    rows = await conn.fetchall(
        f"UPDATE deliveries SET locked_until = ? WHERE id IN (SELECT value FROM json_each(?)) "
        f"RETURNING {_JOB_COLUMNS}, body",
        (ts(until), _ids(ids)),
    )
    jobs = [_job(r, bytes(r["body"])) for r in rows]
    return sorted(jobs, key=lambda j: (j.next_attempt_at, j.id))


async def renew(conn: Conn, ids: Collection[int], until: datetime) -> None:
    """Extend the lease of jobs still in flight."""
    if ids:
        await conn.execute(
            "UPDATE deliveries SET locked_until = ? WHERE status = 'pending' AND id IN "
            "(SELECT value FROM json_each(?))",
            (ts(until), _ids(ids)),
        )


async def release(conn: Conn, ids: Collection[int]) -> None:
    """Give jobs back to the queue untouched (shutdown before they finished)."""
    if ids:
        await conn.execute(
            "UPDATE deliveries SET locked_until = NULL WHERE status = 'pending' AND id IN "
            "(SELECT value FROM json_each(?))",
            (_ids(ids),),
        )


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: closed with `status`, or rescheduled at `next_attempt_at`."""

    job_id: int
    attempts: int
    last_status: int | None
    last_error: str | None
    status: DeliveryStatus = DeliveryStatus.PENDING
    next_attempt_at: datetime | None = None


async def record(conn: Conn, outcomes: Collection[Outcome], now: datetime) -> None:
    """Write attempt outcomes; a job closed meanwhile (cancelled by a block) stays closed."""
    finished = ts(now)
    closed = [(o.status.value, o.attempts, o.last_status, o.last_error, finished, o.job_id)
              for o in outcomes if o.status is not DeliveryStatus.PENDING]
    retried = [(o.attempts, ts(o.next_attempt_at), o.last_status, o.last_error, o.job_id)
               for o in outcomes if o.status is DeliveryStatus.PENDING]
    if closed:
        await conn.executemany(
            "UPDATE deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, "
            "finished_at = ?, locked_until = NULL WHERE id = ? AND status = 'pending'",
            closed,
        )
    if retried:
        await conn.executemany(
            "UPDATE deliveries SET attempts = ?, next_attempt_at = ?, last_status = ?, "
            "last_error = ?, locked_until = NULL WHERE id = ? AND status = 'pending'",
            retried,
        )


async def defer_host(conn: Conn, host: str, until: datetime) -> None:
    """Move a paused host's due jobs to when the pause ends, so claims skip them cheaply."""
    await conn.execute(
        "UPDATE deliveries SET next_attempt_at = ?1 WHERE host = ?2 AND status = 'pending' "
        "AND next_attempt_at < ?1",
        (ts(until), host),
    )


async def fail_unavailable(conn: Conn, now: datetime) -> int:
    """Jobs to hosts marked unavailable fail at once (kept for the admin to retry)."""
    return await conn.rowcount(
        "UPDATE deliveries SET status = 'failed', finished_at = ?, locked_until = NULL, "
        "last_error = 'host unavailable since ' || (SELECT h.unavailable_since FROM hosts h "
        "WHERE h.host = deliveries.host) WHERE status = 'pending' AND host IN "
        "(SELECT host FROM hosts WHERE unavailable_since IS NOT NULL)",
        (ts(now),),
    )


async def cancel(conn: Conn, ids: Collection[int], now: datetime, reason: str) -> int:
    if not ids:
        return 0
    return await conn.rowcount(
        "UPDATE deliveries SET status = 'cancelled', finished_at = ?, last_error = ?, "
        "locked_until = NULL WHERE status = 'pending' AND id IN "
        "(SELECT value FROM json_each(?))",
        (ts(now), reason, _ids(ids)),
    )


async def cancel_matching(conn: Conn, blocked: Callable[[str], bool], now: datetime,
                          reason: str = "blocked") -> int:
    """Cancel pending jobs whose inbox URL `blocked` refuses (domain or actor blocks)."""
    rows = await conn.fetchall("SELECT id, inbox FROM deliveries WHERE status = 'pending'")
    return await cancel(conn, [r["id"] for r in rows if blocked(r["inbox"])], now, reason)


async def remove_followers_at(conn: Conn, inbox: str) -> int:
    """Unfollow every follower whose inbox (or shared inbox) is `inbox`: it is gone."""
    return await conn.rowcount(
        "DELETE FROM followers WHERE actor_id IN (SELECT id FROM actors WHERE inbox = ?1 "
        "OR shared_inbox = ?1)",
        (inbox,),
    )


# --- hosts -----------------------------------------------------------------------------


def _host(row: sqlite3.Row) -> HostState:
    return HostState(
        host=row["host"],
        consecutive_failures=row["consecutive_failures"],
        paused_until=dt(row["paused_until"]),
        failure_days=tuple(loads(row["failure_days"], [])),
        unavailable_since=dt(row["unavailable_since"]),
        last_success_at=dt(row["last_success_at"]),
    )


async def host_states(conn: Conn, hosts: Collection[str]) -> dict[str, HostState]:
    if not hosts:
        return {}
    rows = await conn.fetchall(
        "SELECT * FROM hosts WHERE host IN (SELECT value FROM json_each(?))",
        (dumps(sorted(hosts)),),
    )
    return {r["host"]: _host(r) for r in rows}


async def host_state(conn: Conn, host: str) -> HostState:
    row = await conn.fetchone("SELECT * FROM hosts WHERE host = ?", (host,))
    return _host(row) if row else HostState(host=host)


async def save_host(conn: Conn, state: HostState) -> None:
    await save_hosts(conn, [state])


async def save_hosts(conn: Conn, states: Iterable[HostState]) -> None:
    """Write host states in one trip (a fan-out touches one host per finished job)."""
    # The hosts of one pass share their timestamps: format each value once.
    stamps: dict[datetime | None, str | None] = {None: None}

    def stamp(value: datetime | None) -> str | None:
        if value not in stamps:
            stamps[value] = ts(value)
        return stamps[value]

    rows = [(state.host, state.consecutive_failures, stamp(state.paused_until),
             dumps(list(state.failure_days)) if state.failure_days else "[]",
             stamp(state.unavailable_since), stamp(state.last_success_at)) for state in states]
    if not rows:
        return
    await conn.executemany(
        "INSERT INTO hosts (host, consecutive_failures, paused_until, failure_days, "
        "unavailable_since, last_success_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (host) DO UPDATE SET consecutive_failures = excluded.consecutive_failures, "
        "paused_until = excluded.paused_until, failure_days = excluded.failure_days, "
        "unavailable_since = excluded.unavailable_since, "
        "last_success_at = excluded.last_success_at",
        rows,
    )


async def marked_hosts(conn: Conn) -> set[str]:
    """Hosts with an "unavailable" mark or failure days: what a contact from them clears."""
    rows = await conn.fetchall(
        "SELECT host FROM hosts WHERE unavailable_since IS NOT NULL OR failure_days != '[]'"
    )
    return {row[0] for row in rows}


async def troubled_hosts(conn: Conn, now: datetime) -> list[HostState]:
    """Hosts currently paused or marked unavailable."""
    rows = await conn.fetchall(
        "SELECT * FROM hosts WHERE unavailable_since IS NOT NULL OR paused_until > ? "
        "ORDER BY host",
        (ts(now),),
    )
    return [_host(r) for r in rows]


async def reset_hosts(conn: Conn, hosts: Collection[str]) -> None:
    """Forget failures of these hosts (the admin asked to retry their jobs)."""
    await conn.execute(
        "UPDATE hosts SET consecutive_failures = 0, paused_until = NULL, failure_days = '[]', "
        "unavailable_since = NULL WHERE host IN (SELECT value FROM json_each(?))",
        (dumps(sorted(hosts)),),
    )


# --- admin views -----------------------------------------------------------------------


async def by_id(conn: Conn, job_id: int) -> DeliveryJob | None:
    row = await conn.fetchone(f"SELECT {_JOB_COLUMNS} FROM deliveries WHERE id = ?", (job_id,))
    return _job(row) if row else None


async def list_jobs(conn: Conn, *, status: DeliveryStatus | None, limit: int,
                    key: Key | None = None, kinds: Collection[JobKind] = ()
                    ) -> tuple[list[DeliveryJob], Key | None]:
    """Pending jobs in the order they will run; otherwise newest first (by id); only
    `kinds` when given. After `key` (the last row's sort key) when given."""
    pending = status is DeliveryStatus.PENDING
    columns = ["next_attempt_at", "id"] if pending else ["id"]
    where = ["status = ?"] if status else []
    params: list[object] = [status.value] if status else []
    if kinds:
        where.append("kind IN (SELECT value FROM json_each(?))")
        params.append(dumps(sorted(k.value for k in kinds)))
    if key is not None:
        where.append(after(columns, descending=not pending))
        params.extend(key)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    order = "next_attempt_at, id" if pending else "id DESC"
    rows = await conn.fetchall(
        f"SELECT {_JOB_COLUMNS} FROM deliveries {clause} ORDER BY {order} LIMIT ?",
        (*params, limit + 1),
    )
    return split(rows, limit, _job, lambda r: tuple(r[c] for c in columns))


async def counts(conn: Conn) -> dict[str, int]:
    rows = await conn.fetchall("SELECT status, COUNT(*) FROM deliveries GROUP BY status")
    found = {r[0]: int(r[1]) for r in rows}
    return {s.value: found.get(s.value, 0) for s in DeliveryStatus}


async def count_retrying(conn: Conn) -> int:
    row = await conn.fetchone(
        "SELECT COUNT(*) FROM deliveries WHERE status = 'pending' AND attempts > 0")
    return int(row[0]) if row else 0


async def count_failed_since(conn: Conn, since: datetime) -> int:
    row = await conn.fetchone(
        "SELECT COUNT(*) FROM deliveries WHERE status = 'failed' AND finished_at >= ?",
        (ts(since),))
    return int(row[0]) if row else 0


async def retry(conn: Conn, job_ids: Collection[int], now: datetime) -> list[DeliveryJob]:
    """Put finished jobs back in the queue, due now with a fresh attempt budget."""
    if not job_ids:
        return []
    await conn.execute(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?, "
        "locked_until = NULL, finished_at = NULL WHERE status != 'pending' "
        "AND id IN (SELECT value FROM json_each(?))",
        (ts(now), _ids(job_ids)),
    )
    rows = await conn.fetchall(
        f"SELECT {_JOB_COLUMNS} FROM deliveries WHERE id IN (SELECT value FROM json_each(?)) "
        "ORDER BY id",
        (_ids(job_ids),),
    )
    return [_job(r) for r in rows]


# --- what is kept of notices -----------------------------------------------------------
# Mails, webhook events and spam-service calls ("notices", every kind but activity) carry
# readers' data in their bodies. ActivityPub jobs are never pruned here: a later Update or
# Delete goes to every inbox the Create went to (`inboxes_of`).


async def clear_sent_notices(conn: Conn) -> int:
    """Empty the bodies of notices that were delivered (nothing is left to do with them)."""
    return await conn.rowcount(
        "UPDATE deliveries SET body = x'' WHERE kind != 'activity' AND status = 'done' "
        "AND length(body) > 0")


async def prune_notices(conn: Conn, finished_before: datetime, limit: int) -> int:
    """Delete up to `limit` notices that finished (however) before `finished_before`."""
    return await conn.rowcount(
        "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries "
        "WHERE kind != 'activity' AND status != 'pending' AND finished_at < ? LIMIT ?)",
        (ts(finished_before), limit))


async def body_cleared(conn: Conn, job_id: int) -> bool:
    row = await conn.fetchone("SELECT length(body) = 0 FROM deliveries WHERE id = ?",
                              (job_id,))
    return bool(row and row[0])


async def failed_ids(conn: Conn) -> list[int]:
    rows = await conn.fetchall("SELECT id FROM deliveries WHERE status = 'failed' ORDER BY id")
    return [int(r[0]) for r in rows]
