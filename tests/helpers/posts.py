"""Registering blog posts in tests: through the admin API as a site build does, or straight
through the posts service when a test needs the domain Post and no HTTP round trip."""

from __future__ import annotations

from typing import Any

from fedcomments.model import Post, PostInput
from fedcomments.runtime import Runtime
from fedcomments.services import posts as posts_service
from tests.conftest import Instance


async def add_post_via_api(fc: Instance, slug: str = "a", *, expect: int = 201,
                           **fields: Any) -> dict[str, Any]:
    """POST https://blog.example/{slug}/ titled `slug.title()` to the admin posts API
    (`fields` add to or override the body); asserts the status (201 created, 200 for a
    post registered again) and returns the post summary."""
    body = {"url": f"https://blog.example/{slug}/", "title": slug.title(), **fields}
    resp = await fc.admin("POST", "/api/v1/admin/posts", json=body)
    assert resp.status == expect, await resp.text()
    return dict(await resp.json())


async def add_post_via_service(rt: Runtime, permalink: str = "https://blog.example/a/",
                               title: str = "A post") -> Post:
    """Register a blog post through the posts service; returns the stored Post."""
    change = await posts_service.add_post(rt, PostInput(permalink=permalink, title=title))
    return change.post
