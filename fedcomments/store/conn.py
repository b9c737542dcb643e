"""The connection handle repo functions take: each statement is one call on its thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import aiosqlite

Params = Sequence[Any] | dict[str, Any]
T = TypeVar("T")


def _one(db: sqlite3.Connection, sql: str, params: Params) -> sqlite3.Row | None:
    row: sqlite3.Row | None = db.execute(sql, params).fetchone()
    return row


def _all(db: sqlite3.Connection, sql: str, params: Params) -> list[sqlite3.Row]:
    rows: list[sqlite3.Row] = db.execute(sql, params).fetchall()
    return rows


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
        #: Tables whose in-memory copies must be dropped once this transaction commits.
        self.touched: set[str] = set()

    def touch(self, table: str) -> None:
        """Note a write that in-memory copies of `table` must see (counted at commit)."""
        self.touched.add(table)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(sqlite3_connection, *args)` in one trip: several statements, one snapshot.

        For repo functions only (SQL stays in the store layer).
        """
        # aiosqlite's own execute_fetchall/execute_insert are built the same way.
        return await self._raw._execute(fn, self._raw._conn, *args)  # type: ignore[no-any-return,no-untyped-call]

    async def _call(self, fn: Callable[[sqlite3.Connection, str, Any], T], sql: str,
                    params: Any) -> T:
        return await self.run(fn, sql, params)

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
