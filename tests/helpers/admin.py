"""Helpers for the administration tests (no tests here): named peers, a config file for
the CLI, running the CLI in-process beside a live server, probing the inbox."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedcomments import cli
from fedcomments.names import host_of
from fedcomments.store import actors as actor_store
from fedcomments.store.actors import ActorFields
from tests.conftest import Instance
from tests.helpers.fediverse import FakeActor, FakeInstance, activity, deliver, note
from tests.helpers.peers import until


@dataclass
class NamedPeer(FakeInstance):
    """A fake instance addressed by a host name instead of 127.0.0.1.

    `localhost` resolves here, so a block on `localhost` never blocks the fedcomments
    instance under test (which lives on 127.0.0.1). Other names (`social.peer.localhost`)
    do not resolve on this machine: such a peer can only sign and post, and its actor has
    to be known already (see `remember_actor`).
    """

    host: str = "localhost"

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.port}"

    def webfinger(self, actor: FakeActor) -> None:
        """Answer WebFinger for `actor` (one actor per peer) the way Mastodon does."""
        self.serve("/.well-known/webfinger", {
            "subject": f"acct:{actor.username}@{self.url.split('://', 1)[1]}",
            "links": [
                {"rel": "http://webfinger.net/rel/profile-page", "type": "text/html",
                 "href": f"{self.url}/@{actor.username}"},
                {"rel": "self", "type": "application/activity+json", "href": actor.id},
            ],
        }, "application/jrd+json")


async def start_peer(host: str = "localhost") -> NamedPeer:
    peer = NamedPeer(host=host)
    await peer.start()
    return peer


async def remember_actor(fc: Instance, actor: FakeActor) -> None:
    """Cache an actor and its key as if fetched earlier (for peers whose name does not
    resolve on this machine)."""
    now = fc.rt.now()
    async with fc.rt.db.transaction() as tx:
        actor_id = await actor_store.upsert(tx, ActorFields(
            ap_id=actor.id, domain=host_of(actor.id), type="Person",
            username=actor.username, name=actor.username, summary=None, url=None, icon=None,
            inbox=actor.inbox,
            shared_inbox=f"{actor.instance.url}/inbox", followers_url=actor.followers), now)
        await actor_store.store_key(tx, actor.key_id, actor_id, actor.keypair.public_pem, now)


def write_config(fc: Instance, directory: Path) -> str:
    """A config file naming the instance's database, for CLI runs beside the server."""
    s = fc.settings
    path = directory / "fedcomments.toml"
    path.write_text(
        f'[server]\nbase_url = "{s.server.base_url}"\n'
        f'[storage]\ndatabase = "{s.storage.database}"\n'
        "[federation]\nallow_private_addresses = true\n",
        encoding="utf-8",
    )
    return str(path)


@dataclass
class CliRun:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli_sync(*argv: str) -> CliRun:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return CliRun(code, out.getvalue(), err.getvalue())


async def run_cli(*argv: str) -> CliRun:
    """The real CLI in a thread (its own event loop and database connections), while the
    test's server keeps serving on this loop."""
    return await asyncio.to_thread(run_cli_sync, *argv)


# --- a peer's activities ---------------------------------------------------------------


async def send(fc: Instance, actor: FakeActor, type_: str, obj: Any) -> int:
    """Sign and POST an activity to the shared inbox; returns the status."""
    resp = await deliver(fc.session, actor, f"{fc.url}/inbox", activity(actor, type_, obj))
    return resp.status


async def reply(fc: Instance, actor: FakeActor, in_reply_to: str,
                content: str = "<p>Nice post!</p>") -> tuple[int, dict[str, Any]]:
    doc = note(actor, in_reply_to, content=content)
    return await send(fc, actor, "Create", doc), doc


async def probe(fc: Instance, actor: FakeActor) -> int:
    """A POST whose body no longer matches its digest: 401 while the actor is allowed,
    403 once blocked; it changes nothing either way."""
    doc = activity(actor, "Like", f"{fc.url}/posts/none")
    resp = await deliver(fc.session, actor, f"{fc.url}/inbox", doc,
                         tamper=lambda body: body + b" ")
    return resp.status


async def wait_for_probe(fc: Instance, actor: FakeActor, want: int,
                         bound: float = 5.0) -> float:
    """Poll until the inbox answers `want` to a probe; returns the seconds it took."""
    start = time.monotonic()
    while True:
        status = await probe(fc, actor)
        elapsed = time.monotonic() - start
        if status == want:
            return elapsed
        assert elapsed < bound, f"inbox still answers {status}, not {want}, after {bound}s"
        await asyncio.sleep(0.05)


async def wait_until(check: Callable[[], bool], bound: float = 5.0) -> float:
    """`until` that fails the test when `bound` passes; returns the seconds it took."""
    start = time.monotonic()
    try:
        await until(check, bound)
    except TimeoutError:
        raise AssertionError(f"condition still false after {bound}s") from None
    return time.monotonic() - start


async def count(fc: Instance, sql: str, *params: Any) -> int:
    row = await fc.rt.db.read.fetchone(sql, params)
    assert row is not None
    return int(row[0])
