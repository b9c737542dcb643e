"""Domain and actor blocks: normalise the target, store it and apply every effect at once.

A block refuses the target from then on (inbox 403 before any fetch, no fetch to it, no
delivery to it) and, unless `keep_content`, removes what it left here: comments
(tombstones where replies hang below, so threads stay intact), reactions and follows.
Pending deliveries are cancelled in every case. Unblocking never brings content back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fedcomments.domains import (
    ActorRef,
    normalize_actor_url,
    normalize_domain,
    parse_actor_ref,
    self_link,
    webfinger_urls,
)
from fedcomments.errors import FedcommentsError, InvalidInput, NotFound, RemoteError
from fedcomments.model import ActorBlock, DomainBlock
from fedcomments.names import HostError, canonical_host, covering_domain, covers, host_of
from fedcomments.paging import DEFAULT_PAGE, Page, decode_cursor, encode_cursor, parse_limit
from fedcomments.runtime import Runtime
from fedcomments.services import blockfile, media
from fedcomments.services import comments as comment_service
from fedcomments.services.blockfile import LineNote, Row
from fedcomments.store import actors as actor_store
from fedcomments.store import blocks as block_store
from fedcomments.store.conn import Conn

log = logging.getLogger("fedcomments.blocks")

MAX_REASON = 1000
#: Domains blocked per transaction during an import (keeps the write lock short).
IMPORT_BATCH = 100
EXPORT_FORMATS = ("mastodon", "plain")


@dataclass(frozen=True)
class Removed:
    """What a block took away (counts)."""

    comments: int = 0
    reactions: int = 0
    followers: int = 0
    deliveries: int = 0

    def __add__(self, other: Removed) -> Removed:
        return Removed(self.comments + other.comments, self.reactions + other.reactions,
                       self.followers + other.followers, self.deliveries + other.deliveries)

    def as_dict(self) -> dict[str, int]:
        return {"comments": self.comments, "reactions": self.reactions,
                "followers": self.followers, "deliveries": self.deliveries}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Removed:
        return cls(**{k: int(data.get(k, 0)) for k in ("comments", "reactions", "followers",
                                                       "deliveries")})


@dataclass(frozen=True)
class BlockResult:
    #: the normalised domain, or the actor's id
    target: str
    #: False when it was blocked already (or covered by a parent domain's block)
    created: bool
    keep_content: bool
    removed: Removed
    covered_by: str | None = None


@dataclass
class ImportReport:
    format: str
    dry_run: bool
    keep_content: bool = False
    added: list[Row] = field(default_factory=list)
    #: (row, the existing block that already covers it)
    present: list[tuple[Row, str]] = field(default_factory=list)
    duplicates: list[LineNote] = field(default_factory=list)
    skipped: list[LineNote] = field(default_factory=list)
    invalid: list[LineNote] = field(default_factory=list)
    removed: Removed = field(default_factory=Removed)


def clean_reason(reason: str | None) -> str:
    text = " ".join((reason or "").split())
    if len(text) > MAX_REASON:
        raise InvalidInput(f"reason: at most {MAX_REASON} characters", field="reason")
    return text


def _own_host(rt: Runtime) -> str:
    return host_of(rt.settings.server.base_url)


def _refuse_self(rt: Runtime, domain: str) -> None:
    own = _own_host(rt)
    if covers(domain, own):
        raise InvalidInput(f"domain: blocking {domain} would block this server itself ({own})",
                           field="domain")


async def _remove_actor(rt: Runtime, tx: Conn, actor_id: int) -> Removed:
    comments = await comment_service.remove_actor_content(tx, actor_id, rt.now())
    reactions = await actor_store.delete_reactions(tx, actor_id)
    followers = int(await actor_store.remove_follower(tx, actor_id))
    return Removed(comments=comments, reactions=reactions, followers=followers)


async def _domain_effects(rt: Runtime, tx: Conn, domain: str, keep_content: bool) -> Removed:
    removed = Removed(deliveries=await block_store.cancel_deliveries_to_domain(
        tx, domain, rt.now()))
    # Images it served are no longer shown, whatever keep_content says (nothing more is
    # fetched from it either); their files go once the block is committed.
    await media.forget_domain(rt, tx, domain)
    if not keep_content:
        for actor_id in await _actors_in_domain(tx, domain):
            removed += await _remove_actor(rt, tx, actor_id)
    return removed


async def _actors_in_domain(tx: Conn, domain: str) -> list[int]:
    """Cached actors on `domain` or a subdomain, in any spelling their host was stored in
    (rows from before hosts were normalised may hold `bücher.example`)."""
    found = await block_store.actor_ids_in_domain(tx, domain)
    for actor_id, stored in await block_store.actors_in_other_spellings(tx):
        try:
            if covers(domain, canonical_host(stored)):
                found.append(actor_id)
        except HostError:
            continue
    return sorted(set(found))


async def _block_domain_in(rt: Runtime, tx: Conn, domain: str, reason: str,
                           keep_content: bool) -> BlockResult:
    existing = await block_store.get_domain_block(tx, domain)
    covered = None if existing else covering_domain(
        domain, frozenset(await block_store.blocked_domains(tx)))
    created = existing is None and covered is None and await block_store.insert_domain_block(
        tx, domain, reason=reason, keep_content=keep_content, now=rt.now())
    removed = await _domain_effects(rt, tx, domain, keep_content)
    if existing is not None:
        # Blocking again is harmless; without --keep-content it removes what an earlier
        # --keep-content block left, and the counts add up.
        await block_store.update_domain_block(
            tx, domain, removed=(Removed.from_dict(existing.removed) + removed).as_dict(),
            keep_content=existing.keep_content and keep_content)
    elif created:
        await block_store.update_domain_block(tx, domain, removed=removed.as_dict(),
                                              keep_content=keep_content)
    return BlockResult(domain, created, keep_content, removed, covered_by=covered)


async def block_domain(rt: Runtime, raw: str, *, reason: str | None = None,
                       keep_content: bool = False) -> BlockResult:
    """Block a domain and every subdomain, with all effects, in one transaction."""
    domain = normalize_domain(raw)
    text = clean_reason(reason)
    _refuse_self(rt, domain)
    # Refuse at once in this process, before the transaction commits, so an activity
    # arriving meanwhile cannot slip in after its domain's content was removed.
    rt.blocklist.replace(rt.blocklist.domains | {domain}, rt.blocklist.actors)
    try:
        async with rt.db.transaction() as tx:
            result = await _block_domain_in(rt, tx, domain, text, keep_content)
    finally:
        await rt.refresh_shared(force=True)
    await media.drop_blocked_files(rt)
    log.info("domain blocked", extra={"domain": domain, **result.removed.as_dict()})
    return result


async def unblock_domain(rt: Runtime, raw: str) -> str:
    """Lift a block; removed content stays removed."""
    domain = normalize_domain(raw)
    async with rt.db.transaction() as tx:
        if not await block_store.delete_domain_block(tx, domain):
            covered = covering_domain(domain, frozenset(await block_store.blocked_domains(tx)))
            hint = f"; it is covered by the block on {covered}" if covered else ""
            raise NotFound(f"domain: {domain} is not blocked{hint}")
        # Its images are fetched again (they are no content: what the block refused of
        # them was the fetching).
        await media.unforget_domain(rt, tx, domain)
    await rt.refresh_shared(force=True)
    return domain


async def list_domain_blocks(rt: Runtime) -> list[DomainBlock]:
    return await block_store.list_domain_blocks(rt.db.read)


async def import_domain_blocks(rt: Runtime, text: str, *, keep_content: bool = False,
                               dry_run: bool = False) -> ImportReport:
    """Block every `suspend` row (or listed domain); report each line that was not added."""
    parsed = blockfile.parse_blocklist(text)
    report = ImportReport(parsed.format, dry_run, keep_content, duplicates=parsed.duplicates,
                          skipped=parsed.skipped, invalid=list(parsed.invalid))
    blocked = set(await block_store.blocked_domains(rt.db.read))
    own = _own_host(rt)
    for row in parsed.rows:
        cover = covering_domain(row.domain, blocked)
        if covers(row.domain, own):
            report.invalid.append(LineNote(row.line, row.domain, "would block this server"))
        elif cover is not None:
            report.present.append((row, cover))
        else:
            report.added.append(row)
            blocked.add(row.domain)
    report.invalid.sort(key=lambda note: note.line)
    if dry_run or not report.added:
        return report
    rt.blocklist.replace(rt.blocklist.domains | {r.domain for r in report.added},
                         rt.blocklist.actors)
    try:
        for start in range(0, len(report.added), IMPORT_BATCH):
            async with rt.db.transaction() as tx:
                for row in report.added[start:start + IMPORT_BATCH]:
                    result = await _block_domain_in(rt, tx, row.domain, row.reason, keep_content)
                    report.removed += result.removed
    finally:
        await rt.refresh_shared(force=True)
    await media.drop_blocked_files(rt)
    return report


async def export_domain_blocks(rt: Runtime, fmt: str = "mastodon") -> str:
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"format: expected one of {', '.join(EXPORT_FORMATS)}", field="format")
    found = await block_store.list_domain_blocks(rt.db.read)
    if fmt == "plain":
        return blockfile.write_plain(b.domain for b in found)
    return blockfile.write_mastodon_csv((b.domain, b.reason) for b in found)


# --- actors ----------------------------------------------------------------------------


async def _webfinger(rt: Runtime, ref: ActorRef) -> str:
    allow_http = rt.settings.federation.allow_private_addresses
    errors: list[str] = []
    for url in webfinger_urls(ref, allow_http=allow_http):
        try:
            resp = await rt.remote.get_jrd(url)
        except FedcommentsError as exc:
            errors.append(str(exc))
            continue
        link = self_link(resp.data)
        if link is not None:
            return normalize_actor_url(link)
        errors.append(f"{url}: no ActivityPub actor link")
    # A server that is down (or already blocked) can still be named by a handle we know.
    assert ref.username and ref.host
    cached = await block_store.actor_by_handle(rt.db.read, ref.username,
                                               ref.host.rsplit(":", 1)[0])
    if len(cached) == 1:
        return cached[0]
    raise RemoteError(f"actor: cannot resolve {ref.handle} with WebFinger ({'; '.join(errors)})")


async def resolve_actor(rt: Runtime, raw: str) -> str:
    """The actor id for an actor URL (as given) or a handle (WebFinger)."""
    ref = parse_actor_ref(raw)
    return ref.url if ref.url else await _webfinger(rt, ref)


async def block_actor(rt: Runtime, raw: str, *, reason: str | None = None,
                      keep_content: bool = False) -> BlockResult:
    """Block one actor, seen before or not; effects apply to whatever we hold of it."""
    text = clean_reason(reason)
    ap_id = await resolve_actor(rt, raw)
    if rt.urls.is_local(ap_id):
        raise InvalidInput("actor: that is an actor of this server", field="actor")
    rt.blocklist.replace(rt.blocklist.domains, rt.blocklist.actors | {ap_id})
    try:
        async with rt.db.transaction() as tx:
            existing = await block_store.get_actor_block(tx, ap_id)
            created = existing is None and await block_store.insert_actor_block(
                tx, ap_id, reason=text, keep_content=keep_content, now=rt.now())
            removed = Removed()
            actor = await actor_store.by_ap_id(tx, ap_id)
            if actor is not None and actor.inbox:
                # Only its own inbox: a shared inbox also serves everyone else there.
                removed += Removed(deliveries=await block_store.cancel_deliveries_to_inbox(
                    tx, actor.inbox, rt.now()))
            if actor is not None and not keep_content:
                removed += await _remove_actor(rt, tx, actor.id)
            total = removed + Removed.from_dict(existing.removed if existing else {})
            await block_store.update_actor_block(
                tx, ap_id, removed=total.as_dict(),
                keep_content=keep_content and (existing is None or existing.keep_content))
    finally:
        await rt.refresh_shared(force=True)
    return BlockResult(ap_id, created, keep_content, removed)


async def unblock_actor(rt: Runtime, raw: str) -> str:
    ref = parse_actor_ref(raw)
    if ref.url:
        ap_id = ref.url
    else:
        assert ref.username and ref.host
        known = await block_store.actor_by_handle(rt.db.read, ref.username,
                                                  ref.host.rsplit(":", 1)[0])
        ap_id = known[0] if len(known) == 1 else await _webfinger(rt, ref)
    async with rt.db.transaction() as tx:
        if not await block_store.delete_actor_block(tx, ap_id):
            raise NotFound(f"actor: {ap_id} is not blocked")
    await rt.refresh_shared(force=True)
    return ap_id


async def domain_blocks_page(rt: Runtime, *, limit: int | str | None = DEFAULT_PAGE,
                             cursor: str | None = None) -> Page[DomainBlock]:
    """One page of domain blocks, by domain, after `cursor`."""
    size = parse_limit(limit)
    key = decode_cursor("domains", cursor, (str,))
    items, last = await block_store.domain_blocks_page(rt.db.read, limit=size, key=key)
    return Page(items, encode_cursor("domains", last) if last else None)


async def actor_blocks_page(rt: Runtime, *, limit: int | str | None = DEFAULT_PAGE,
                            cursor: str | None = None) -> Page[ActorBlock]:
    """One page of actor blocks, by actor id, after `cursor`."""
    size = parse_limit(limit)
    key = decode_cursor("actors", cursor, (str,))
    items, last = await block_store.actor_blocks_page(rt.db.read, limit=size, key=key)
    return Page(items, encode_cursor("actors", last) if last else None)


async def list_actor_blocks(rt: Runtime) -> list[ActorBlock]:
    return await block_store.list_actor_blocks(rt.db.read)


# --- keeping a running server in step with the CLI --------------------------------------


async def watch_blocklist(rt: Runtime, interval: float = 0.5) -> None:
    """Follow blocks (and the other shared state, see Runtime.refresh_shared) committed by
    another process, the CLI or a sibling HTTP worker, within `interval` seconds."""
    while True:
        try:
            await rt.refresh_shared()
        except Exception:  # a task boundary: log and keep watching
            log.exception("following other processes' changes failed")
        await asyncio.sleep(interval)


# --- request parsing and JSON shapes (CLI --json and admin API) --------------------------


def block_request(data: dict[str, Any], key: str) -> tuple[str, str, bool]:
    """(target, reason, keep_content) from an admin API body; unknown fields refused."""
    unknown = set(data) - {key, "reason", "keep_content"}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"{name}: unknown field", field=name)
    target, reason, keep = data.get(key), data.get("reason", ""), data.get("keep_content", False)
    if not isinstance(target, str) or not target.strip():
        raise InvalidInput(f"{key}: required", field=key)
    if not isinstance(reason, str):
        raise InvalidInput("reason: must be a string", field="reason")
    if not isinstance(keep, bool):
        raise InvalidInput("keep_content: must be true or false", field="keep_content")
    return target, reason, keep


def domain_block_json(b: DomainBlock) -> dict[str, Any]:
    return {"domain": b.domain, "reason": b.reason, "created": b.created_at.isoformat(),
            "keep_content": b.keep_content, "removed": Removed.from_dict(b.removed).as_dict()}


def actor_block_json(b: ActorBlock) -> dict[str, Any]:
    return {"actor": b.ap_id, "reason": b.reason, "created": b.created_at.isoformat(),
            "keep_content": b.keep_content, "removed": Removed.from_dict(b.removed).as_dict()}


def block_result_json(r: BlockResult, key: str) -> dict[str, Any]:
    return {key: r.target, "created": r.created, "covered_by": r.covered_by,
            "keep_content": r.keep_content, "removed": r.removed.as_dict()}


def _note(n: LineNote) -> dict[str, Any]:
    return {"line": n.line, "text": n.text, "reason": n.reason}


def import_report_json(r: ImportReport) -> dict[str, Any]:
    return {
        "format": r.format,
        "dry_run": r.dry_run,
        "keep_content": r.keep_content,
        "added": [{"line": row.line, "domain": row.domain} for row in r.added],
        "already_present": [{"line": row.line, "domain": row.domain, "covered_by": cover}
                            for row, cover in r.present],
        "duplicates": [_note(n) for n in r.duplicates],
        "skipped": [_note(n) for n in r.skipped],
        "invalid": [_note(n) for n in r.invalid],
        "removed": r.removed.as_dict(),
    }
