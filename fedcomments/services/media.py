"""Remote images served by us: fetched once through the guarded client, checked and
re-encoded in a child process, kept as files named by content, made again where missing,
and swept when nothing shows them or the cache is full.

A rendering that shows a placeholder for an image asks for it (`request`); one fetch per
image runs at a time in a process (and one at a time across processes, by a lease in its
row); its outcome clears the fragments that show it. A reader asking for a file this
machine does not have (evicted, or made on another machine) gets it made again
(`image_for`).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fedcomments.ap.types import Emoji
from fedcomments.blocklist import Blocklist
from fedcomments.errors import FedcommentsError
from fedcomments.media import decoder
from fedcomments.media.decoder import ImageRefused, Rendered
from fedcomments.remote import FetchFailed, FetchRefused
from fedcomments.runtime import Runtime
from fedcomments.services.thread_media import MAX_THUMBNAILS, is_thumbnail_type
from fedcomments.store import media as media_store
from fedcomments.store import media_files
from fedcomments.store.conn import Conn
from fedcomments.store.media import MediaRow, Outcome

log = logging.getLogger("fedcomments.media")

#: How long a claimed fetch is reserved: the client's deadline, the decoder's, and margin.
LEASE = timedelta(seconds=90)
#: A failed fetch is tried again after an hour, doubling up to a week.
RETRY_FIRST = timedelta(hours=1)
RETRY_MAX = timedelta(days=7)
#: Seconds a decoder child may take before it is killed.
DECODE_SECONDS = 30.0
#: Rows younger than this are never swept (an actor stored before its first comment).
GRACE = timedelta(days=1)
#: A served file's mtime (what eviction sorts by) is refreshed at most this often.
TOUCH_SECONDS = 600.0
#: A missing file that could not be made again is not retried for this long.
REFILL_BACKOFF = 300.0
SWEEP_BATCH = 500
#: Failed fetches tried again per housekeeping pass (the rest wait for the next hour).
RETRY_BATCH = 100
#: The reason recorded for images from a blocked domain.
BLOCKED = "blocked domain"
#: The 1× box whose size a row records, by kind.
_ONE_X = {"avatar": decoder.SHOWN["avatar"][0], "emoji": decoder.SHOWN["emoji"][0],
          "thumbnail": decoder.SHOWN["thumbnail"][0]}


def root(rt: Runtime) -> Path:
    return rt.settings.media_path


def digest_of(source: bytes, kind: str) -> str:
    """The name of an image's files: its source bytes, its kind and the pipeline."""
    h = hashlib.sha256(f"{decoder.PIPELINE}:{kind}:".encode())
    h.update(source)
    return h.hexdigest()[:32]


def _owner_icon(rt: Runtime) -> str | None:
    return rt.settings.actor.icon or None


# --- decoding -----------------------------------------------------------------------------


class DecoderStopped(OSError):
    """The decoder was stopped from outside (the machine, not the image): try later."""


#: Signals that stop a decoder from outside (a service manager or a terminal stopping a
#: whole group of processes); its CPU limit kills it with SIGKILL, which stays a refusal.
_STOPPED_FROM_OUTSIDE = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                   signal.SIGQUIT})


async def decode(data: bytes, declared: str, kind: str) -> Rendered:
    """Check and re-encode an image in a child process (its own memory and CPU limits; the
    event loop only waits for its answer); raises ImageRefused, or DecoderStopped. The
    child has a session of its own: a terminal's Ctrl-C stops the server, which stops it."""
    proc = await asyncio.create_subprocess_exec(
        *decoder.decode_command(), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        cwd=decoder.package_root(), start_new_session=True)
    try:
        async with asyncio.timeout(DECODE_SECONDS):
            out, err = await proc.communicate(decoder.request_bytes(data, declared, kind))
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise ImageRefused(f"not decoded within {DECODE_SECONDS:g} s") from None
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    code = proc.returncode
    if code is not None and code < 0 and -code in _STOPPED_FROM_OUTSIDE:
        raise DecoderStopped(f"decoder stopped by {signal.Signals(-code).name}")
    if code != 0 or not out:
        # Killed by its CPU limit, or out of its memory: the image is what is wrong.
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise ImageRefused(f"decoder stopped (exit {proc.returncode}) {tail[0][:200]}".strip())
    try:
        return decoder.parse_answer(out)
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageRefused(f"decoder answer unreadable: {exc}") from None


# --- what comments and actors show -----------------------------------------------------


def thumbnail_urls(attachments: Iterable[tuple[str, str | None]]) -> list[str]:
    """Of (url, media type) attachments, the ones shown as thumbnails (raster images,
    the first few)."""
    found = [url for url, media_type in attachments if is_thumbnail_type(media_type)]
    return list(dict.fromkeys(found))[:MAX_THUMBNAILS]


async def link_comment(tx: Conn, comment_id: int, emojis: Iterable[Emoji],
                       attachments: Iterable[tuple[str, str | None]], now: datetime) -> None:
    """Record the custom emoji and thumbnails a stored comment shows (with its write)."""
    await media_store.set_comment_media(tx, comment_id, [(e.shortcode, e.url) for e in emojis],
                                        thumbnail_urls(attachments), now)


async def link_actor(tx: Conn, actor_id: int, emojis: Iterable[Emoji], now: datetime) -> None:
    """Record the custom emoji of a stored actor's name (with its write)."""
    await media_store.set_actor_emojis(tx, actor_id, [(e.shortcode, e.url) for e in emojis],
                                       now)


# --- fetching -----------------------------------------------------------------------------


def _retry_at(rt: Runtime, row: MediaRow) -> datetime:
    delay: timedelta = min(RETRY_FIRST * (2 ** max(0, row.attempts - 1)), RETRY_MAX)
    now: datetime = rt.now()
    return now + delay


async def _make(rt: Runtime, row: MediaRow) -> Outcome:
    """Fetch, check, re-encode and store the files of one image; never raises for what
    the network or the image does. OSError when this machine cannot decode or store it
    (no decoder process, a full disk): that is no fault of the image."""
    url, kind = row.url, row.kind
    if rt.blocklist.url_blocked(url):
        return Outcome("refused", reason=BLOCKED)
    try:
        resp = await rt.remote.get_media(url, max_bytes=decoder.MAX_BYTES)
    except FetchRefused as exc:
        log.warning("image refused", extra={"url": url, "kind": kind, "reason": str(exc)})
        return Outcome("refused", reason=str(exc)[:500])
    except FetchFailed as exc:
        if exc.status == 200:  # it answered, with more than we decode: refused for good
            log.warning("image refused", extra={"url": url, "kind": kind, "reason": str(exc)})
            return Outcome("refused", reason=str(exc)[:500])
        log.info("image fetch failed", extra={"url": url, "kind": kind, "error": str(exc)})
        return Outcome("failed", reason=str(exc)[:500], next_try_at=_retry_at(rt, row))
    try:
        rendered = await decode(resp.body, resp.content_type, kind)
    except ImageRefused as exc:
        # Logged once: the row is refused from now on, nobody fetches it again.
        log.warning("image refused", extra={"url": url, "kind": kind, "reason": str(exc),
                                            "bytes": len(resp.body)})
        return Outcome("refused", reason=str(exc)[:500])
    digest = digest_of(resp.body, kind)
    files = [(media_files.name_of(digest, v.box, rendered.ext), v.data)
             for v in rendered.variants]
    written = await asyncio.to_thread(media_files.write, root(rt), files)
    one = rendered.variant(_ONE_X[kind])
    _wrote(rt, written)
    return Outcome("ready", digest=digest, ext=rendered.ext, width=one.width, height=one.height)


async def fetch(rt: Runtime, url: str, kind: str, *, force: bool = False) -> MediaRow | None:
    """Fetch one image now unless it is made, refused, failing, or being fetched by
    another process; `force` fetches a made or refused one again (a profile update). The
    row as it stands after."""
    row = await media_store.get(rt.db.read, url, kind)
    now = rt.now()
    if row is None:
        async with rt.db.transaction() as tx:
            await media_store.ensure(tx, [(url, kind)], now)
        row = await media_store.get(rt.db.read, url, kind)
        assert row is not None
    if not force and not row.due(now):
        return row
    async with rt.db.transaction() as tx:
        if not await media_store.claim(tx, row, now, now + LEASE):
            return row
    row = await media_store.by_id(rt.db.read, row.id) or row
    try:
        outcome = await _make(rt, row)
    except OSError as exc:
        _not_stored(row, exc)
        outcome = Outcome("failed", reason=f"not stored: {exc}"[:500],
                          next_try_at=_retry_at(rt, row))
    except Exception:
        async with rt.db.transaction() as tx:  # the lease ends; the next reader retries
            await media_store.release(tx, row.id)
        raise
    if force and row.ready and outcome.status == "failed":
        outcome = Outcome("ready")  # a profile update while its server is down: keep it
    async with rt.db.transaction() as tx:
        await media_store.record(tx, row.id, outcome, rt.now(), _owner_icon(rt))
    return await media_store.by_id(rt.db.read, row.id)


def _not_stored(row: MediaRow, exc: OSError) -> None:
    log.warning("image not stored", extra={"url": row.url, "kind": row.kind,
                                           "error": str(exc)})


def request(rt: Runtime, wanted: Iterable[tuple[str, str]]) -> None:
    """Start fetching images a rendering showed placeholders for; returns at once."""
    if not rt.settings.media.proxy:
        return
    for url, kind in wanted:
        rt.media_jobs.start(("fetch", url, kind), functools.partial(_fetch_logged, rt, url, kind))


async def _fetch_logged(rt: Runtime, url: str, kind: str, force: bool = False) -> None:
    try:
        await fetch(rt, url, kind, force=force)
    except FedcommentsError as exc:  # a task boundary: the database was busy, or the like
        log.warning("image not fetched", extra={"url": url, "kind": kind, "error": str(exc)})


def refresh_avatar(rt: Runtime, icon: str | None) -> None:
    """After a profile update, fetch the actor's avatar again even if its URL is unchanged
    (some servers keep the URL and change the file); in the background."""
    if rt.settings.media.proxy and icon:
        rt.media_jobs.start(("fetch", icon, "avatar"),
                            lambda: _fetch_logged(rt, icon, "avatar", force=True))


# --- serving ------------------------------------------------------------------------------


@dataclass
class _Memo:
    touched: dict[str, float]
    refill_failed: dict[str, float]
    written: int = 0


def _memo(rt: Runtime) -> _Memo:
    """What this process served and failed to make again recently."""
    found = rt.media_jobs.notes.get("media")
    if not isinstance(found, _Memo):
        found = rt.media_jobs.notes["media"] = _Memo({}, {})
    return found


def _wrote(rt: Runtime, size: int) -> None:
    """Count bytes written; past a tenth of the cache, sweep without waiting for the hour."""
    memo = _memo(rt)
    memo.written += size
    if memo.written > (rt.settings.media.cache_max_mb << 20) // 10:
        memo.written = 0
        rt.media_jobs.start("sweep", lambda: _sweep_logged(rt))


async def image_for(rt: Runtime, name: str) -> bytes | None:
    """The bytes to serve for /media/NAME, made again from its source if this machine does
    not have them (one fetch however many readers ask); None if they cannot be. Read
    whole (a few kilobytes), so an eviction meanwhile cannot break the answer."""
    match = media_files.NAME.match(name)
    if match is None:
        return None
    path = media_files.path_of(root(rt), name)
    memo = _memo(rt)
    now = time.monotonic()
    touch = now - memo.touched.get(name, -TOUCH_SECONDS) >= TOUCH_SECONDS
    data = await asyncio.to_thread(media_files.read, path, touch)
    if data is not None:
        if touch:
            memo.touched[name] = now
            if len(memo.touched) > 100_000:
                memo.touched.clear()
        return data
    if not rt.settings.media.proxy:
        return None
    digest = match["digest"]
    if now - memo.refill_failed.get(digest, -REFILL_BACKOFF) < REFILL_BACKOFF:
        return None
    row = await media_store.by_digest(rt.db.read, digest)
    if row is None or int(match["box"]) not in decoder.BOXES[row.kind]:
        return None  # a name no image has: nothing to fetch, nothing to remember
    task = rt.media_jobs.start(("refill", digest), lambda: _refill(rt, row))
    made: bool = await asyncio.shield(task)
    data = await asyncio.to_thread(media_files.read, path, False) if made else None
    if data is None:
        memo.refill_failed[digest] = time.monotonic()
    return data


async def _refill(rt: Runtime, row: MediaRow) -> bool:
    digest = row.digest
    try:
        outcome = await _make(rt, row)
    except OSError as exc:  # this machine's fault: pages keep the name, asked again later
        _not_stored(row, exc)
        return False
    if outcome.status == "ready" and outcome.digest == digest:
        return True
    # The source changed or went away: pages stop showing the old name.
    async with rt.db.transaction() as tx:
        await media_store.record(tx, row.id, outcome, rt.now(), _owner_icon(rt))
    return False


# --- blocks -------------------------------------------------------------------------------


async def forget_domain(rt: Runtime, tx: Conn, domain: str) -> int:
    """A domain block: every image served from `domain` or a subdomain is refused, so
    pages stop showing it in this same transaction (its fragments are cleared); once
    committed, `drop_blocked_files` removes its files. How many were refused."""
    now = rt.now()
    found = [row for row in await _in_domain(tx, domain) if row.status != "refused"]
    for row in found:
        await media_store.record(tx, row.id, Outcome("refused", reason=BLOCKED), now,
                                 _owner_icon(rt))
    return len(found)


async def unforget_domain(rt: Runtime, tx: Conn, domain: str) -> int:
    """A domain unblocked: its images refused for the block are fetched again by the next
    housekeeping (one still under another block is refused again then)."""
    found = [row.id for row in await _in_domain(tx, domain) if row.status == "refused"]
    if found:
        await media_store.retry_refused(tx, found, BLOCKED, rt.now())
    return len(found)


async def _in_domain(conn: Conn, domain: str) -> list[MediaRow]:
    match = Blocklist([domain])
    return [row for row in await media_store.with_url_containing(conn, domain)
            if match.url_blocked(row.url)]


async def drop_blocked_files(rt: Runtime) -> int:
    """Remove this machine's files of images refused because their domain is blocked
    (other machines drop theirs at their next sweep)."""
    gone = await media_store.refused_files(rt.db.read, BLOCKED)
    names = [media_files.name_of(digest, box, ext) for digest, kind, ext in gone
             for box in decoder.BOXES.get(kind, ())]
    return await asyncio.to_thread(media_files.remove, root(rt), names)


# --- housekeeping ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Swept:
    """What one housekeeping pass removed."""

    rows: int
    files: int
    evicted: int
    kept_bytes: int
    #: Failed or interrupted fetches started again (in the background).
    retried: int = 0


async def sweep_files(rt: Runtime) -> media_files.Sweep:
    """Remove files no image has any more, then the least recently used beyond
    `[media] cache_max_mb`."""
    known = await media_store.ready_digests(rt.db.read)
    return await asyncio.to_thread(media_files.sweep, root(rt), known,
                                   rt.settings.media.cache_max_mb << 20)


async def _sweep_logged(rt: Runtime) -> None:
    try:
        await sweep_files(rt)
    except (OSError, FedcommentsError):
        log.exception("sweeping the image cache failed")


async def housekeeping(rt: Runtime) -> Swept:
    """Forget images nothing shows any more (their rows, then their files), keep the
    directory within its size, and start again the fetches that failed or were cut off
    (nothing else would: the pages showing their placeholders stay cached)."""
    cutoff = rt.now() - GRACE
    rows, removed = 0, SWEEP_BATCH
    while removed == SWEEP_BATCH:
        async with rt.db.transaction() as tx:
            ids = await media_store.unreferenced(tx, _owner_icon(rt), cutoff, SWEEP_BATCH)
            removed = await media_store.delete(tx, ids)
        rows += removed
    swept = await sweep_files(rt)
    due = await media_store.retries_due(rt.db.read, rt.now(), RETRY_BATCH)
    request(rt, due)
    return Swept(rows, swept.removed_unknown, swept.evicted, swept.kept_bytes,
                 retried=len(due) if rt.settings.media.proxy else 0)
