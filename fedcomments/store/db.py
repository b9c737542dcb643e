"""Open the SQLite database: WAL, foreign keys, busy timeout, migrations, transactions."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from fedcomments.errors import FedcommentsError
from fedcomments.store.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 5000

Params = Sequence[Any] | dict[str, Any]


class StoreError(FedcommentsError):
    """The database is unusable (newer schema, corrupt file, unwritable path)."""


def _one(db: sqlite3.Connection, sql: str, params: Params) -> sqlite3.Row | None:
    return db.execute(sql, params).fetchone()


def _all(db: sqlite3.Connection, sql: str, params: Params) -> list[sqlite3.Row]:
    return db.execute(sql, params).fetchall()


def _write(db: sqlite3.Connection, sql: str, params: Params) -> tuple[int | None, int]:
    cur = db.execute(sql, params)
    return cur.lastrowid, cur.rowcount


def _many(db: sqlite3.Connection, sql: str, rows: list[Sequence[Any]]) -> None:
    db.executemany(sql, rows)


class Conn:
    """A connection handle for repo functions: a read connection or an open transaction.

    Each statement is one trip to the connection's SQLite thread. aiosqlite's cursor API
    takes three (execute, fetch, close), and the inbox runs enough statements per
    activity for those trips to dominate its cost, so statements run as one call there.
    """

    def __init__(self, raw: aiosqlite.Connection) -> None:
        self._raw = raw

    async def _call(self, fn: Any, sql: str, params: Any) -> Any:
        # aiosqlite's own execute_fetchall/execute_insert are built the same way.
        return await self._raw._execute(fn, self._raw._conn, sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[sqlite3.Row]:
        return await self._call(_all, sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> sqlite3.Row | None:
        return await self._call(_one, sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns lastrowid for INSERTs, else rowcount."""
        lastrowid, rowcount = await self._call(_write, sql, params)
        if sql.lstrip()[:6].upper() == "INSERT":
            return lastrowid or 0
        return rowcount

    async def rowcount(self, sql: str, params: Params = ()) -> int:
        return (await self._call(_write, sql, params))[1]

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._call(_many, sql, list(rows))


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

    async def open(self) -> None:
        if self.path != ":memory:":
            _create_private_file(Path(self.path))
        self._writer = await _connect(self.path)
        try:
            await _migrate(self._writer)
            self._reader = await _connect(self.path)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
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
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield Conn(self._writer)
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            else:
                await self._writer.execute("COMMIT")

    async def data_version(self) -> int:
        """Changes when another process commits (used to notice CLI changes quickly)."""
        row = await self.read.fetchone("PRAGMA data_version")
        return int(row[0]) if row else 0


def _create_private_file(path: Path) -> None:
    """Create the database file readable by its owner only: it holds the private key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)


async def _connect(path: str) -> aiosqlite.Connection:
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open database ({exc})") from None
    conn.row_factory = sqlite3.Row
    await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA foreign_keys = ON")
    await conn.execute("PRAGMA synchronous = NORMAL")
    if path != ":memory:":
        await conn.execute("PRAGMA journal_mode = WAL")
    return conn


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
        await conn.execute("BEGIN IMMEDIATE")
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
