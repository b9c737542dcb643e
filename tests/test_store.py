"""The SQLite store: migrations, pragmas, private file mode, atomic migration steps."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fedcomments.store import db as dbmod
from fedcomments.store import schema
from fedcomments.store.db import Database, StoreError


async def test_open_migrates_and_sets_pragmas(tmp_path: Path) -> None:
    """Given a new file, opening creates every table at the latest version with WAL on."""
    path = tmp_path / "x.sqlite3"
    db = Database(str(path))
    await db.open()
    try:
        version = await db.read.fetchone("PRAGMA user_version")
        assert version[0] == len(schema.MIGRATIONS)
        mode = await db.read.fetchone("PRAGMA journal_mode")
        assert mode[0] == "wal"
        fk = await db.read.fetchone("PRAGMA foreign_keys")
        assert fk[0] == 1
        timeout = await db.read.fetchone("PRAGMA busy_timeout")
        assert timeout[0] == dbmod.BUSY_TIMEOUT_MS
        tables = {r[0] for r in await db.read.fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"posts", "comments", "actors", "actor_keys", "followers", "reactions",
                "domain_blocks", "actor_blocks", "deliveries", "processed_activities",
                "tombstones", "reports", "instance", "hosts"} <= tables
    finally:
        await db.close()
    assert os.stat(path).st_mode & 0o777 == 0o600


async def test_failed_migration_leaves_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a step that fails half-way, neither its tables nor its version remain."""
    path = str(tmp_path / "x.sqlite3")
    broken = [*schema.MIGRATIONS, ["CREATE TABLE half (x)", "CREATE TABLE oops (syntax error"]]
    monkeypatch.setattr(dbmod, "MIGRATIONS", broken)
    db = Database(path)
    with pytest.raises(sqlite3.OperationalError):
        await db.open()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(schema.MIGRATIONS)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "half" not in names
        assert "posts" in names
    finally:
        conn.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """Given a database from a newer version, opening refuses with a clear error."""
    path = str(tmp_path / "x.sqlite3")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(schema.MIGRATIONS) + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this fedcomments"):
        await Database(path).open()


async def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    """Given an exception inside a transaction, nothing of it is committed."""
    db = Database(str(tmp_path / "x.sqlite3"))
    await db.open()
    try:
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO processed_activities (ap_id, received_at) VALUES ('a', 'b')")
                raise RuntimeError("boom")
        row = await db.read.fetchone("SELECT COUNT(*) FROM processed_activities")
        assert row[0] == 0
    finally:
        await db.close()


async def test_creating_the_file_again_keeps_our_sqlite_locks(tmp_path: Path) -> None:
    """Given a database open and written in this process, when its file is "created" again
    (every Database.open does this, e.g. the delivery worker's runtime) and another process
    then opens and closes it, then our live WAL survives and our next write is seen: no
    descriptor of the file was opened and closed, which would drop our POSIX locks."""
    path = tmp_path / "x.sqlite3"
    db = Database(str(path))
    await db.open()
    try:
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO domain_blocks (domain, created_at) VALUES (?, ?)",
                             ("a.example", "2026-01-01T00:00:00.000000Z"))
        dbmod._create_private_file(path)
        await asyncio.to_thread(_other_process, path, "SELECT count(*) FROM domain_blocks")
        async with db.transaction() as tx:
            await tx.execute("INSERT INTO domain_blocks (domain, created_at) VALUES (?, ?)",
                             ("b.example", "2026-01-01T00:00:00.000000Z"))
        seen = await asyncio.to_thread(_other_process, path, "SELECT count(*) FROM domain_blocks")
        assert seen == "2"
    finally:
        await db.close()


def _other_process(path: Path, sql: str) -> str:
    script = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
              "print(c.execute(sys.argv[2]).fetchone()[0]); c.close()")
    done = subprocess.run([sys.executable, "-c", script, str(path), sql],
                          check=True, capture_output=True, text=True)
    return done.stdout.strip()


async def test_a_failed_commit_is_rolled_back_and_the_writer_stays_usable(
        tmp_path: Path) -> None:
    """Given a transaction whose COMMIT fails (a deferred foreign key), when it ends, then
    the error reaches the caller, nothing is stored, and the next transaction begins."""
    db = Database(str(tmp_path / "fc.sqlite3"))
    await db.open()
    try:
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            async with db.transaction() as tx:
                await tx.execute("PRAGMA defer_foreign_keys = ON")
                await tx.execute(
                    "INSERT INTO comments (post_id, origin, visibility, status, content, "
                    "published_at, created_at) VALUES (9999, 'local', 'public', 'approved', "
                    "'x', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')")
        async with db.transaction() as tx:
            row = await tx.fetchone("SELECT COUNT(*) FROM comments")
            assert row is not None and row[0] == 0
    finally:
        await db.close()
