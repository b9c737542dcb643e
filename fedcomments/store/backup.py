"""A consistent copy of the live database (`VACUUM INTO`: one read transaction, so the
server keeps writing meanwhile and the copy holds every commit made before it began),
and its way back into a stopped server's database file."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from fedcomments.errors import FedcommentsError, InvalidInput
from fedcomments.store.db import BUSY_TIMEOUT_MS
from fedcomments.store.schema import MIGRATIONS


class InUse(FedcommentsError):
    """The database is open in another process (a running server or worker)."""

    exit_code = 1


@dataclass(frozen=True)
class CopyInfo:
    path: Path
    bytes: int
    schema_version: int
    comments: int
    posts: int


def backup(database: Path, target: Path) -> CopyInfo:
    """Copy `database` into `target` (mode 0600: it holds the blog's private key) while
    other processes may keep writing; `target` is replaced only once the copy is checked."""
    if not database.is_file():
        raise InvalidInput(f"database: {database} does not exist", field="database")
    _refuse_same(database, target)
    if target.is_dir():
        raise InvalidInput(f"file: {target} is a directory; name the backup file in it",
                           field="file")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    # VACUUM INTO writes into an empty file it finds; creating it first fixes its mode.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        source = sqlite3.connect(database, timeout=BUSY_TIMEOUT_MS / 1000,
                                 isolation_level=None)
        try:
            source.execute("VACUUM INTO ?", (str(partial),))
        finally:
            source.close()
        info = inspect(partial)
        with partial.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    _sync_dir(target.parent)
    return CopyInfo(target, target.stat().st_size, info.schema_version, info.comments,
                    info.posts)


def inspect(path: Path) -> CopyInfo:
    """Open a database file read-only and check it: intact, a fedcomments database with
    its keys, of a schema this code knows (a newer one is refused)."""
    if not path.is_file():
        raise InvalidInput(f"file: {path} does not exist", field="file")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InvalidInput(f"file: {path}: cannot open ({exc})", field="file") from None
    try:
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise InvalidInput(f"file: {path} is damaged (quick_check failed)", field="file")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise InvalidInput(
                f"file: {path} has database schema version {version}, newer than this "
                f"fedcomments ({len(MIGRATIONS)}); upgrade fedcomments first", field="file")
        keys = conn.execute("SELECT COUNT(*) FROM instance").fetchone()[0]
        comments = conn.execute("SELECT COUNT(*) FROM comments").fetchone()[0]
        posts = conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"file: {path} is not a fedcomments database ({exc})",
                           field="file") from None
    finally:
        conn.close()
    if version < 1 or keys != 1:
        raise InvalidInput(f"file: {path} is not a fedcomments database (no keys)",
                           field="file")
    return CopyInfo(path, path.stat().st_size, version, int(comments), int(posts))


def restore(source: Path, database: Path) -> CopyInfo:
    """Put the copy at `source` in place of `database`, which no process may have open
    (refused with InUse otherwise: a running server would go on with its own data)."""
    info = inspect(source)
    _refuse_same(source, database)
    database.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    target = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        # Exclusive locking mode takes (and keeps) the file's exclusive lock, which every
        # other connection, even an idle one in WAL mode, holds off by its shared lock.
        target.execute("PRAGMA locking_mode = EXCLUSIVE")
        try:
            target.execute("BEGIN EXCLUSIVE")
            target.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            target.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise InUse(f"{database} is in use ({exc}): stop the server and workers "
                        "first") from None
        copy = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
        try:
            copy.backup(target)
        finally:
            copy.close()
        # A file in WAL mode keeps recent pages beside it: fold them in before letting go.
        target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        target.close()
    os.chmod(database, 0o600)
    _sync_dir(database.parent)
    return CopyInfo(database, database.stat().st_size, info.schema_version, info.comments,
                    info.posts)


def _refuse_same(a: Path, b: Path) -> None:
    resolved = b.resolve()
    if resolved == a.resolve() or resolved.name in (a.name + "-wal", a.name + "-shm"):
        raise InvalidInput(f"file: {b} is the database itself", field="file")


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
