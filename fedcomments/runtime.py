"""Composition root shared by the web app and the CLI: settings, database, keys, client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fedcomments import __version__
from fedcomments.ap import keys as apkeys
from fedcomments.ap.httpsig import sign_request_cavage, sign_request_rfc9421
from fedcomments.ap.jsonld import Normalizer
from fedcomments.background import Flights
from fedcomments.blocklist import Blocklist
from fedcomments.config import Settings
from fedcomments.keycache import KeyCache
from fedcomments.remote import RemoteClient, RemoteSettings, ResolverFactory
from fedcomments.store import blocks as block_store
from fedcomments.store import changes as change_store
from fedcomments.store import instance as instance_store
from fedcomments.store import queue
from fedcomments.store.db import Database
from fedcomments.urls import Urls

log = logging.getLogger("fedcomments")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    """Everything a service needs, passed explicitly as the first argument."""

    settings: Settings
    db: Database
    urls: Urls
    keys: apkeys.KeyPair
    clock: Clock = utcnow
    blocklist: Blocklist = field(default_factory=Blocklist)
    #: JSON-LD normaliser with its caches; one per process.
    normalizer: Normalizer = field(default_factory=Normalizer)
    remote: RemoteClient = field(init=False)
    #: Hosts with delivery failure marks, reloaded with the blocklist: the inbox clears a
    #: host's marks when it hears from it, and must not query the database to know.
    marked_hosts: set[str] = field(default_factory=set)
    #: Senders' keys with their owners (services.actors.ResolvedKey), by key id.
    key_cache: KeyCache[Any] = field(default_factory=KeyCache)
    #: Fetches and refills of remote images running in this process (services/media.py),
    #: two at a time: each may hold a decoder child of up to images.CHILD_MEMORY.
    media_jobs: Flights = field(default_factory=lambda: Flights(limit=2))
    #: Backfills started by incoming replies (services/backfill.py), finished after the
    #: sender has its answer; two run at a time.
    backfill_jobs: Flights = field(default_factory=lambda: Flights(limit=2))
    #: The database's change counters as last seen (store/changes.py).
    _counters: dict[str, int] = field(default_factory=dict)
    #: Where the HTTP client looks names up (the system's resolver when None).
    resolver: ResolverFactory | None = None
    #: One reload of the blocklist at a time, so the last one read is the one kept.
    _blocks_loading: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: The client for the owner's webhook ([notify] webhook_url), when there is one:
    #: unsigned, and to a private address only where the owner allowed it.
    webhook_remote: RemoteClient | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.remote = RemoteClient(
            RemoteSettings(
                allow_private_addresses=self.settings.federation.allow_private_addresses,
                user_agent=user_agent(self.settings),
            ),
            signer=self.sign,
            is_blocked=self.blocklist.domain_blocked,
            # Every GET (keys, actors, objects, WebFinger) sees blocks committed by any
            # process up to that moment, not only those this process has noticed.
            before_get=self.follow_blocks,
            resolver=self.resolver,
        )
        notify = self.settings.notify
        if notify.webhook_url:
            self.webhook_remote = RemoteClient(RemoteSettings(
                allow_private_addresses=(notify.webhook_allow_private
                                         or self.settings.federation.allow_private_addresses),
                user_agent=user_agent(self.settings), signing_threads=1))

    def now(self) -> datetime:
        return self.clock()

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
             *, scheme: str | None = None) -> dict[str, str]:
        """Sign an outgoing request as the blog actor."""
        scheme = scheme or self.settings.federation.signature_scheme
        signer = sign_request_rfc9421 if scheme == "rfc9421" else sign_request_cavage
        return signer(method, url, headers, body, key_id=self.urls.key_id,
                      private_key_pem=self.keys.private_pem, now=self.now())

    @property
    def blocks_seen(self) -> int | None:
        """The blocks counter the in-memory blocklist was loaded at."""
        return self.blocklist.version

    async def follow_blocks(self) -> None:
        """Catch up with blocks committed by any process (the CLI, a sibling worker): one
        primary-key read of the blocks counter; the lists are read again only if it moved.
        Called before anything is fetched or refused, so neither waits for the poll."""
        if await change_store.counter(self.db.read, change_store.BLOCKS) != self.blocks_seen:
            await self._load_blocks()

    async def _load_blocks(self) -> None:
        # The counter first, then the lists: what is read is at least as new as the
        # version it is filed under, and both are swapped in with no await between them.
        async with self._blocks_loading:
            version = await change_store.counter(self.db.read, change_store.BLOCKS)
            domains = await block_store.blocked_domains(self.db.read)
            actors = await block_store.blocked_actors(self.db.read)
            self.blocklist.replace(domains, actors, version)

    async def refresh_shared(self, *, force: bool = False) -> bool:
        """Follow what other processes (the CLI, sibling HTTP workers) committed: reload
        blocks and marked hosts when their change counter moved, and let the key cache
        drop copies of actors another process changed. True if anything moved."""
        counters = await change_store.counters(self.db.read)
        moved = {name for name, n in counters.items() if self._counters.get(name) != n}
        if self._counters and change_store.ACTORS in moved:
            self.db.changed_elsewhere(change_store.ACTORS)
        self._counters = counters
        if force or counters.get(change_store.BLOCKS) != self.blocks_seen:
            await self._load_blocks()
        if force or change_store.HOSTS in moved:
            self.marked_hosts = await queue.marked_hosts(self.db.read)
        return bool(moved)


def user_agent(settings: Settings) -> str:
    return f"fedcomments/{__version__} (+{settings.server.base_url})"


async def _ensure_keys(db: Database, now: datetime) -> apkeys.KeyPair:
    existing = await instance_store.get_keys(db.read)
    if existing:
        return apkeys.KeyPair(private_pem=existing[0], public_pem=existing[1])
    pair = apkeys.generate_rsa_keypair(2048)
    async with db.transaction() as tx:
        await instance_store.insert_keys(tx, pair.private_pem, pair.public_pem, now)
    # Another process may have won the race; the stored pair is the one that counts.
    stored = await instance_store.get_keys(db.read)
    assert stored is not None
    return apkeys.KeyPair(private_pem=stored[0], public_pem=stored[1])


@contextlib.asynccontextmanager
async def open_runtime(settings: Settings, *, clock: Clock = utcnow, migrate: bool = True,
                       resolver: ResolverFactory | None = None) -> AsyncIterator[Runtime]:
    """Open the database (migrating it, unless `migrate` is False: see Database.open), load
    or create the keys, start the client (looking names up with `resolver`, if given)."""
    db = Database(str(settings.database_path))
    await db.open(migrate=migrate)
    try:
        keys = await _ensure_keys(db, clock())
        urls = Urls(settings.server.base_url, settings.actor.username)
        rt = Runtime(settings=settings, db=db, urls=urls, keys=keys, clock=clock,
                     resolver=resolver)
        await rt.refresh_shared(force=True)
        await rt.remote.start()
        try:
            if rt.webhook_remote is not None:
                await rt.webhook_remote.start()
            yield rt
        finally:
            await rt.media_jobs.close()
            await rt.backfill_jobs.close()
            if rt.webhook_remote is not None:
                await rt.webhook_remote.close()
            await rt.remote.close()
    finally:
        await db.close()
