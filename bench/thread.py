"""Thread reads: the JSON thread API and the HTML page of a post with 200 and 10,000 comments.

    python bench/thread.py [--quick]

Requests per second and p50/p99, without and with a matching If-None-Match, against
`fedcomments serve`; in the same run the floors (a static JSON response from aiohttp, and
a minimal aiohttp handler that reads the thread from SQLite, builds the tree and
serialises it) and Isso serving the same 200-comment thread through its own API.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosqlite
import common
import orjson
import seed
from aiohttp import web
from common import HOST, Report, Server, ms, per_s, ratio
from loadgen import LoadGenerator, LoadResult, Request

sys.path.insert(0, str(common.BENCH_DIR / "isso"))
import isso_peer

CONCURRENCY = 16
#: Copies of the 200-comment thread (more than the server's 512-thread cache holds) and
#: of the big one (more than its 64 MB budget holds), cycled by the uncached reads.
SMALL_COPIES = 640
BIG_COPIES = 8
#: Every measurement is split in rounds; each round runs all of them in turn, so that
#: background noise on the machine falls on every figure alike.
ROUNDS = 2


@dataclass(frozen=True)
class Sizes:
    seconds: float  # per measured load
    isso_seconds: float
    big: int


QUICK = Sizes(seconds=1.2, isso_seconds=3.0, big=2_000)
FULL = Sizes(seconds=8.0, isso_seconds=20.0, big=10_000)


# --- the floors ------------------------------------------------------------------------------

TREE_SQL = (
    "SELECT c.id, c.parent_id, c.origin, c.content, c.published_at, c.url, c.author_name, "
    "c.author_website, a.name, a.username, a.domain, a.url, a.icon FROM comments c "
    "LEFT JOIN actors a ON a.id = c.actor_id WHERE c.post_id = ? AND c.status = 'approved' "
    "AND c.visibility IN ('public', 'unlisted') ORDER BY c.published_at, c.id"
)


def build_tree(rows: list[Any]) -> list[dict[str, Any]]:
    """Nest rows (ordered by time) under their parents; orphans become roots. One dict per
    comment and one for its author: the least a tree that orjson serialises needs."""
    nodes: dict[int, dict[str, Any]] = {}
    roots: list[dict[str, Any]] = []
    for (cid, parent, origin, content, published, url, author_name, website, name, username,
         domain, profile, icon) in rows:
        remote = origin == "remote"
        node = {
            "id": cid, "content": content, "published": published, "url": url,
            "author": {
                "name": (name or username) if remote else author_name,
                "handle": f"@{username}@{domain}" if remote else None,
                "url": profile if remote else website, "avatar": icon if remote else None,
            },
            "replies": [],
        }
        nodes[cid] = node
        parent_node = nodes.get(parent) if parent is not None else None
        (parent_node["replies"] if parent_node else roots).append(node)
    return roots


async def read_thread(db: aiosqlite.Connection, post_id: int) -> bytes:
    """One query (one trip to SQLite's thread, rows as plain tuples), the tree, orjson."""
    rows = list(await db.execute_fetchall(TREE_SQL, (post_id,)))
    return orjson.dumps({"post": post_id, "count": len(rows), "comments": build_tree(rows)})


def floor_app(db_path: str, static_path: str) -> web.Application:
    static = Path(static_path).read_bytes()
    app = web.Application()
    db_key = web.AppKey("db", aiosqlite.Connection)

    async def static_json(request: web.Request) -> web.Response:
        return web.Response(body=static, content_type="application/json")

    async def sqlite_tree(request: web.Request) -> web.Response:
        body = await read_thread(request.app[db_key], int(request.match_info["post"]))
        return web.Response(body=body, content_type="application/json")

    async def database(app: web.Application) -> Any:
        app[db_key] = await aiosqlite.connect(f"file:{db_path}?mode=ro", uri=True)
        yield
        await app[db_key].close()

    app.cleanup_ctx.append(database)
    app.router.add_get("/static", static_json)
    app.router.add_get("/sqlite/{post}", sqlite_tree)
    return app


# --- finding the thread API ------------------------------------------------------------------


async def thread_api_path(server: Server, post: dict[str, Any]) -> str | None:
    """The JSON thread route, read from the app's OpenAPI document (None until it exists)."""
    candidates = []
    for path, ops in (await server.openapi_paths()).items():
        get = ops.get("get") if isinstance(ops, dict) else None
        if get is None or "admin" in path or "thread" not in path.lower() + str(
                get.get("summary", "")).lower():
            continue
        url = path
        for name in re.findall(r"{([^}]+)}", path):
            value = post["slug"] if "slug" in name else post["id"]
            url = url.replace(f"{{{name}}}", str(value))
        query = [p["name"] for p in get.get("parameters", [])
                 if p.get("in") == "query" and p.get("required")]
        if query:
            url += "?" + "&".join(f"{q}={quote(post['permalink'], safe='')}" for q in query)
        candidates.append(url)
    candidates += [f"/api/v1/posts/{post['id']}/thread", f"/api/v1/threads/{post['id']}",
                   f"/api/v1/thread?url={quote(post['permalink'], safe='')}"]
    for url in candidates:
        status, body = await server.get(url)
        if status == 200 and body.lstrip().startswith(b"{"):
            return url
    return None


# --- measuring -------------------------------------------------------------------------------


async def etag_of(server_url: str, path: str, accept: str) -> str | None:
    import aiohttp

    async with aiohttp.ClientSession() as s, s.get(server_url + path,
                                                   headers={"Accept": accept}) as resp:
        await resp.read()
        return resp.headers.get("ETag")


async def load(gen: LoadGenerator, port: int, paths: list[str], seconds: float, *,
               accept: str = "application/json", etag: str | None = None,
               concurrency: int = CONCURRENCY, total: int = 10**7) -> LoadResult:
    headers = [("Accept", accept)]
    if etag:
        headers.append(("If-None-Match", etag))
    requests = [Request("GET", p, tuple(headers)) for p in paths]
    return await gen.run(HOST, port, requests, total=total, concurrency=concurrency,
                         time_limit=seconds, grace=30)


def variant_paths(path: str, permalink: str, others: list[str]) -> list[str] | None:
    """`path` (which names the post by `permalink`) for each of the other posts."""
    quoted = quote(permalink, safe="")
    if quoted not in path:
        return None
    return [path.replace(quoted, quote(other, safe="")) for other in others]


def cell(result: LoadResult | None, code: int) -> tuple[str, float]:
    """'rate · p50 · p99' when every response had `code`, else what went wrong."""
    if result is None:
        return "n/a", float("nan")
    if not result.count or result.ok(code) != result.count:
        statuses: dict[int, int] = {}
        for s in result.statuses:
            statuses[s] = statuses.get(s, 0) + 1
        return f"expected {code}: {statuses} {dict(result.errors)}", float("nan")
    rate = result.rate(code)
    return (f"{per_s(rate)} · p50 {ms(result.percentile(50))} · "
            f"p99 {ms(result.percentile(99))}"), rate


def add(report: Report, label: str, ours: LoadResult | None, code: int,
        ref: LoadResult | None = None, ref_name: str = "", *, times: bool = False,
        missing: str = "n/a") -> None:
    if ours is None:
        report.add(label, missing)
        return
    text, rate = cell(ours, code)
    if ref is None:
        report.add(label, text)
        return
    ref_text, ref_rate = cell(ref, 200)
    report.add(label, text, f"{ref_name}: {ref_text}", ratio(rate, ref_rate, percent=not times))


def add_cpu(report: Report, label: str, cpu: dict[str, float],
            results: dict[str, LoadResult | None], key: str,
            references: list[tuple[str, str]]) -> None:
    """CPU time per request of ours and of each reference (steadier than rates on a busy
    machine); the ratio is theirs ÷ ours (× cheaper)."""
    def per_request(k: str) -> float:
        result = results.get(k)
        return cpu.get(k, float("nan")) / result.count if result and result.count else float("nan")

    ours = per_request(key)
    for ref_key, name in references:
        theirs = per_request(ref_key)
        report.add(label, micro(ours), f"{name}: {micro(theirs)}",
                   ratio(theirs, ours, percent=False))


def micro(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1e6:,.0f} µs"


@dataclass
class Job:
    port: int
    paths: list[str]
    accept: str = "application/json"
    etag: str | None = None
    concurrency: int = CONCURRENCY
    isso: bool = False


@dataclass
class Target:
    key: str
    paths: list[str] | None
    accept: str
    concurrency: int
    inm: bool = True


async def run(args: Any) -> Report:
    sizes = QUICK if args.quick else FULL
    big_label = f"{sizes.big:,}"
    report = Report(f"Thread reads: JSON API and HTML page, 200 and {big_label} comments")
    gen = LoadGenerator()
    results: dict[str, LoadResult | None] = {}
    #: CPU seconds each server process used during each measurement (all its threads).
    cpu: dict[str, float] = {}
    with common.workdir(args.keep) as tmp:
        ours = Server.prepare(tmp / "ours")
        # The same file served by `[server] workers = 2`, for the uncached reads. It is the
        # same server (base URL and all) on another port: the stored fragments name the
        # settings that rendered them, and a second identity would render its own.
        ours2 = Server.prepare(tmp / "ours2", server={"workers": 2, "base_url": ours.url},
                               storage={"database": str(ours.database)})
        common.progress(f"seeding a 200- and a {big_label}-comment thread (store layer)")
        small, big = await seed.seed_fedcomments(common.settings_object(ours.config), [
            ("https://blog.example/viral/", isso_peer.TITLE, seed.thread_spec(200)),
            ("https://blog.example/huge/", "A post with a huge thread",
             seed.thread_spec(sizes.big, seed=11)),
        ])
        # Uncached reads cycle through more posts carrying the same thread than the
        # server's thread cache holds, so every request renders the thread afresh.
        small_copies = seed.clone_thread(ours.database, small["id"], SMALL_COPIES)
        big_copies = seed.clone_thread(ours.database, big["id"], BIG_COPIES)
        # The floor reads a copy, taken while no server has the file open.
        floor_db = tmp / "floor.sqlite3"
        shutil.copyfile(ours.database, floor_db)
        venv = await asyncio.to_thread(isso_peer.ensure_venv)
        isso_dir = tmp / "isso"
        isso_dir.mkdir()
        isso_port = common.free_port()
        isso_cfg = isso_peer.write_config(isso_dir, isso_port)
        await asyncio.to_thread(isso_peer.seed_thread, venv, isso_cfg, seed.thread_spec(200))
        isso = common.FloorProcess(isso_peer.command(venv, isso_cfg), isso_port,
                                   isso_dir / "isso.log")
        try:
            await asyncio.gather(gen.warm(), ours.start(), isso.start())
            # After ours: the database is migrated before the second server opens it.
            await ours2.start()
            await ours2.wait_for_workers()
            api = await thread_api_path(ours, small)
            api_big = await thread_api_path(ours, big)
            static = tmp / "static.json"
            if api is not None:
                static.write_bytes((await ours.get(api))[1])
            else:
                async with aiosqlite.connect(floor_db) as db:
                    static.write_bytes(await read_thread(db, small["id"]))
            static_size = static.stat().st_size
            floor_port = common.free_port()
            floor = common.FloorProcess(
                common.floor_command("thread.py", "--port", str(floor_port), "--db",
                                     str(floor_db), "--static", str(static)),
                floor_port, tmp / "floor.log")
            await floor.start()
            try:
                json_type, html_type = "application/json", "text/html"
                jobs: dict[str, Job] = {
                    "static": Job(floor_port, ["/static"]),
                    "tree": Job(floor_port, [f"/sqlite/{n}" for n, _ in small_copies]),
                    "tree_big": Job(floor_port, [f"/sqlite/{n}" for n, _ in big_copies],
                                    concurrency=4),
                    "isso": Job(isso_port, [f"/?uri={quote(isso_peer.URI)}"], isso=True),
                }
                targets = [
                    Target("api_uncached",
                           api and variant_paths(api, small["permalink"],
                                                 [link for _, link in small_copies]),
                           json_type, CONCURRENCY, inm=False),
                    Target("api", api and [api], json_type, CONCURRENCY),
                    Target("api_big_uncached",
                           api_big and variant_paths(api_big, big["permalink"],
                                                         [link for _, link in big_copies]),
                           json_type, 4, inm=False),
                    Target("api_big", api_big and [api_big], json_type, 4),
                    Target("html_uncached", [f"/posts/{small['slug']}-copy{n + 1}"
                                             for n in range(SMALL_COPIES)], html_type,
                           CONCURRENCY, inm=False),
                    Target("html", [f"/posts/{small['slug']}"], html_type, CONCURRENCY),
                    Target("html_big", [f"/posts/{big['slug']}"], html_type, 4),
                ]
                sizes_seen = {}
                for target in targets:
                    results[target.key] = results[target.key + "_inm"] = None
                    if not target.paths:
                        continue
                    jobs[target.key] = Job(ours.port, target.paths, target.accept,
                                           concurrency=target.concurrency)
                    if not target.inm:
                        continue
                    path = target.paths[0]
                    sizes_seen[target.key] = len((await ours.get(path, target.accept))[1])
                    etag = await etag_of(ours.url, path, target.accept)
                    if etag:
                        # A 304 has no body, whatever the thread's size: measured at the
                        # static floor's concurrency.
                        jobs[target.key + "_inm"] = Job(ours.port, [path], target.accept, etag)
                uncached = jobs.get("api_uncached")
                if uncached is not None:
                    jobs["api_uncached_w2"] = Job(ours2.port, uncached.paths, uncached.accept,
                                                  concurrency=uncached.concurrency)
                pids = {ours.port: ours.pid, floor_port: floor.pid, isso_port: isso.pid,
                        ours2.port: ours2.pid}
                results["api_first"] = await first_reads(gen, ours, targets)
                for round_ in range(ROUNDS):
                    common.progress(f"round {round_ + 1} of {ROUNDS}: floors, Isso, fedcomments")
                    for key, job in jobs.items():
                        seconds = (sizes.isso_seconds if job.isso else sizes.seconds) / ROUNDS
                        pid = pids[job.port]
                        cpu_before = common.tree_cpu_seconds(pid)
                        result = await load(gen, job.port, job.paths, seconds,
                                            accept=job.accept, etag=job.etag,
                                            concurrency=job.concurrency)
                        cpu[key] = cpu.get(key, 0.0) + common.tree_cpu_seconds(pid) - cpu_before
                        previous = results.get(key)
                        results[key] = previous.merge(result) if previous else result
            finally:
                await floor.stop()
        finally:
            await asyncio.gather(ours.stop(), ours2.stop(), isso.stop())
        shown, stored = stored_fragments(ours.database)
    gen.close()

    r = results
    add(report, "JSON API, 200 comments, first read (nothing stored)", r["api_first"], 200,
        r["isso"], "Isso", times=True, missing="thread API not found")
    add(report, "JSON API, 200 comments, uncached", r["api_uncached"], 200, r["isso"], "Isso",
        times=True, missing="thread API not found")
    add(report, "JSON API, 200 comments, uncached", r["api_uncached"], 200, r["tree"],
        "SQLite-tree floor", missing="thread API not found")
    add(report, "JSON API, 200 comments, uncached, [server] workers = 2",
        r.get("api_uncached_w2"), 200, r["isso"], "Isso", times=True,
        missing="thread API not found")
    add(report, "JSON API, 200 comments, cached", r["api"], 200, r["static"], "static JSON",
        missing="thread API not found")
    add(report, "JSON API, 200 comments, If-None-Match", r["api_inm"], 304, r["static"],
        "static JSON", missing="no ETag")
    add_cpu(report, "server CPU per request, JSON API, 200 comments, cached", cpu, r, "api",
            [("static", "static JSON")])
    add_cpu(report, "server CPU per request, JSON API, 200 comments, uncached", cpu, r,
            "api_uncached", [("isso", "Isso"), ("tree", "SQLite-tree floor")])
    add(report, f"JSON API, {big_label} comments, uncached", r["api_big_uncached"], 200,
        r["tree_big"], "SQLite-tree floor", missing="thread API not found")
    add(report, f"JSON API, {big_label} comments, cached", r["api_big"], 200,
        missing="thread API not found")
    add(report, f"JSON API, {big_label} comments, If-None-Match", r["api_big_inm"], 304,
        r["static"], "static JSON", missing="no ETag")
    add(report, "HTML page, 200 comments, uncached", r["html_uncached"], 200, r["isso"],
        "Isso (JSON)", times=True)
    add(report, "HTML page, 200 comments", r["html"], 200)
    add(report, "HTML page, 200 comments, If-None-Match", r["html_inm"], 304, r["static"],
        "static JSON", missing="no ETag on the page")
    add(report, f"HTML page, {big_label} comments", r["html_big"], 200)
    add(report, f"HTML page, {big_label} comments, If-None-Match", r["html_big_inm"], 304,
        r["static"], "static JSON", missing="no ETag on the page")
    add(report, "reference: SQLite-tree floor, 200 comments", r["tree"], 200, r["isso"],
        "Isso", times=True)
    uncached, cached = cell(r["api_uncached"], 200)[1], cell(r["api"], 200)[1]
    if uncached == uncached and cached == cached and uncached > 0.8 * cached:
        report.note(f"WARNING: the uncached JSON figure is close to the cached one; the "
                    f"server's thread cache may now hold all {SMALL_COPIES} copies")
    report.note(f"concurrency {CONCURRENCY} ({big_label}-comment threads: 4), "
                f"{sizes.seconds:.0f} s per measurement (Isso {sizes.isso_seconds:.0f} s), in "
                f"{ROUNDS} interleaved rounds")
    report.note(f"uncached: requests cycle through {SMALL_COPIES} posts carrying the same "
                f"200-comment thread ({BIG_COPIES} for the big one), more than the server's "
                "thread cache keeps, so each one reads the thread from SQLite and assembles "
                "it from each comment's stored JSON fragment; the SQLite-tree floor cycles "
                "through the same posts and builds its (smaller) JSON from the columns")
    report.note(f"first read: each of the {SMALL_COPIES} posts once, before any fragment is "
                "stored (every comment rendered, the fragments written back); done once, "
                "before the rounds, which start when every fragment is stored")
    report.note(f"Isso {isso_peer.version(venv)} from PyPI, default settings, SQLite, one "
                "process (werkzeug's threaded server); GET /?uri=/viral/ returns all 200 "
                "comments, rendered from Markdown on every request")
    report.note("response sizes: " + "".join(f"{k} {v:,} B, " for k, v in sizes_seen.items())
                + f"static JSON floor {static_size:,} B")
    report.note(f"after the run: {stored:,} of the {shown:,} comments shown in threads have "
                "a stored fragment")
    report.note("ratio: ours ÷ reference (× against Isso, % against the floors)")
    return report


async def first_reads(gen: LoadGenerator, ours: Server, targets: list[Target]
                      ) -> LoadResult | None:
    """Every post read once with no fragment stored; then wait until the server is idle
    (it has stored them all), so the rounds measure reads with no writes beside them."""
    by_key = {t.key: t for t in targets}
    small = by_key["api_uncached"].paths
    if not small:
        return None
    common.progress(f"first reads: {len(small)} posts with no stored fragment")
    result = await load(gen, ours.port, small, 120, total=len(small))
    for key in ("api", "api_big", "api_big_uncached"):
        paths = by_key[key].paths or []
        await load(gen, ours.port, paths, 120, total=len(paths), concurrency=4)
    await idle(ours.pid)
    return result


async def idle(pid: int, limit: float = 120) -> None:
    """Wait (bounded) until the process uses under 2 % of a core over a second.

    The server's SQLite file is not opened from here while it runs: the server opens and
    closes the file again when its delivery worker starts (store/db.py), which drops its
    POSIX locks, and a reader here closing last would then remove its live WAL file.
    """
    before = common.cpu_seconds(pid)
    for _ in range(int(limit)):
        await asyncio.sleep(1)
        now = common.cpu_seconds(pid)
        if now - before < 0.02:
            return
        before = now
    common.progress("warning: the server was still busy after the first reads")


def stored_fragments(database: Path) -> tuple[int, int]:
    """(comments shown in some thread, those with a stored fragment), read once the server
    has stopped."""
    import sqlite3

    con = sqlite3.connect(database)
    try:
        row = con.execute(
            "SELECT count(*), count(f.body) FROM comments c LEFT JOIN comment_fragments f "
            "ON f.comment_id = c.id WHERE c.visibility IN ('public', 'unlisted') "
            "AND c.status IN ('approved', 'deleted')").fetchone()
        return int(row[0]), int(row[1])
    finally:
        con.close()


def main() -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--static", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor_server:
        web.run_app(floor_app(args.db, args.static), host=HOST, port=args.port, print=None,
                    access_log=None)
        return 0
    asyncio.run(run(args)).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
