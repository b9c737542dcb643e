"""`fedcomments backup` and `restore`: the database file copied while the server runs, and
put back while it is stopped (the work runs on a thread: SQLite's copy blocks)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fedcomments.config import Settings
from fedcomments.store import backup as backup_store
from fedcomments.store.backup import CopyInfo, InUse

__all__ = ["CopyInfo", "InUse", "backup", "copy_json", "current", "inspect", "restore"]


async def backup(settings: Settings, target: Path) -> CopyInfo:
    """A consistent copy of the whole database (keys included) at `target`, mode 0600."""
    return await asyncio.to_thread(backup_store.backup, settings.database_path, target)


async def inspect(path: Path) -> CopyInfo:
    """What a backup file holds, after checking it can be restored here."""
    return await asyncio.to_thread(backup_store.inspect, path)


async def current(settings: Settings) -> CopyInfo | None:
    """What the configured database holds now (None when there is no database yet)."""
    if not settings.database_path.is_file() or settings.database_path.stat().st_size == 0:
        return None
    return await inspect(settings.database_path)


async def restore(settings: Settings, source: Path) -> CopyInfo:
    """Replace the configured database with the backup at `source`; the server and its
    workers must be stopped (InUse otherwise). A newer schema than this code's is refused;
    an older one is upgraded by the next `serve`."""
    return await asyncio.to_thread(backup_store.restore, source, settings.database_path)


def copy_json(info: CopyInfo) -> dict[str, Any]:
    return {"file": str(info.path), "bytes": info.bytes, "schema_version": info.schema_version,
            "comments": info.comments, "posts": info.posts}
