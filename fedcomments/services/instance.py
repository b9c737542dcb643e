"""The blog actor and instance-level documents: actor, WebFinger, NodeInfo, outbox, followers."""

from __future__ import annotations

import html
from typing import Any

from fedcomments import __version__
from fedcomments.ap import build
from fedcomments.errors import NotFound
from fedcomments.runtime import Runtime
from fedcomments.store import actors as actor_store
from fedcomments.store import instance as instance_store
from fedcomments.store import posts as post_store
from fedcomments.store import stats
from fedcomments.store.rows import dt

PAGE_SIZE = 20


def _summary_html(text: str) -> str:
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


async def actor_profile(rt: Runtime) -> build.ActorProfile:
    a = rt.settings.actor
    created = dt(await instance_store.created_at(rt.db.read)) or rt.now()
    return build.ActorProfile(
        type=a.type, username=a.username, name=a.name, summary_html=_summary_html(a.summary),
        blog_url=a.url, icon=a.icon or None, public_key_pem=rt.keys.public_pem,
        published=created, discoverable=a.discoverable, indexable=a.indexable,
    )


async def actor_document(rt: Runtime) -> dict[str, Any]:
    return build.actor(rt.urls, await actor_profile(rt))


def webfinger(rt: Runtime, resource: str) -> dict[str, Any]:
    """Answer for our acct: URI (case-insensitive; host with port when not default) or URL."""
    resource = resource.strip()
    ours = f"{rt.urls.username}@{rt.urls.host}".lower()
    if resource.lower().startswith("acct:"):
        if resource[5:].lstrip("@").lower() == ours:
            return build.webfinger(rt.urls, rt.urls.actor)
    elif resource.rstrip("/") == rt.urls.actor:
        return build.webfinger(rt.urls, rt.urls.actor)
    raise NotFound(f"unknown resource {resource!r}")


async def nodeinfo(rt: Runtime) -> dict[str, Any]:
    now = rt.now()
    posts = await post_store.count_published(rt.db.read, now)
    comments = await stats.count_public_comments(rt.db.read)
    return build.nodeinfo(__version__, users=1, posts=posts, comments=comments,
                          name=rt.settings.actor.name)


async def outbox(rt: Runtime, page: int | None) -> dict[str, Any]:
    now = rt.now()
    total = await post_store.count_published(rt.db.read, now)
    if page is None:
        return build.ordered_collection(rt.urls.outbox, total, first=f"{rt.urls.outbox}?page=1")
    posts = await post_store.list_published(
        rt.db.read, now, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    items = [
        build.create(rt.urls, f"{p.ap_id}#create", build.article(rt.urls, p)) for p in posts
    ]
    return _page(rt.urls.outbox, page, items, total)


async def followers(rt: Runtime, page: int | None) -> dict[str, Any]:
    total = await actor_store.count_followers(rt.db.read)
    if page is None:
        return build.ordered_collection(rt.urls.followers, total,
                                        first=f"{rt.urls.followers}?page=1")
    rows = await actor_store.list_followers(rt.db.read, limit=PAGE_SIZE,
                                            offset=(page - 1) * PAGE_SIZE)
    return _page(rt.urls.followers, page, [f.actor.ap_id for f in rows], total)


def following(rt: Runtime) -> dict[str, Any]:
    return build.ordered_collection(rt.urls.following, 0, items=[])


def _page(base: str, page: int, items: list[Any], total: int) -> dict[str, Any]:
    has_next = page * PAGE_SIZE < total
    return build.ordered_page(
        f"{base}?page={page}", base, items,
        next_page=f"{base}?page={page + 1}" if has_next else None,
        prev_page=f"{base}?page={page - 1}" if page > 1 else None,
    )

