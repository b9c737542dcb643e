"""Units of work: one trip to the writer thread, group commit, per-unit rollback."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fedcomments.store.db import Conn, Database
from fedcomments.store.units import Unit, UnitSuspended


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(str(tmp_path / "units.sqlite3"))
    await database.open()
    async with database.transaction() as tx:
        await tx.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    yield database
    await database.close()


def insert(key: str, value: int) -> Unit[int]:
    async def unit(tx: Conn) -> int:
        return await tx.execute("INSERT INTO t (k, v) VALUES (?, ?)", (key, value))
    return unit


async def rows(db: Database) -> dict[str, int]:
    return {r[0]: r[1] for r in await db.read.fetchall("SELECT k, v FROM t")}


async def test_concurrent_units_share_transactions(db: Database) -> None:
    """Given 200 units submitted at once, when awaited, then every one is committed and
    visible to the reader, in far fewer transactions than units."""
    ids = await asyncio.gather(*(db.unit(insert(f"k{i}", i)) for i in range(200)))
    assert sorted(ids) == list(range(1, 201))
    assert await rows(db) == {f"k{i}": i for i in range(200)}
    assert db.units_done == 200
    assert db.unit_batches <= 3


async def test_failing_unit_is_rolled_back_alone(db: Database) -> None:
    """Given a batch where one unit writes then fails on a constraint, when committed, then
    its own first write is undone, its caller gets the error, and its neighbours commit."""
    await db.unit(insert("taken", 0))

    async def writes_then_fails(tx: Conn) -> None:
        await tx.execute("INSERT INTO t (k, v) VALUES ('half', 1)")
        await tx.execute("INSERT INTO t (k, v) VALUES ('taken', 2)")

    results = await asyncio.gather(
        db.unit(insert("before", 1)), db.unit(writes_then_fails),
        db.unit(insert("after", 3)), return_exceptions=True)
    assert isinstance(results[1], sqlite3.IntegrityError)
    assert await rows(db) == {"taken": 0, "before": 1, "after": 3}


async def test_unit_that_awaits_elsewhere_is_refused(db: Database) -> None:
    """Given a unit that awaits something besides its connection, when run, then it fails
    with UnitSuspended and what it wrote before is rolled back."""
    async def suspends(tx: Conn) -> None:
        await tx.execute("INSERT INTO t (k, v) VALUES ('lost', 1)")
        await asyncio.sleep(0)

    with pytest.raises(UnitSuspended):
        await db.unit(suspends)
    assert await rows(db) == {}
    assert await db.unit(insert("next", 2)) == 1


async def test_unit_reads_its_own_writes_and_returns_value(db: Database) -> None:
    """Given a unit that inserts then reads in the same transaction, then it sees its row
    and its return value reaches the caller."""
    async def read_back(tx: Conn) -> int:
        await tx.execute("INSERT INTO t (k, v) VALUES ('x', 41)")
        row = await tx.fetchone("SELECT v + 1 FROM t WHERE k = 'x'")
        return int(row[0]) if row else -1

    assert await db.unit(read_back) == 42


async def test_units_wait_for_an_open_transaction(db: Database) -> None:
    """Given an open transaction() holding the writer, when a unit is submitted, then it
    commits only after that transaction, never inside it."""
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO t (k, v) VALUES ('first', 1)")
        pending = asyncio.ensure_future(db.unit(insert("second", 2)))
        await asyncio.sleep(0)
        assert not pending.done()
        await tx.execute("UPDATE t SET v = 10 WHERE k = 'first'")
    await pending
    assert await rows(db) == {"first": 10, "second": 2}


async def test_commits_that_touch_a_table_move_its_version(db: Database) -> None:
    """Given units and a transaction, then only commits whose writes called touch('t')
    move version('t'), and a rolled-back transaction does not."""
    async def touching(tx: Conn) -> None:
        tx.touch("t")
        await tx.execute("INSERT INTO t (k, v) VALUES ('a', 1)")

    assert db.version("t") == 0
    await db.unit(touching)
    assert db.version("t") == 1
    await db.unit(insert("b", 2))
    assert db.version("t") == 1
    async with db.transaction() as tx:
        tx.touch("t")
    assert db.version("t") == 2
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            tx.touch("t")
            raise RuntimeError("undo")
    assert db.version("t") == 2
