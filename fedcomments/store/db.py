"""Open the SQLite database: WAL, foreign keys, busy timeout, migrations, transactions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from fedcomments.errors import FedcommentsError
from fedcomments.store.conn import Conn
from fedcomments.store.schema import MIGRATIONS
from fedcomments.store.units import Unit, begin_immediate, run_batch

BUSY_TIMEOUT_MS = 5000
#: Units sharing one transaction at most: bounds how long the writer is held.
MAX_BATCH = 256

T = TypeVar("T")


class StoreError(FedcommentsError):
    """The database is unusable (newer schema, corrupt file, unwritable path)."""


class Database:
    """One writer connection (serialised by a lock) and one reader connection.

    SQLite allows one writer at a time anyway; funnelling writes through one connection
    and one lock keeps transactions from interleaving on the event loop, while reads go
    to a second connection that sees only committed data (WAL).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._units: list[tuple[Unit[Any], asyncio.Future[Any]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._versions: dict[str, int] = {}
        #: Transactions that carried units, and the units they carried (for benchmarks).
        self.unit_batches = 0
        self.units_done = 0

    async def open(self, *, migrate: bool = True) -> None:
        """Open (and migrate) the database. `migrate=False` (the extra HTTP processes)
        refuses a schema other than this code's instead: after an upgrade on disk, a
        restarted child must not migrate the database under its older parent."""
        if self.path != ":memory:":
            _create_private_file(Path(self.path))
        self._writer = await _connect(self.path, writer=True)
        try:
            if migrate:
                await _migrate(self._writer)
            else:
                await _expect_current(self._writer)
            self._reader = await _connect(self.path)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        connections = [c for c in (self._reader, self._writer) if c is not None]
        closed: list[aiosqlite.Connection] = []
        try:
            if self._flusher is not None:
                # Committed units reach their callers before the connections go; the wait
                # neither raises the flusher's error nor swallows our own cancellation.
                await asyncio.wait([self._flusher])
            for conn in connections:
                with contextlib.suppress(Exception):
                    await conn.close()
                closed.append(conn)
        finally:
            # Cancelled half-way (a second stop signal cancels aiohttp's clean-up): the
            # remaining connections' threads must end all the same, or the interpreter
            # waits for them forever at exit. Work queued before runs first.
            for conn in connections:
                if conn not in closed:
                    conn.stop()
            self._reader = self._writer = None

    @property
    def read(self) -> Conn:
        if self._reader is None:
            raise StoreError("database is not open")
        return Conn(self._reader)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """BEGIN IMMEDIATE … COMMIT; rolls back on any exception."""
        if self._writer is None:
            raise StoreError("database is not open")
        async with self._lock:
            conn = Conn(self._writer)
            await conn.run(begin_immediate)
            try:
                yield conn
                await self._writer.execute("COMMIT")
            except BaseException:
                # Also when COMMIT itself failed: the transaction must not stay open, or
                # every later BEGIN on this connection fails.
                if self._writer.in_transaction:
                    await self._writer.execute("ROLLBACK")
                raise
            self._committed(conn.touched)

    def version(self, table: str) -> int:
        """Moves each time a commit of this process touched `table` (see Conn.touch), or
        when another process's did (changed_elsewhere): a copy read at an older version may
        be stale."""
        return self._versions.get(table, 0)

    def changed_elsewhere(self, table: str) -> None:
        """Another process changed `table` (seen in its change counter): move its version."""
        self._committed({table})

    def _committed(self, touched: set[str]) -> None:
        for table in touched:
            self._versions[table] = self._versions.get(table, 0) + 1

    async def unit(self, unit: Unit[T]) -> T:
        """Run `unit` as one write transaction of its own, group-committed with the units
        that wait beside it (see store/units.py); returns once it is committed."""
        if self._writer is None:
            raise StoreError("database is not open")
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._units.append((unit, done))
        if self._flusher is None or self._flusher.done():
            # Its own task, so a caller that goes away never strands the others' units.
            self._flusher = asyncio.ensure_future(self._flush())
        return await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._units:
            async with self._lock:
                batch, self._units = self._units[:MAX_BATCH], self._units[MAX_BATCH:]
                try:
                    assert self._writer is not None
                    outcomes, touched = await self._writer._execute(  # type: ignore[no-untyped-call]
                        run_batch, self._writer._conn, [unit for unit, _ in batch])
                    self._committed(touched)
                    self.unit_batches += 1
                    self.units_done += len(batch)
                except BaseException as exc:
                    for _, done in batch:
                        if done.done():
                            continue
                        if isinstance(exc, Exception):
                            done.set_exception(exc)
                        else:
                            done.cancel()
                    if not isinstance(exc, Exception):
                        raise
                    continue
            for (_, done), (ok, value) in zip(batch, outcomes, strict=True):
                if done.done():
                    continue
                if ok:
                    done.set_result(value)
                else:
                    done.set_exception(value)

    async def data_version(self) -> int:
        """Changes when another process commits (used to notice CLI changes quickly)."""
        row = await self.read.fetchone("PRAGMA data_version")
        return int(row[0]) if row else 0


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only: it holds the private key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Never open (and close) a file this process may already hold open: closing any
    # descriptor of a file drops every POSIX lock the process has on it, SQLite's
    # included, and another process could then delete our live WAL.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


async def _connect(path: str, *, writer: bool = False) -> aiosqlite.Connection:
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open database ({exc})") from None
    conn.row_factory = sqlite3.Row
    try:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA synchronous = NORMAL")
        wal = False
        if path != ":memory:":
            async with conn.execute("PRAGMA journal_mode = WAL") as cur:
                row = await cur.fetchone()
            wal = row is not None and str(row[0]).lower() == "wal"
        if writer and wal:
            # From here the writer waits for other writers in begin_immediate (finer
            # steps than SQLite's); inside its transaction, with WAL, nothing is busy.
            # Without WAL (a file system without shared memory) COMMIT waits for readers,
            # so SQLite's own busy wait stays.
            await conn.execute("PRAGMA busy_timeout = 0")
    except BaseException:
        # Failed, or cancelled (a stop signal during start-up): the connection's thread
        # must end all the same, or the interpreter waits for it forever at exit.
        conn.stop()
        raise
    return conn


async def _expect_current(conn: aiosqlite.Connection) -> None:
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    if current != len(MIGRATIONS):
        raise StoreError(
            f"database schema version {current}, this fedcomments expects "
            f"{len(MIGRATIONS)}: restart `fedcomments serve` to upgrade")


async def _migrate(conn: aiosqlite.Connection) -> None:
    """Apply pending migrations, each in its own transaction with its version bump."""
    async with conn.execute("PRAGMA user_version") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    if current > len(MIGRATIONS):
        raise StoreError(
            f"database schema version {current} is newer than this fedcomments "
            f"({len(MIGRATIONS)}); upgrade fedcomments"
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        # DDL and PRAGMA user_version are transactional in SQLite: a crash mid-way
        # leaves the previous version intact.
        await conn._execute(begin_immediate, conn._conn)  # type: ignore[no-untyped-call]
        try:
            async with conn.execute("PRAGMA user_version") as cur:
                row = await cur.fetchone()
            if row and int(row[0]) >= version:  # another process migrated meanwhile
                await conn.execute("ROLLBACK")
                continue
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {version}")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


def schema_version() -> int:
    return len(MIGRATIONS)
