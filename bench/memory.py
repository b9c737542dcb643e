"""Memory: resident set size of `fedcomments serve` idle, with 100,000 stored comments, while
serving a 10,000-comment thread, and during the inbox benchmark.

    python bench/memory.py [--quick]

RSS is read from /proc/PID/status of the server process. How much a 10,000-comment
thread costs to build is measured in-process with tracemalloc (peak Python allocations
while the thread view is built), beside the size of the JSON it produces.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import tracemalloc
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import common
import inbox
import seed
from common import HOST, Report, Server
from fakes import FakeInstance
from loadgen import LoadGenerator, Request

IDLE_TARGET_MB = 80


@dataclass(frozen=True)
class Sizes:
    comments: int
    big: int
    spellings: int
    actors: int
    replies: int


QUICK = Sizes(comments=20_000, big=2_000, spellings=5, actors=100, replies=1_000)
FULL = Sizes(comments=100_000, big=10_000, spellings=20, actors=1_000, replies=4_000)


async def settle(server: Server) -> float:
    """RSS once the server has answered a few ordinary requests and sat idle a moment."""
    for path, accept in (("/.well-known/nodeinfo", "application/json"),
                         ("/users/blog", "application/activity+json"),
                         ("/users/blog", "text/html")):
        await server.get(path, accept)
    await asyncio.sleep(1.0)
    return server.rss_mb()


async def idle(tmp: Any, workers: int = 1) -> float:
    server = Server.prepare(tmp / f"idle{workers}", server={"workers": workers})
    async with common.running(server):
        await server.wait_for_workers()
        return await settle(server)


async def big_database(tmp: Any, sizes: Sizes, report: Report) -> None:
    server = Server.prepare(tmp / "big")
    common.progress(f"seeding {sizes.comments:,} comments ({sizes.big:,} in one thread)")
    posts = [(f"https://blog.example/p{i}/", f"Post {i}", seed.thread_spec(20, seed=i))
             for i in range(50)]
    posts.append(("https://blog.example/huge/", "Huge", seed.thread_spec(min(200, sizes.big),
                                                                          seed=3)))
    made = await seed.seed_fedcomments(common.settings_object(server.config), posts)
    huge = made[-1]
    seeded = sum(p["comments"] for p in made)
    seed.bulk_comments(server.database, huge["id"], sizes.big - huge["comments"])
    rest = sizes.comments - seeded - (sizes.big - huge["comments"])
    per_post = rest // 50
    for i, p in enumerate(made[:-1]):
        seed.bulk_comments(server.database, p["id"], per_post, first=i * per_post)
    async with common.running(server):
        rss = await settle(server)
        report.add(f"RSS idle, {sizes.comments:,} comments stored", f"{rss:.0f} MB")
        api = f"/api/v1/thread?url={quote(huge['permalink'], safe='')}"
        status, body = await server.get(api)
        size = len(body)
        after_json = server.rss_mb()
        report.add(f"RSS after serving the {sizes.big:,}-comment thread "
                   f"(JSON, {size / 1e6:.1f} MB)",
                   f"{after_json:.0f} MB" if status == 200 else f"HTTP {status}")
        status, page = await server.get(f"/posts/{huge['slug']}", "text/html")
        report.add(f"RSS after its HTML page ({len(page) / 1e6:.1f} MB)",
                   f"{server.rss_mb():.0f} MB" if status == 200 else f"HTTP {status}")
        # The thread cache is keyed by how the request names the post: n spellings of the
        # same permalink (#fragments) may be n cached copies of the same thread.
        for n in range(sizes.spellings):
            await server.get(f"/api/v1/thread?url={quote(huge['permalink'] + f'#m{n}', safe='')}")
        report.add(f"RSS after {sizes.spellings} differently-spelled requests for that thread",
                   f"{server.rss_mb():.0f} MB", "", f"+{server.rss_mb() - after_json:.0f} MB")
    await build_cost(server, huge["id"], report)


async def build_cost(server: Server, post_id: int, report: Report) -> None:
    """Peak Python allocations while the thread view is built, in this process."""
    from fedcomments.runtime import open_runtime
    from fedcomments.services import thread as thread_service

    async with open_runtime(common.settings_object(server.config)) as rt:
        # The service's entry point without a cache: look the post up, read, render.
        await thread_service.get_thread(rt, str(post_id))  # warm imports and caches
        tracemalloc.start()
        start = time.perf_counter()
        view = await thread_service.get_thread(rt, str(post_id))
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        count = json.loads(view.body).get("count", 0)
    report.add(f"peak Python allocations building that thread ({count:,} shown)",
               f"{peak / 1e6:.0f} MB", f"its JSON {len(view.body) / 1e6:.1f} MB",
               f"{peak / max(1, len(view.body)):.1f}× the JSON")
    report.add("… per comment", f"{peak / max(1, count) / 1024:.1f} KiB",
               f"JSON {len(view.body) / max(1, count) / 1024:.1f} KiB", "")
    report.note(f"building the {count:,}-comment view took {elapsed * 1000:.0f} ms under "
                "tracemalloc")


async def during_inbox(tmp: Any, sizes: Sizes, report: Report) -> None:
    keys = common.rsa_keys(sizes.actors)
    gen = LoadGenerator()
    pool = inbox.signing_pool()
    remote = await FakeInstance(keys).start()
    server = Server.prepare(tmp / "inbox")
    try:
        await asyncio.gather(gen.warm(), server.start())
        before = await settle(server)
        post = await server.admin("POST", "/api/v1/admin/posts", {
            "url": "https://blog.example/viral/", "title": "Viral"})
        blog = f"{server.url}/users/blog"
        first = inbox.make_phase(remote, range(sizes.actors), post["ap_id"], blog, [])
        more = inbox.make_phase(remote, [i % sizes.actors for i in range(sizes.replies)],
                                post["ap_id"], blog, first.note_ids())
        authority = f"{HOST}:{server.port}"
        requests: list[Request] = inbox.sign_all(
            pool, len(keys), first.items(remote, authority, "/inbox")
            + more.items(remote, authority, "/inbox"))
        samples: list[float] = []
        task = asyncio.ensure_future(gen.run(HOST, server.port, requests, concurrency=64,
                                             time_limit=300))
        while not task.done():
            samples.append(server.rss_mb())
            await asyncio.sleep(0.1)
        result = task.result()
        after = server.rss_mb()
    finally:
        await server.stop()
        await remote.close()
        gen.close()
        pool.shutdown()
    report.add(f"RSS during the inbox benchmark ({result.ok(202):,} replies, c=64)",
               f"peak {max(samples, default=float('nan')):.0f} MB", f"before {before:.0f} MB",
               f"after {after:.0f} MB")


async def run(args: Any) -> Report:
    sizes = QUICK if args.quick else FULL
    report = Report(f"Memory: resident set size of fedcomments serve ({sizes.comments:,} "
                    f"comments, a {sizes.big:,}-comment thread)")
    with common.workdir(args.keep) as tmp:
        common.progress("idle")
        rss = await idle(tmp)
        report.add("RSS idle (fresh database)", f"{rss:.0f} MB", f"target ≤ {IDLE_TARGET_MB} MB",
                   f"{rss / IDLE_TARGET_MB * 100:.0f} %")
        rss2 = await idle(tmp, workers=2)
        report.add("RSS idle, [server] workers = 2 (both processes)", f"{rss2:.0f} MB", "",
                   f"+{rss2 - rss:.0f} MB for the second")
        await big_database(tmp, sizes, report)
        common.progress("inbox load")
        await during_inbox(tmp, sizes, report)
    report.note("idle = after start-up and a few requests (discovery, actor as JSON and HTML)")
    return report


def main() -> int:
    args = common.parser(__doc__.splitlines()[0]).parse_args()
    asyncio.run(run(args)).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
