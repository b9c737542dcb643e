"""Register, update, delete and look up blog posts (keyed by permalink)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fedcomments.ap.sanitize import sanitize_html
from fedcomments.errors import Gone, InvalidInput, NotFound
from fedcomments.model import Post, PostInput
from fedcomments.paging import Page, decode_cursor, encode_cursor, parse_limit
from fedcomments.runtime import Runtime
from fedcomments.services import publish
from fedcomments.store import posts as post_store
from fedcomments.store import stats
from fedcomments.store.conn import Conn
from fedcomments.urls import canonical_permalink, permalink_spellings

MAX_TITLE = 500
MAX_SUMMARY = 5_000
MAX_TAGS = 30


@dataclass(frozen=True)
class PostChange:
    post: Post
    created: bool


#: Work a caller adds to the transaction that saves a post (the feed records its entry).
AfterSave = Callable[[Conn, Post], Awaitable[None]]


def validate_url(value: str, field: str) -> str:
    value = value.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        raise InvalidInput(f"{field}: not a valid URL", field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"{field}: must be an absolute http(s) URL, got {value!r}", field=field)
    return value


def _clean_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for raw in tags:
        tag = raw.strip().lstrip("#").strip()
        if not tag:
            continue
        if not re.fullmatch(r"[\w-]{1,100}", tag):
            raise InvalidInput(f"tag: {raw!r} is not a valid hashtag", field="tag")
        seen.setdefault(tag.casefold(), tag)
    if len(seen) > MAX_TAGS:
        raise InvalidInput(f"tag: at most {MAX_TAGS} tags", field="tag")
    return tuple(seen.values())


def _validated(data: PostInput) -> PostInput:
    permalink = canonical_permalink(validate_url(data.permalink, "url"))
    title = data.title.strip()
    if not title:
        raise InvalidInput("title: must not be empty", field="title")
    if len(title) > MAX_TITLE:
        raise InvalidInput(f"title: at most {MAX_TITLE} characters", field="title")
    if len(data.summary) > MAX_SUMMARY:
        raise InvalidInput(f"summary: at most {MAX_SUMMARY} characters", field="summary")
    image = validate_url(data.image, "image") if data.image else None
    if data.published_at is not None and data.published_at.tzinfo is None:
        raise InvalidInput("published: needs a timezone (e.g. 2024-05-01T10:00:00Z)",
                           field="published")
    return PostInput(
        permalink=permalink,
        title=title,
        summary=data.summary.strip(),
        content=sanitize_html(data.content) if data.content.strip() else "",
        tags=_clean_tags(data.tags),
        image=image,
        published_at=data.published_at,
    )


def slug_base(permalink: str) -> str:
    """A readable slug from the permalink's last meaningful path segment."""
    segments = [s for s in urlsplit(permalink).path.split("/") if s]
    while segments and re.fullmatch(r"index\.\w+", segments[-1]):
        segments.pop()
    last = re.sub(r"\.html?$", "", segments[-1]) if segments else "post"
    ascii_text = unicodedata.normalize("NFKD", last).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:80].strip("-")
    return slug or "post"


async def _free_slug(conn: Conn, base: str) -> str:
    slug, n = base, 1
    while await post_store.slug_taken(conn, slug):
        n += 1
        slug = f"{base}-{n}"
    return slug


def check_post(data: PostInput) -> PostInput:
    """`data` as it would be stored; InvalidInput naming the field when it is refused."""
    return _validated(data)


async def add_post(rt: Runtime, data: PostInput, *, announce: bool = True,
                   after: AfterSave | None = None) -> PostChange:
    """Register a post; the same permalink again updates the existing post.

    `announce=False` stores a new post as already published without telling followers
    (an old entry of a newly added feed); `after` runs in the same transaction."""
    data = _validated(data)
    now = rt.now()
    async with rt.db.transaction() as tx:
        existing = await post_store.by_permalinks(tx, permalink_spellings(data.permalink))
        if existing is not None:
            post = await _update(tx, existing, data, now)
            await publish.post_changed(rt, tx, existing, post)
            if after is not None:
                await after(tx, post)
            return PostChange(post=post, created=False)
        slug = await _free_slug(tx, slug_base(data.permalink))
        post_id = await post_store.insert(
            tx, slug=slug, permalink=data.permalink, ap_id=rt.urls.post(slug), title=data.title,
            summary=data.summary, content=data.content, tags=data.tags, image=data.image,
            published_at=data.published_at or now, now=now,
        )
        inserted = await post_store.by_id(tx, post_id)
        assert inserted is not None
        post = inserted
        # Deliveries commit with the post; a scheduled post goes out when it is due.
        if announce:
            await publish.post_published(rt, tx, post)
        else:
            await post_store.mark_federated(tx, post.id, now)
        if after is not None:
            await after(tx, post)
    return PostChange(post=post, created=True)


def _unchanged(existing: Post, data: PostInput) -> bool:
    """A site build re-registers every post: only a real change moves `updated`."""
    return not existing.is_deleted and (
        existing.title, existing.summary, existing.content, existing.tags, existing.image,
    ) == (data.title, data.summary, data.content, data.tags, data.image) and (
        data.published_at is None or data.published_at == existing.published_at
    )


async def _update(tx: Conn, existing: Post, data: PostInput, now: datetime) -> Post:
    if _unchanged(existing, data):
        return existing
    await post_store.update(
        tx, existing.id, title=data.title, summary=data.summary, content=data.content,
        tags=data.tags, image=data.image,
        published_at=data.published_at or existing.published_at, now=now,
    )
    post = await post_store.by_id(tx, existing.id)
    assert post is not None
    return post


async def add_imported_post(rt: Runtime, tx: Conn, permalink: str, title: str,
                            published_at: datetime, *, deleted_at: datetime | None = None
                            ) -> Post:
    """Register a post an import names (from the export's own title and date), quietly:
    it counts as announced already, so nothing is ever sent to the fediverse for it. A
    post deleted where it comes from (`deleted_at`) is stored deleted (its thread 410)."""
    data = _validated(PostInput(permalink=permalink, title=title.strip()[:MAX_TITLE] or
                                permalink, published_at=published_at))
    now = rt.now()
    slug = await _free_slug(tx, slug_base(data.permalink))
    post_id = await post_store.insert(
        tx, slug=slug, permalink=data.permalink, ap_id=rt.urls.post(slug), title=data.title,
        summary="", content="", tags=(), image=None, published_at=published_at, now=now)
    await post_store.mark_federated(tx, post_id, now)
    if deleted_at is not None:
        await post_store.mark_deleted(tx, post_id, deleted_at)
    post = await post_store.by_id(tx, post_id)
    assert post is not None
    return post


async def update_post(rt: Runtime, ref: str, data: PostInput, *,
                      after: AfterSave | None = None) -> Post:
    """Change a post found by id, slug or permalink (the permalink itself may change);
    `after` runs in the same transaction."""
    data = _validated(data)
    async with rt.db.transaction() as tx:
        existing = await _find(tx, ref)
        if existing is None:
            raise NotFound(f"no post {ref!r}")
        if data.permalink != existing.permalink:
            clash = await post_store.by_permalinks(tx, permalink_spellings(data.permalink))
            if clash is not None and clash.id != existing.id:
                raise InvalidInput(f"url: another post already has {data.permalink}", field="url")
            await post_store.set_permalink(tx, existing.id, data.permalink)
        post = await _update(tx, existing, data, rt.now())
        await publish.post_changed(rt, tx, existing, post)
        if after is not None:
            await after(tx, post)
        return post


async def delete_post(rt: Runtime, ref: str) -> Post:
    async with rt.db.transaction() as tx:
        post = await _find(tx, ref)
        if post is None:
            raise NotFound(f"no post {ref!r}")
        if post.is_deleted:
            return post
        await post_store.mark_deleted(tx, post.id, rt.now())
        deleted = await post_store.by_id(tx, post.id)
        await publish.post_deleted(rt, tx, post)
    assert deleted is not None
    return deleted


async def _find(conn: Conn, ref: str) -> Post | None:
    ref = ref.strip()
    if ref.isdigit():
        return await post_store.by_id(conn, int(ref))
    if ref.startswith(("http://", "https://")):
        return (await post_store.by_permalinks(conn, permalink_spellings(ref))
                or await post_store.by_ap_id(conn, ref))
    return await post_store.by_slug(conn, ref)


async def get_post(rt: Runtime, ref: str) -> Post:
    post = await _find(rt.db.read, ref)
    if post is None:
        raise NotFound(f"no post {ref!r}")
    return post


async def public_post(rt: Runtime, slug: str) -> Post:
    """A post as the public sees it: 404 unknown or scheduled, 410 deleted."""
    post = await post_store.by_slug(rt.db.read, slug)
    if post is None or post.published_at > rt.now():
        raise NotFound("no such post")
    if post.is_deleted:
        raise Gone("post deleted")
    return post


async def list_posts(rt: Runtime, *, include_deleted: bool = False) -> list[Post]:
    return await post_store.list_posts(rt.db.read, include_deleted=include_deleted, limit=10_000)


EMPTY_COUNTS = {"comments": 0, "pending": 0, "private": 0, "likes": 0, "boosts": 0}


async def list_posts_with_counts(
    rt: Runtime, *, include_deleted: bool = False
) -> list[tuple[Post, dict[str, int]]]:
    """Posts with their comment and reaction counts (for admins: private counts included)."""
    found = await list_posts(rt, include_deleted=include_deleted)
    counts = await stats.post_counts(rt.db.read)
    return [(p, counts.get(p.id, EMPTY_COUNTS)) for p in found]


async def posts_page_with_counts(
    rt: Runtime, *, include_deleted: bool = False, limit: int | str | None = 100,
    cursor: str | None = None,
) -> Page[tuple[Post, dict[str, int]]]:
    """One page of posts, newest first, after `cursor`, with their counts."""
    size = parse_limit(limit)
    key = decode_cursor("posts", cursor, (str, int))
    found, last = await post_store.posts_page(rt.db.read, include_deleted=include_deleted,
                                              limit=size, key=key)
    counts = await stats.post_counts(rt.db.read, [p.id for p in found])
    return Page([(p, counts.get(p.id, EMPTY_COUNTS)) for p in found],
                encode_cursor("posts", last) if last else None)


async def post_with_counts(rt: Runtime, ref: str) -> tuple[Post, dict[str, int]]:
    post = await get_post(rt, ref)
    counts = await stats.post_counts(rt.db.read)
    return post, counts.get(post.id, EMPTY_COUNTS)


async def latest_public(rt: Runtime, limit: int) -> list[tuple[Post, int]]:
    """The newest published posts with their public comment counts (the front page)."""
    found = await post_store.list_published(rt.db.read, rt.now(), limit=limit, offset=0)
    counts = await stats.public_comment_counts(rt.db.read, [p.id for p in found])
    return [(p, counts.get(p.id, 0)) for p in found]


def parse_published(value: str | None) -> datetime | None:
    """ISO-8601 date or datetime; a bare date means midnight UTC."""
    if value is None or not str(value).strip():
        return None
    text = str(value).strip().replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"published: not an ISO-8601 date/time: {value!r}",
                           field="published") from None
    if parsed.tzinfo is None:
        if "T" in text or " " in text:
            raise InvalidInput("published: needs a timezone (e.g. 2024-05-01T10:00:00Z)",
                               field="published")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def post_input(fields: dict[str, Any]) -> PostInput:
    """Build a PostInput from loosely typed fields (CLI arguments, admin API JSON)."""
    allowed = {"url", "permalink", "title", "summary", "content", "tags", "image", "published"}
    unknown = set(fields) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(f"{name}: unknown field", field=name)
    permalink = fields.get("url") or fields.get("permalink")
    title = fields.get("title")
    for name, value in (("url", permalink), ("title", title)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInput(f"{name}: required", field=name)
    tags = fields.get("tags") or []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidInput("tags: must be a list of strings", field="tags")
    for name in ("summary", "content", "image", "published"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidInput(f"{name}: must be a string", field=name)
    assert isinstance(permalink, str) and isinstance(title, str)
    return PostInput(
        permalink=permalink, title=title, summary=fields.get("summary") or "",
        content=fields.get("content") or "", tags=tuple(tags), image=fields.get("image") or None,
        published_at=parse_published(fields.get("published")),
    )


def post_summary(post: Post, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """Stable JSON shape of a post for listings (CLI --json and admin API)."""
    data = {
        "id": post.id,
        "slug": post.slug,
        "url": post.permalink,
        "ap_id": post.ap_id,
        "title": post.title,
        "summary": post.summary,
        "tags": list(post.tags),
        "image": post.image,
        "published": post.published_at.isoformat(),
        "updated": post.updated_at.isoformat() if post.updated_at else None,
        "deleted": post.deleted_at.isoformat() if post.deleted_at else None,
    }
    if counts is not None:
        data["counts"] = dict(counts)
    return data
