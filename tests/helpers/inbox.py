"""Our side of an inbox test: a running blog with a post, its inbox, and what it stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from fedcomments.model import Post
from fedcomments.runtime import Runtime
from tests.conftest import Instance
from tests.helpers.fediverse import FakeActor, deliver
from tests.helpers.posts import add_post_via_service

#: Every table an inbox request may write to.
STATE_TABLES = ("comments", "tombstones", "reactions", "followers", "processed_activities",
                "deliveries", "reports", "actors", "actor_keys")


async def stored_state(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the inbox writes, for "nothing was stored" assertions."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    for table in STATE_TABLES:
        # The delivery worker runs beside the inbox and moves jobs along (pending → done):
        # what the inbox stored is the job itself.
        columns = "id, activity_id, inbox, body" if table == "deliveries" else "*"
        rows = await rt.db.read.fetchall(f"SELECT {columns} FROM {table} ORDER BY 1")
        state[table] = [tuple(row) for row in rows]
    return state


async def block_domain(rt: Runtime, domain: str) -> None:
    """Block a domain the way the admin commands will: a domain_blocks row, then reload."""
    async with rt.db.transaction() as tx:
        await tx.execute("INSERT INTO domain_blocks (domain, created_at) VALUES (?, ?)",
                         (domain, rt.now().isoformat()))
    await rt.refresh_shared(force=True)


async def outcome(response: aiohttp.ClientResponse) -> str:
    """What the inbox did with an activity it accepted (202): its `outcome` field."""
    assert response.status == 202, await response.text()
    return str((await response.json())["outcome"])


@dataclass
class Blog:
    """Our instance under test with one post, and shortcuts to talk to its inbox."""

    instance: Instance
    post: Post

    @property
    def rt(self) -> Runtime:
        return self.instance.rt

    @property
    def shared_inbox(self) -> str:
        return f"{self.instance.url}/inbox"

    @property
    def actor_inbox(self) -> str:
        return f"{self.instance.url}/users/{self.rt.urls.username}/inbox"

    async def send(self, actor: FakeActor, doc: dict[str, Any], **kwargs: Any
                   ) -> aiohttp.ClientResponse:
        """Sign `doc` as `actor` and POST it to the shared inbox (see deliver())."""
        inbox = kwargs.pop("inbox", self.shared_inbox)
        return await deliver(self.instance.session, actor, inbox, doc, **kwargs)

    async def comments(self) -> list[dict[str, Any]]:
        """Every stored comment with its parent's ap_id, oldest first."""
        rows = await self.rt.db.read.fetchall(
            "SELECT c.*, p.ap_id AS parent_ap_id, a.ap_id AS author FROM comments c "
            "LEFT JOIN comments p ON p.id = c.parent_id LEFT JOIN actors a ON a.id = c.actor_id "
            "ORDER BY c.id")
        return [dict(row) for row in rows]

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self.rt.db.read.fetchall(sql, params)]


async def start_blog_with_post(make_instance: Callable[..., Any],
                               **sections: dict[str, Any]) -> Blog:
    """A fedcomments instance (moderation off unless given) with one registered post."""
    sections.setdefault("moderation", {"policy": "none"})
    inst = await make_instance(**sections)
    return Blog(inst, await add_post_via_service(inst.rt))
