"""An Isso database (its SQLite file, opened read-only) read as a stream of comment records:
`threads(id, uri, title)` and `comments(tid, id, parent, created, modified, mode, text,
author, email, website, …)`, where `uri` is the page's path, `created` a Unix time and
`mode` 1 published, 2 waiting for approval, 4 deleted while replies hang below."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from fedcomments.formats.records import BadExport, CommentRecord, PostRecord, Records
from fedcomments.model import ImportKey
from fedcomments.urls import site_key

SOURCE = "isso"
_MODES = {1: "approved", 2: "pending", 4: "deleted"}
_BATCH = 500


def read(path: Path, site: str) -> Records:
    """Every comment of the Isso database at `path`; `site` is the blog's address, which
    Isso does not store (its threads are paths)."""
    parts = urlsplit(site)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadExport(f"--site: the blog's address, like https://blog.example, not {site!r}")
    if not path.is_file():
        raise BadExport(f"{path}: no such file")
    try:
        # Read-only, so an import can never change (or lock out) a running Isso's file;
        # the records are pulled from worker threads, one at a time.
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                             check_same_thread=False)
    except sqlite3.Error as exc:
        raise BadExport(f"{path}: cannot open ({exc})") from None
    try:
        yield from _read(db, str(path), site)
    except sqlite3.DatabaseError as exc:
        raise BadExport(f"{path}: not an Isso database ({exc})") from None
    finally:
        db.close()


def _read(db: sqlite3.Connection, where: str, site: str) -> Iterator[CommentRecord]:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not {"comments", "threads"} <= tables:
        raise BadExport(f"{where}: not an Isso database (no comments and threads tables)")
    key_site = site_key(site)
    cursor = db.execute(
        "SELECT c.id, c.parent, c.created, c.modified, c.mode, c.text, c.author, c.email, "
        "c.website, t.uri, t.title FROM comments c JOIN threads t ON t.id = c.tid ORDER BY c.id")
    while rows := cursor.fetchmany(_BATCH):
        for (cid, parent, created, modified, mode, text, author, email, website, uri,
             title) in rows:
            # Isso's uri is the page's path (location.pathname), the blog's prefix included.
            permalink = urljoin(site, str(uri or "/"))
            yield CommentRecord(
                key=ImportKey(SOURCE, key_site, str(cid)),
                post=PostRecord(permalink=permalink, title=title or permalink),
                published=datetime.fromtimestamp(float(created), UTC),
                updated=datetime.fromtimestamp(float(modified), UTC) if modified else None,
                content=text or "",
                text_format="markdown",
                status=_MODES.get(mode, "pending"),
                parent=ImportKey(SOURCE, key_site, str(parent)) if parent else None,
                author_name=author or None,
                author_email=email or None,
                author_website=website or None,
            )
