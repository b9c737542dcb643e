"""The directory of re-encoded images: files named by content, written atomically, kept
within a size by dropping the least recently used. Blocking calls: run them in a thread.

A file is `DIR/ab/abcdef…-40.webp`: its digest (of the source image), the box it was cut
for and its format. Any machine may hold any subset of them; a missing one is made again.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: A file name as served under /media/ (nothing else is ever looked up on disk).
NAME = re.compile(r"(?P<digest>[0-9a-f]{32})-(?P<box>[0-9]{1,3})\.(?P<ext>webp)\Z")


def name_of(digest: str, box: int, ext: str) -> str:
    return f"{digest}-{box}.{ext}"


def path_of(root: Path, name: str) -> Path:
    return root / name[:2] / name


def write(root: Path, files: Iterable[tuple[str, bytes]]) -> int:
    """Write each (name, bytes) atomically (a reader never sees half a file); returns the
    bytes written."""
    total = 0
    for name, data in files:
        target = path_of(root, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        total += len(data)
    return total


def touch(path: Path) -> None:
    """Mark a file as just used (its mtime is what eviction sorts by)."""
    with contextlib.suppress(OSError):
        os.utime(path)


def read(path: Path, mark_used: bool) -> bytes | None:
    """A file's bytes (marked as just used if `mark_used`), None if it is not here."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if mark_used:
        touch(path)
    return data


def remove(root: Path, names: Iterable[str]) -> int:
    """Remove these files where this machine has them; how many there were."""
    return sum(_unlink(str(path_of(root, name))) for name in names)


@dataclass(frozen=True)
class Sweep:
    """What one pass over the directory removed and kept."""

    removed_unknown: int
    evicted: int
    kept_bytes: int


def sweep(root: Path, known: set[str], max_bytes: int, *, keep_newer_than: float = 60.0
          ) -> Sweep:
    """Remove files whose digest no ready image has (and stray temporary files), then the
    least recently used until at most `max_bytes` remain (files written in the last
    `keep_newer_than` seconds stay, so an image being made is never swept)."""
    if not root.is_dir():
        return Sweep(0, 0, 0)
    now = time.time()
    unknown = 0
    files: list[tuple[float, int, Path]] = []
    for sub in root.iterdir():
        if not sub.is_dir():
            continue
        for entry in os.scandir(sub):
            try:
                stat = entry.stat()
            except OSError:
                continue
            young = now - stat.st_mtime < keep_newer_than
            match = NAME.match(entry.name)
            if match is None or match["digest"] not in known:
                if not young and _unlink(entry.path):
                    unknown += 1
                continue
            files.append((stat.st_mtime, stat.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in files)
    evicted = 0
    files.sort()
    for mtime, size, path in files:
        if total <= max_bytes:
            break
        if now - mtime < keep_newer_than:
            continue
        if _unlink(str(path)):
            total -= size
            evicted += 1
    return Sweep(unknown, evicted, total)


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
    except OSError:
        return False
    return True
