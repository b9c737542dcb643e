"""`[server] workers`: several HTTP processes on one port and one database, in step.

The server runs as real processes here (`python -m fedcomments serve`), a fake remote
instance signs for real, and what the processes share is checked in the SQLite file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from fedcomments.config import Settings, settings_from_mapping
from fedcomments.errors import ConfigError, Forbidden
from fedcomments.runtime import Runtime, open_runtime
from fedcomments.services import actors as actor_service
from fedcomments.services import blocks as block_service
from fedcomments.store import actors as actor_store
from fedcomments.store import changes, units
from fedcomments.store.units import begin_immediate
from tests.conftest import free_port
from tests.helpers.fediverse import FakeInstance, activity, deliver, note
from tests.helpers.peers import until, until_true

TOKEN = "t" * 40


def _children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


class Served:
    """`fedcomments serve` with `workers = 2` as a process tree, its stderr in a file."""

    def __init__(self, tmp_path: Path, workers: int = 2) -> None:
        self.port = free_port()
        self.db = tmp_path / "fc.sqlite3"
        self.log = tmp_path / "server.log"
        self.config = tmp_path / "fc.toml"
        self.config.write_text(
            f'[server]\nhost = "127.0.0.1"\nport = {self.port}\nworkers = {workers}\n'
            f'[storage]\ndatabase = "{self.db}"\n'
            f'[federation]\nallow_private_addresses = true\n'
            f'[moderation]\npolicy = "none"\n'
            f'[admin]\ntoken = "{TOKEN}"\n'
            f'[logging]\njson = true\n')
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> subprocess.Popen[bytes]:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "fedcomments", "serve", "--config", str(self.config)],
                stdout=subprocess.DEVNULL, stderr=log, cwd=self.config.parent,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return self.proc

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()
                if line.startswith("{")]

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    server = Served(tmp_path)
    server.start()
    try:
        yield server
    finally:
        assert server.proc is not None
        children = _children(server.proc.pid)
        if server.proc.poll() is None:
            server.stop()
        for pid in children:  # never leave a child behind if the parent failed
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def _ready(session: aiohttp.ClientSession, served: Served) -> None:
    """Until both processes serve: the first answers, then fresh connections are sent until
    the second has logged one (its socket listens only once it serves)."""
    async def answered_by_second() -> bool:
        assert served.proc is not None and served.proc.poll() is None, served.log.read_text()
        try:
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(force_close=True)) as fresh, \
                    fresh.get(f"{served.url}/.well-known/nodeinfo") as resp:
                assert resp.status == 200
        except aiohttp.ClientError:
            return False  # not listening yet
        return any(line.get("worker") == 2 for line in served.lines())

    await until_true(answered_by_second, 30)
    assert served.proc is not None and len(_children(served.proc.pid)) == 1


async def test_two_workers_share_the_port_and_store_every_reply_once(served: Served) -> None:
    """Given workers = 2, when 40 signed replies arrive on fresh connections, then both
    processes answer some, every reply is stored exactly once, and SIGTERM stops both."""
    remote = await FakeInstance().start()
    try:
        alice = remote.actor("alice")
        async with aiohttp.ClientSession() as admin:
            await _ready(admin, served)
            resp = await admin.post(f"{served.url}/api/v1/admin/posts",
                                    headers={"Authorization": f"Bearer {TOKEN}"},
                                    json={"url": "https://blog.example/a/", "title": "A"})
            assert resp.status == 201, await resp.text()
            post_ap_id = (await resp.json())["ap_id"]
        notes = [note(alice, post_ap_id, content=f"<p>reply {i}</p>") for i in range(40)]

        async def send(doc: dict[str, object]) -> int:
            # A new connection each: SO_REUSEPORT spreads connections, not requests.
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(force_close=True)) as session:
                resp = await deliver(session, alice, f"{served.url}/inbox",
                                     activity(alice, "Create", doc))
                return resp.status

        # All at once, so the two processes' writers also compete for SQLite's lock.
        assert await asyncio.gather(*(send(doc) for doc in notes)) == [202] * 40
    finally:
        await remote.close()
    assert served.proc is not None
    child = _children(served.proc.pid)
    assert served.stop() == 0
    for pid in child:
        await until(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 20)
    with sqlite3.connect(served.db) as db:
        stored = dict(db.execute("SELECT ap_id, COUNT(*) FROM comments GROUP BY ap_id"))
    assert stored == {doc["id"]: 1 for doc in notes}
    inbox_lines = [line for line in served.lines()
                   if line.get("path") == "/inbox" and line.get("status") == 202]
    assert len(inbox_lines) == 40
    assert {line["worker"] for line in inbox_lines} == {1, 2}


async def test_a_worker_that_dies_is_started_again(served: Served) -> None:
    """Given workers = 2, when the second process is killed, then the first starts a new
    one within its restart pause and the port keeps answering."""
    assert served.proc is not None
    async with aiohttp.ClientSession() as session:
        await _ready(session, served)
        (first,) = _children(served.proc.pid)
        os.kill(first, signal.SIGKILL)
        await until(lambda: bool(_children(served.proc.pid) - {first}), 20)  # type: ignore[union-attr]
        (second,) = _children(served.proc.pid) - {first}
        for _ in range(10):
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(force_close=True)) as fresh, \
                    fresh.get(f"{served.url}/.well-known/nodeinfo") as resp:
                assert resp.status == 200
    restarts = [line for line in served.lines() if line["logger"] == "fedcomments.workers"]
    assert restarts and restarts[0]["child"] == 2 and restarts[0]["pid"] == first
    assert restarts[0]["code"] == -signal.SIGKILL
    assert served.stop() == 0
    await until(lambda: not Path(f"/proc/{second}").exists(), 20)


async def test_a_taken_port_fails_before_any_worker_starts(tmp_path: Path) -> None:
    """Given a port another server listens on, when serve starts with workers = 2, then it
    exits 1 with one line naming the address and starts no child."""
    served = Served(tmp_path)
    with socket.socket() as taken:
        # Another server that shares its port: without the check first, ours would join it.
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", served.port))
        taken.listen()
        proc = served.start()
        assert proc.wait(timeout=30) == 1
    err = served.log.read_text().strip().splitlines()
    assert err == [f"fedcomments: error: cannot listen on 127.0.0.1:{served.port}: "
                   "address already in use"]


def test_workers_must_be_between_1_and_32() -> None:
    """Given workers = 0 or 33, when the config loads, then it is refused by name."""
    for bad in (0, 33):
        with pytest.raises(ConfigError, match=r"\[server\] workers: must be between 1 and 32"):
            settings_from_mapping({"server": {"workers": bad}}, source="c.toml")
    assert settings_from_mapping({"server": {"workers": 4}}, source="c.toml").server.workers == 4


# --- in-memory copies follow other processes' commits ------------------------------------


@pytest.fixture
async def two_runtimes(tmp_path: Path) -> AsyncIterator[tuple[Runtime, Runtime]]:
    """Two runtimes on one SQLite file, as two HTTP workers (or a worker and the CLI)."""
    settings = settings_from_mapping({"storage": {"database": str(tmp_path / "fc.sqlite3")}},
                                     source="test")
    async with open_runtime(settings) as one, open_runtime(settings) as two:
        yield one, two


async def test_a_key_deleted_by_another_process_leaves_the_key_cache(
        two_runtimes: tuple[Runtime, Runtime]) -> None:
    """Given a key cached by one process, when another deletes it, then after the first
    follows the change counters the cache no longer serves it."""
    one, two = two_runtimes
    key_id = "https://remote.example/users/a#main-key"
    async with one.db.transaction() as tx:
        actor_id = await actor_store.upsert(tx, actor_store.ActorFields(
            ap_id="https://remote.example/users/a", domain="remote.example", type="Person",
            username="a", name="A", summary=None, url=None, icon=None,
            inbox="https://remote.example/users/a/inbox", shared_inbox=None,
            followers_url=None), one.now())
        await actor_store.store_key(tx, key_id, actor_id, "PEM", one.now())
    cached = await actor_service.cached_key(one, key_id)
    assert cached is not None and cached.pem == "PEM"
    async with two.db.transaction() as tx:
        await actor_store.delete_keys(tx, actor_id)
    # Not yet followed: the copy is still served (this is what the counters fix).
    assert await actor_service.cached_key(one, key_id) is cached
    assert await one.refresh_shared() is True
    assert await actor_service.cached_key(one, key_id) is None


async def test_blocks_from_another_process_are_followed_and_nothing_else_reloads(
        two_runtimes: tuple[Runtime, Runtime]) -> None:
    """Given two processes, when one blocks a domain, then the other's refresh sees it,
    and a refresh with nothing changed reports nothing moved."""
    one, two = two_runtimes
    assert await one.refresh_shared() is False
    await block_service.block_domain(two, "spam.example", reason="spam")
    assert not one.blocklist.domain_blocked("spam.example")
    assert await one.refresh_shared() is True
    assert one.blocklist.domain_blocked("spam.example")
    assert await one.refresh_shared() is False


def _migrated(tmp_path: Path) -> Settings:
    """Settings for a database file that has been created and migrated, then closed."""
    settings = settings_from_mapping({"storage": {"database": str(tmp_path / "fc.sqlite3")}},
                                     source="test")

    async def migrate() -> None:
        async with open_runtime(settings):
            pass

    asyncio.run(migrate())
    return settings


def test_host_counter_moves_only_with_delivery_marks(tmp_path: Path) -> None:
    """Given migration 7, when a host's success time changes, then the hosts counter stays;
    when its unavailable mark changes, then it moves by one."""
    settings = _migrated(tmp_path)
    with sqlite3.connect(settings.database_path) as db:
        def count() -> int:
            return int(db.execute("SELECT n FROM change_counters WHERE name = ?",
                                  (changes.HOSTS,)).fetchone()[0])

        db.execute("INSERT INTO hosts (host) VALUES ('a.example')")
        after_insert = count()
        db.execute("UPDATE hosts SET last_success_at = 'x', consecutive_failures = 3")
        assert count() == after_insert
        db.execute("UPDATE hosts SET unavailable_since = '2026-01-01T00:00:00Z'")
        assert count() == after_insert + 1


# --- two writers on one file: the wait for the write lock -------------------------------


def _connection(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA busy_timeout = 0")
    return db


def test_begin_immediate_waits_for_another_writer_and_then_takes_the_lock(
        tmp_path: Path) -> None:
    """Given another connection in a write transaction, when begin_immediate runs, then it
    tries again (the first try was busy) and gets the lock as soon as the other commits."""
    path = tmp_path / "w.sqlite3"
    holder, waiter = _connection(path), _connection(path)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    tries: list[str] = []
    first_try = threading.Event()

    def traced(sql: str) -> None:
        if sql.startswith("BEGIN"):
            tries.append(sql)
            first_try.set()

    waiter.set_trace_callback(traced)
    failure: list[BaseException] = []

    def wait() -> None:
        try:
            begin_immediate(waiter)
        except BaseException as exc:  # reported to the test thread below
            failure.append(exc)

    thread = threading.Thread(target=wait)
    thread.start()
    assert first_try.wait(10)
    holder.execute("COMMIT")
    thread.join(10)
    assert not thread.is_alive() and not failure
    assert waiter.in_transaction and len(tries) >= 2
    assert waiter.execute("SELECT x FROM t").fetchall() == [(1,)]
    waiter.execute("ROLLBACK")


def test_begin_immediate_gives_up_busy_after_its_wait(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a write transaction that never ends, when begin_immediate's wait runs out, then
    it raises SQLite's busy error and holds no transaction."""
    monkeypatch.setattr(units, "WRITE_WAIT_S", 0.05)
    path = tmp_path / "w.sqlite3"
    holder, waiter = _connection(path), _connection(path)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE t (x)")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        begin_immediate(waiter)
    assert not waiter.in_transaction
    holder.execute("ROLLBACK")


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for its new parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_worker_whose_parent_is_killed_stops(served: Served) -> None:
    """Given workers = 2, when the first process is killed outright (SIGKILL), then the
    second stops by itself instead of serving on as an orphan."""
    assert served.proc is not None
    async with aiohttp.ClientSession() as session:
        await _ready(session, served)
    (child,) = _children(served.proc.pid)
    served.proc.kill()
    served.proc.wait(timeout=10)
    await until(lambda: not _running(child), 20)
    gone = [line for line in served.lines()
            if line.get("message") == "parent process gone; stopping"]
    assert gone and gone[0]["worker"] == 2 and gone[0]["parent"] == served.proc.pid


async def test_a_worker_stopped_with_sigterm_is_not_started_again(served: Served) -> None:
    """Given workers = 2, when the second process alone gets SIGTERM (as systemd signals
    every process of a service), then it stops cleanly and the first does not restart it."""
    assert served.proc is not None
    async with aiohttp.ClientSession() as session:
        # The second process has served by then: its signal handlers are in place, so
        # SIGTERM stops it gracefully (exit 0).
        await _ready(session, served)
    (child,) = _children(served.proc.pid)
    os.kill(child, signal.SIGTERM)

    def stopped() -> list[dict[str, object]]:
        return [line for line in served.lines() if line.get("message") == "HTTP worker stopped"]

    await until(lambda: bool(stopped()), 20)
    assert stopped()[0]["pid"] == child and stopped()[0]["code"] == 0
    assert _children(served.proc.pid) == set()
    assert not [line for line in served.lines() if line["logger"] == "fedcomments.workers"
                and line["level"] == "error"]
    assert served.stop() == 0


def _sqlite_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate()
            if t.is_alive() and "_connection_worker_thread" in t.name]


async def test_opening_the_database_cancelled_at_any_point_leaves_no_thread(
        tmp_path: Path) -> None:
    """Given a stop signal during start-up (aiohttp cancels the start-up task), when
    Database.open is cancelled after each of its steps in turn, then every SQLite thread it
    started ends; a thread left behind would keep the process from ever exiting."""
    from fedcomments.store.db import Database

    before = set(_sqlite_threads())
    path = str(tmp_path / "fc.sqlite3")
    first = Database(path)
    await first.open()  # migrated once, as a restarted server finds it
    await first.close()
    # Each step is one turn of the event loop; open() needs a few hundred.
    for steps in range(1, 2000, 3):
        db = Database(path)
        task = asyncio.ensure_future(db.open())
        for _ in range(steps):
            await asyncio.sleep(0)
        if task.done():
            await db.close()
            break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await until(lambda: set(_sqlite_threads()) <= before, 10)
    else:
        raise AssertionError("open() never finished within 2000 steps")


async def test_closing_the_database_cancelled_at_any_point_leaves_no_thread(
        tmp_path: Path) -> None:
    """Given a second stop signal while the server cleans up (aiohttp then cancels the
    clean-up), when Database.close is cancelled after each of its steps in turn, then both
    SQLite threads still end."""
    from fedcomments.store.db import Database

    before = set(_sqlite_threads())
    path = str(tmp_path / "fc.sqlite3")
    # From one step on: a task cancelled before its first step never runs at all.
    for steps in range(1, 400, 2):
        db = Database(path)
        await db.open()
        task = asyncio.ensure_future(db.close())
        for _ in range(steps):
            await asyncio.sleep(0)
        finished = task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        # `db` is still referenced: nothing but close() itself may end the threads.
        await until(lambda: set(_sqlite_threads()) <= before, 10)
        if finished:
            return
    raise AssertionError("close() never finished within 400 steps")


async def test_a_block_committed_by_another_process_refuses_the_next_write_at_once(
        tmp_path: Path) -> None:
    """Given a worker whose in-memory blocklist has not yet seen a block another worker
    just committed (and whose purge already ran), when a reply from the blocked domain
    reaches the first worker, then it is refused and nothing of it is stored."""
    from multidict import CIMultiDict

    from fedcomments.model import PostInput
    from fedcomments.services import inbox as inbox_service
    from fedcomments.services import posts as post_service
    from tests.helpers.fediverse import our_cavage

    settings = settings_from_mapping({
        "storage": {"database": str(tmp_path / "fc.sqlite3")},
        "federation": {"allow_private_addresses": True},
        "moderation": {"policy": "none"}}, source="test")
    remote = await FakeInstance(host="localhost").start()
    try:
        alice = remote.actor("alice")
        async with open_runtime(settings) as one, open_runtime(settings) as two:
            post = (await post_service.add_post(one, PostInput(
                permalink="https://blog.example/a/", title="A"))).post

            async def send(text: str) -> inbox_service.InboxResult:
                doc = activity(alice, "Create", note(alice, post.ap_id, content=text))
                body = json.dumps(doc).encode()
                url = f"{settings.server.base_url}/inbox"
                base = {"Content-Type": "application/activity+json"}
                signed = our_cavage("POST", url, dict(base), body, alice.key_id,
                                    alice.keypair.private_pem, one.now())
                return await inbox_service.receive(one, inbox_service.InboxRequest(
                    method="POST", url=url, headers=CIMultiDict({**base, **signed}),
                    body=body))

            assert (await send("<p>before</p>")).outcome == "created"
            result = await block_service.block_domain(two, "localhost", reason="spam")
            assert result.removed.comments == 1
            assert not one.blocklist.domain_blocked("localhost")  # not followed yet
            with pytest.raises(Forbidden, match="localhost is blocked"):
                await send("<p>after</p>")
            assert one.blocklist.domain_blocked("localhost")
    finally:
        await remote.close()
    with sqlite3.connect(settings.database_path) as db:
        assert db.execute("SELECT COUNT(*) FROM comments").fetchone()[0] == 0


def test_every_change_counter_trigger_exists(tmp_path: Path) -> None:
    """Given a migrated database, then each table the in-memory copies follow has its
    insert, update and delete counter triggers (a rebuilt table would silently lose them)."""
    settings = _migrated(tmp_path)
    with sqlite3.connect(settings.database_path) as db:
        names = {r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'count_%'")}
    assert names == {f"count_{table}_{event}"
                     for table in ("actors", "actor_keys", "domain_blocks", "actor_blocks",
                                   "hosts")
                     for event in ("insert", "update", "delete")}


async def test_an_extra_worker_never_migrates(tmp_path: Path) -> None:
    """Given a database at an older schema (an upgrade on disk, the old parent still
    running), when an extra HTTP process opens it, then it refuses with one clear error
    and the schema stays as it was."""
    from fedcomments.store.db import Database, StoreError

    path = tmp_path / "fc.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 3")
    child = Database(str(path))
    with pytest.raises(StoreError, match="schema version 3, this fedcomments expects"):
        await child.open(migrate=False)
    await child.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
