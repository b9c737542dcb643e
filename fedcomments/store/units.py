"""Units of work: short write transactions run on the writer's own thread, group-committed.

A unit is an async function of a `Conn` whose only awaits are that connection's calls,
the same repo functions the rest of the code uses. On the writer thread it gets a `Conn`
whose calls complete at once, so the coroutine never suspends and is driven to its end
in one step. Each aiosqlite call is a round trip between the event loop and the SQLite
thread (a queue put, a thread wake-up, a GIL hand-over and a self-pipe write back), and
at inbox rates those trips cost more than the statements; a unit costs one trip, and all
units waiting when the writer comes free share that trip and one COMMIT. Each runs in
its own SAVEPOINT, so one that raises is rolled back alone and its caller gets the error.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fedcomments.store.conn import Conn

T = TypeVar("T")
Unit = Callable[[Conn], Awaitable[T]]


class UnitSuspended(RuntimeError):
    """A unit awaited something other than its connection (a bug in the unit)."""


class _Immediate(Conn):
    """A Conn for code already on the connection's thread: every call runs at once."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.touched: set[str] = set()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._db, *args)


#: How long a write waits for another process's write transaction to end.
WRITE_WAIT_S = 5.0


def begin_immediate(db: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, waiting for another connection's write in steps of 50 µs to 1 ms.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15 … ms between tries. Two HTTP workers
    (or a worker and the delivery worker) each commit a batch every millisecond or two, so
    the one waiting would sleep through several of the other's commits. The writer
    connection's busy_timeout is therefore 0 and the wait is this loop's.
    """
    deadline = time.monotonic() + WRITE_WAIT_S
    pause = 0.00005
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or (
                    time.monotonic() > deadline):
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.001)


def _drive(awaitable: Awaitable[T]) -> T:
    coro = awaitable.__await__()
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    close = getattr(coro, "close", None)
    if close is not None:
        close()
    raise UnitSuspended("a unit of work awaited something other than the database")


def run_batch(db: sqlite3.Connection, units: list[Unit[Any]]
              ) -> tuple[list[tuple[bool, Any]], set[str]]:
    """On the writer thread: BEGIN IMMEDIATE, every unit in its savepoint, COMMIT.

    Returns (True, value) or (False, exception) per unit, and the tables the units
    touched (see Conn.touch); raises (after ROLLBACK) only when the transaction itself
    fails, and then no unit took effect.
    """
    conn = _Immediate(db)
    outcomes: list[tuple[bool, Any]] = []
    begin_immediate(db)
    try:
        for unit in units:
            db.execute("SAVEPOINT unit")
            try:
                value = _drive(unit(conn))
            except Exception as exc:  # the unit's own failure: undo it alone
                db.execute("ROLLBACK TO unit")
                db.execute("RELEASE unit")
                outcomes.append((False, exc))
            else:
                db.execute("RELEASE unit")
                outcomes.append((True, value))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return outcomes, conn.touched
