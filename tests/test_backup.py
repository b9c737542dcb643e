"""`fedcomments backup` of a server taking replies, and `restore` into a fresh directory."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from fedcomments.store.schema import MIGRATIONS
from tests.conftest import Instance
from tests.helpers.admin import run_cli, write_config
from tests.helpers.exports import workdir
from tests.helpers.fediverse import FakeInstance, activity, deliver, note
from tests.helpers.peers import until
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import thread


def _rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def _set_version(path: Path, version: int) -> None:
    db = sqlite3.connect(path)
    try:
        db.execute(f"PRAGMA user_version = {version}")
    finally:
        db.close()


async def test_backup_while_replies_stream_in_then_restore_serves_the_same_threads(
        make_instance: Any, remote: FakeInstance, tmp_path: Path) -> None:
    """Given a server receiving a stream of signed replies, when `backup` runs in the middle
    of it, then the file (mode 0600) is an intact database holding every reply acknowledged
    before the backup started and the blog's keys; restored into a fresh directory it
    serves the same thread, and the server answers with the same key."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    post = await add_post_via_api(fc, "busy")
    alice = remote.actor("alice")
    acked: list[str] = []
    stop = asyncio.Event()

    async def stream() -> None:
        while not stop.is_set():
            obj = note(alice, post["ap_id"], content=f"<p>Reply {len(acked)}</p>")
            resp = await deliver(fc.session, alice, f"{fc.url}/inbox",
                                 activity(alice, "Create", obj))
            assert resp.status == 202, await resp.text()
            acked.append(obj["id"])

    sender = asyncio.create_task(stream())
    try:
        await until(lambda: len(acked) >= 10, 30)
        before = list(acked)
        target = tmp_path / "backups" / "fedcomments.db"
        run = await run_cli("backup", str(target), "--json", "--config",
                            write_config(fc, tmp_path))
        assert run.code == 0, run.err
        await until(lambda: len(acked) >= len(before) + 5, 30)
    finally:
        stop.set()
        await sender
    assert target.stat().st_mode & 0o777 == 0o600
    assert _rows(target, "PRAGMA integrity_check") == [("ok",)]
    stored = {r[0] for r in _rows(target, "SELECT ap_id FROM comments")}
    assert set(before) <= stored
    assert run.json()["comments"] == len(stored)
    [(private_key,)] = _rows(target, "SELECT private_key_pem FROM instance")
    assert private_key == fc.rt.keys.private_pem

    fresh = workdir(tmp_path, "fresh")
    database = fresh / "data" / "restored.sqlite3"
    config = fresh / "fedcomments.toml"
    config.write_text(f'[storage]\ndatabase = "{database}"\n', encoding="utf-8")
    run = await run_cli("restore", str(target), "--config", str(config))
    assert run.code == 0, run.err
    assert database.stat().st_mode & 0o777 == 0o600
    restored: Instance = await make_instance(storage={"database": str(database)})
    assert restored.rt.keys.public_pem == fc.rt.keys.public_pem
    shown = await thread(restored, url=post["url"])
    assert {c["ap_id"] for c in shown["comments"]} == stored
    original = {c["ap_id"]: c for c in (await thread(fc, url=post["url"]))["comments"]}
    assert all(c["content"] == original[c["ap_id"]]["content"]
               and c["published"] == original[c["ap_id"]]["published"]
               and c["author"] == original[c["ap_id"]]["author"] for c in shown["comments"])


async def test_restore_refuses_a_running_server_a_newer_schema_and_itself(
        make_instance: Any, tmp_path: Path) -> None:
    """Given a backup, when restoring it over the database of a running server, then exit 1
    and nothing changes; a backup of a newer schema, a file that is no database, or a
    backup onto the database itself are refused with exit 2; over a stopped server's
    database holding posts it asks first (exit 2 without a terminal) and with --yes puts
    the backup's posts in place of its own."""
    fc: Instance = await make_instance()
    await add_post_via_api(fc, "kept")
    config = write_config(fc, tmp_path)
    target = tmp_path / "copy.db"
    assert (await run_cli("backup", str(target), "--config", config)).code == 0
    await add_post_via_api(fc, "newer")

    run = await run_cli("restore", str(target), "--yes", "--config", config)
    assert (run.code, run.out) == (1, "")
    assert run.err.count("\n") == 1 and "stop the server" in run.err
    assert len((await thread(fc, url="https://blog.example/newer/"))["comments"]) == 0

    newer = tmp_path / "newer.db"
    shutil.copy(target, newer)
    _set_version(newer, len(MIGRATIONS) + 1)
    junk = tmp_path / "junk.db"
    junk.write_text("not a database", encoding="utf-8")
    elsewhere = workdir(tmp_path, "elsewhere")
    other = elsewhere / "fedcomments.toml"
    other.write_text(f'[storage]\ndatabase = "{elsewhere / "db.sqlite3"}"\n', encoding="utf-8")
    for argv, message in ((["restore", str(newer)], "newer than this fedcomments"),
                          (["restore", str(junk)], "not a fedcomments database"),
                          (["backup", fc.settings.storage.database], "the database itself")):
        run = await run_cli(*argv, "--config", str(other) if argv[0] == "restore" else config)
        assert (run.code, run.out) == (2, ""), run.err
        assert run.err.count("\n") == 1 and message in run.err

    assert (await run_cli("posts", "add", "--url", "https://blog.example/mine/", "--title",
                          "Mine", "--config", str(other))).code == 0
    asked = await run_cli("restore", str(target), "--config", str(other))
    assert (asked.code, asked.out) == (2, "") and "--yes" in asked.err
    done = await run_cli("restore", str(target), "--yes", "--config", str(other))
    assert done.code == 0, done.err
    listed = await run_cli("posts", "list", "--json", "--config", str(other))
    assert [p["url"] for p in listed.json()["posts"]] == ["https://blog.example/kept/"]


async def test_backup_into_a_directory_is_refused_as_bad_input(make_instance: Any,
                                                               tmp_path: Path) -> None:
    """Given a backup target that is an existing directory, when backing up, then one line
    naming the directory and exit code 2, and nothing is written beside it."""
    fc: Instance = await make_instance()
    config = write_config(fc, tmp_path)
    directory = workdir(tmp_path, "backups")
    before = sorted(os.listdir(tmp_path))
    run = await run_cli("backup", str(directory), "--config", config)
    assert (run.code, run.out) == (2, ""), run.err
    assert run.err.count("\n") == 1 and "is a directory" in run.err
    assert sorted(os.listdir(tmp_path)) == before
    assert os.listdir(directory) == []
