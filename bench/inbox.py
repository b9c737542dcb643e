"""Inbox throughput: distinct remote actors send signed Mastodon-shaped Create{Note} replies.

    python bench/inbox.py [--quick]

Measures accepted replies per second and p50/p99 latency at concurrency 16 and 64 against
`fedcomments serve`, and in the same run against the floor: a minimal aiohttp handler that
verifies one RSA-2048 draft-cavage signature and inserts one row with aiosqlite (WAL).
Afterwards every accepted reply must be stored exactly once. A cProfile of an in-process
run splits the cost per activity into stages.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing
import os
import pstats
import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import common
import orjson
from aiohttp import web
from common import HOST, Report, Server, ms, per_s, ratio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from fakes import FakeInstance
from loadgen import LoadGenerator, LoadResult, Request

TEXTS = (
    "Great post! I especially liked the part about running your own comment server.",
    "I disagree with the second paragraph &amp; here is why: caching is hard.",
    "Thanks for writing this up, bookmarked. <strong>Very</strong> useful.",
    "Does this work with static site generators like Hugo or Eleventy?",
)


@dataclass(frozen=True)
class Sizes:
    actors: int
    replies: int  # per measured phase
    profiled: int


QUICK = Sizes(actors=100, replies=900, profiled=300)
#: Each measured phase is split in rounds that alternate between floor and fedcomments.
ROUNDS = 3
FULL = Sizes(actors=1000, replies=4000, profiled=1000)


# --- the floor -------------------------------------------------------------------------------


def floor_app(db_path: str, keys_file: str) -> web.Application:
    """Verify one draft-cavage rsa-sha256 signature, insert one row, answer 202."""
    keys = {kid: serialization.load_pem_public_key(pem.encode())
            for kid, pem in json.loads(Path(keys_file).read_text()).items()}
    app = web.Application()
    db_key = web.AppKey("db", aiosqlite.Connection)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            key_id = common.parse_signature(request.headers["Signature"])["keyId"]
            common.verify_cavage(keys[key_id], request.method, request.path_qs,
                                 request.headers, body)
        except (KeyError, ValueError, InvalidSignature):
            return web.Response(status=401)
        doc = json.loads(body)
        await request.app[db_key].execute(
            "INSERT INTO activities (id, actor, body) VALUES (?, ?, ?)",
            (doc["id"], doc["actor"], body))
        return web.Response(status=202)

    async def database(app: web.Application) -> Any:
        db = await aiosqlite.connect(db_path, isolation_level=None)
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("CREATE TABLE IF NOT EXISTS activities "
                         "(id TEXT PRIMARY KEY, actor TEXT NOT NULL, body BLOB NOT NULL)")
        app[db_key] = db
        yield
        await db.close()

    app.cleanup_ctx.append(database)
    app.router.add_post("/inbox", handle)
    app.router.add_post("/users/{name}/inbox", handle)
    return app


# --- building and signing the load -----------------------------------------------------------

_CHILD_KEYS: list[Any] = []


def _sign_chunk(n_keys: int, items: list[tuple[int, str, str, str, bytes]]) -> list[Request]:
    if len(_CHILD_KEYS) < n_keys:
        _CHILD_KEYS[:] = common.rsa_keys(n_keys)
    out = []
    for index, key_id, authority, path, body in items:
        headers = common.sign_post(_CHILD_KEYS[index], key_id, authority, path, body)
        out.append(Request("POST", path, (("Accept", "application/activity+json"), *headers),
                           body))
    return out


def signing_pool() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(max_workers=os.cpu_count() or 2,
                               mp_context=multiprocessing.get_context("spawn"))


def sign_all(pool: ProcessPoolExecutor, n_keys: int,
             items: list[tuple[int, str, str, str, bytes]]) -> list[Request]:
    """Sign in parallel before any clock starts (client-side signing is not measured)."""
    workers = os.cpu_count() or 2
    chunks = [items[i::workers] for i in range(workers)]
    signed = list(pool.map(_sign_chunk, [n_keys] * workers, chunks))
    # Re-interleave so the send order matches `items`.
    out: list[Request] = [signed[i % workers][i // workers] for i in range(len(items))]
    return out


@dataclass
class Phase:
    docs: list[dict[str, Any]]
    actors: list[int]

    def items(self, remote: FakeInstance, authority: str, path: str
              ) -> list[tuple[int, str, str, str, bytes]]:
        return [(n, remote.key_id(n), authority, path, json.dumps(doc).encode())
                for n, doc in zip(self.actors, self.docs, strict=True)]

    def note_ids(self) -> list[str]:
        return [d["object"]["id"] for d in self.docs]


def make_phase(remote: FakeInstance, actors: Sequence[int], post_id: str, blog: str,
               earlier: Sequence[str], nested_every: int = 3) -> Phase:
    docs = []
    for i, n in enumerate(actors):
        # Every third reply answers an earlier reply instead of the post (threading).
        target = earlier[i % len(earlier)] if earlier and i % nested_every == 0 else post_id
        docs.append(remote.create_note(n, target, blog, text=TEXTS[i % len(TEXTS)]))
    return Phase(docs, list(actors))


# --- checks and profile ----------------------------------------------------------------------


def accepted_ids(result: LoadResult, phase: Phase) -> list[str]:
    ids = phase.note_ids()
    return [ids[i] for i, s in zip(result.indexes, result.statuses, strict=True) if s == 202]


def check_stored(database: Path, accepted: list[str], sent: list[str]) -> tuple[int, int, int]:
    """(lost, duplicated, stored without a 202) after the run, read from the SQLite file."""
    con = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        stored = Counter(dict(con.execute(
            "SELECT ap_id, COUNT(*) FROM comments WHERE ap_id IS NOT NULL GROUP BY ap_id")))
    finally:
        con.close()
    lost = sum(1 for i in accepted if stored[i] == 0)
    duplicated = sum(1 for c in stored.values() if c > 1)
    acked = set(accepted)
    unacked = sum(1 for i in sent if i not in acked and stored[i] > 0)
    return lost, duplicated, unacked


def _entered(stats: pstats.Stats, inside: Callable[[str], bool],
             outside: Callable[[str], bool] = lambda f: True) -> float:
    """Time spent in functions matching `inside`, entered from callers that don't match."""
    total = 0.0
    for func, (_cc, _nc, _tt, _ct, callers) in stats.stats.items():  # type: ignore[attr-defined]
        if not inside(func[0]):
            continue
        for caller, edge in callers.items():
            if not inside(caller[0]) and outside(caller[0]):
                total += edge[3]
    return total


class _TripCounter:
    """Counts aiosqlite calls (each a round trip to a SQLite thread) while installed."""

    def __init__(self) -> None:
        self.count = 0
        self._original = aiosqlite.Connection._execute

        async def counted(conn: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await self._original(conn, fn, *args, **kwargs)

        aiosqlite.Connection._execute = counted  # type: ignore[method-assign]

    def stop(self) -> int:
        aiosqlite.Connection._execute = self._original  # type: ignore[method-assign]
        return self.count


def _count_trips() -> _TripCounter:
    return _TripCounter()


def _sqlite_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if "_connection_worker_thread" in t.name]


def _thread_cpu(threads: list[threading.Thread]) -> float:
    total = 0.0
    for t in threads:
        if t.ident is not None and t.is_alive():
            total += time.clock_gettime(time.pthread_getcpuclockid(t.ident))
    return total


async def profile_stages(directory: Path, remote: FakeInstance, gen: LoadGenerator,
                         pool: ProcessPoolExecutor, sizes: Sizes, report: Report,
                         pstats_path: str | None = None) -> None:
    """Run the real app in this process under cProfile and split the cost per stage."""
    from fedcomments.web.app import create_app

    port = common.free_port()
    settings = common.settings_object(common.bench_settings(directory, port))
    from fedcomments.web.keys import RUNTIME

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, port).start()
    server = Server(directory, common.bench_settings(directory, port))
    try:
        import aiohttp

        server.session = aiohttp.ClientSession()
        post = await server.admin("POST", "/api/v1/admin/posts",
                                  {"url": "https://blog.example/profiled/", "title": "Profiled"})
        blog = f"{server.url}/users/blog"
        authority = f"{HOST}:{port}"
        warm_actors = list(range(min(50, sizes.actors)))
        warm = make_phase(remote, warm_actors, post["ap_id"], blog, [])
        measured = make_phase(remote, [warm_actors[i % len(warm_actors)]
                                       for i in range(sizes.profiled)],
                              post["ap_id"], blog, warm.note_ids())
        n_keys = len(remote.keys)
        await gen.run(HOST, port, sign_all(pool, n_keys, warm.items(remote, authority, "/inbox")),
                      concurrency=16)
        requests = sign_all(pool, n_keys, measured.items(remote, authority, "/inbox"))
        threads = _sqlite_threads()
        sql0 = _thread_cpu(threads)
        db = app[RUNTIME].db
        batches0, units0 = db.unit_batches, db.units_done
        trips = _count_trips()
        # cProfile's default (wall) clock: cheap enough per call to keep the distortion of
        # call-heavy code (html.parser, the normaliser's tree walk) small.
        profile = cProfile.Profile()
        profile.enable()
        result = await gen.run(HOST, port, requests, concurrency=16)
        profile.disable()
        trip_count = trips.stop()
        batches, units = db.unit_batches - batches0, db.units_done - units0
        if pstats_path:
            profile.dump_stats(pstats_path)
        sql_cpu = _thread_cpu(threads) - sql0
    finally:
        await server.stop()
        await runner.cleanup()
    done = result.ok(202)
    if not done:
        report.note(f"profile run: no reply accepted ({dict(Counter(result.statuses))})")
        return
    stats = pstats.Stats(profile)

    def under(part: str) -> Callable[[str], bool]:
        return lambda f: f.replace("\\", "/").endswith(part) or f"/{part}" in f

    # Each stage is a family of modules (httpsig.py with httpsig_*.py, and so on).
    verify = _entered(stats, under("fedcomments/ap/httpsig"))
    normalise = _entered(stats, lambda f: under("fedcomments/ap/jsonld")(f) or "/pyld/" in f)
    parse = _entered(stats, under("fedcomments/ap/parse")) - normalise
    sanitise = _entered(stats, under("fedcomments/ap/sanitize.py"),
                        outside=lambda f: not under("fedcomments/ap/parse")(f))
    store = _entered(stats, under("fedcomments/store/"))
    # Busy time of the event-loop thread: everything but its waits in epoll.
    busy = sum(tt for (_f, _l, name), (_cc, _nc, tt, _ct, _c) in stats.stats.items()  # type: ignore[attr-defined]
               if not _waiting(name))
    other = busy - verify - normalise - parse - sanitise - store

    def row(name: str, seconds: float, share: bool = True) -> None:
        report.add(f"stage: {name}", f"{seconds / done * 1e6:,.0f} µs/reply",
                   "", f"{seconds / busy * 100:.0f} % of the loop" if share else "")

    row("verify signature (httpsig)", verify)
    row("JSON-LD normalisation (jsonld)", normalise)
    row("parse AS2 (parse, excl. normalisation)", parse)
    row("sanitise content (sanitize)", sanitise)
    row("store, event-loop side (store/)", store)
    row("HTTP, services, logging, asyncio (rest)", other)
    row("SQLite threads (CPU, beside the loop)", sql_cpu, share=False)
    report.note("largest self time in the event-loop thread: " + top_functions(stats, busy))
    report.add("SQLite round trips per reply (aiosqlite calls)", f"{trip_count / done:.2f}")
    report.add("units of work per write transaction (group commit)",
               f"{units / batches:.1f}" if batches else "no units")
    report.note(f"stages: cProfile of an in-process run, {done} replies from "
                f"{len(warm_actors)} known actors at concurrency 16, as shares of the event "
                "loop's busy time (waits in epoll left out; waits for the GIL held by the "
                "SQLite threads stay in, mostly under recv and put_nowait); the profiler "
                "inflates Python-heavy stages: the 'stage alone' rows give their cost "
                "without it, the 'server CPU per reply' rows the whole")


def isolated_stages(remote: FakeInstance, report: Report, repeat: int = 300) -> None:
    """The protocol stages alone on one Mastodon reply, without a profiler (timeit)."""
    import timeit
    from datetime import UTC, datetime

    from fedcomments.ap import httpsig, parse
    from fedcomments.ap.jsonld import Normalizer
    from fedcomments.ap.sanitize import sanitize_html

    doc = remote.create_note(0, "http://127.0.0.1:1/posts/p", "http://127.0.0.1:1/users/blog",
                             text=TEXTS[0])
    body = json.dumps(doc).encode()
    headers = {k: v for k, v in common.sign_post(remote.keys[0], remote.key_id(0),
                                                   "127.0.0.1:1", "/inbox", body)}
    headers["Host"] = "127.0.0.1:1"
    pem, url, now = common.public_pem(remote.keys[0]), "http://127.0.0.1:1/inbox", datetime.now(UTC)
    normalizer = Normalizer()

    def verify() -> None:
        sig = httpsig.parse_request_signature("POST", url, headers)
        httpsig.verify_request(sig, pem, method="POST", url=url, headers=headers, body=body,
                               now=now)

    stages: list[tuple[str, Callable[[], object]]] = [
        ("verify signature (parse header, digest, RSA)", verify),
        ("JSON decode (orjson, as the inbox does)", lambda: orjson.loads(body)),
        ("normalise + parse AS2", lambda: parse.parse_activity(orjson.loads(body),
                                                               normalizer=normalizer)),
        ("sanitise content", lambda: sanitize_html(doc["object"]["content"])),
    ]
    for name, fn in stages:
        fn()
        seconds = min(timeit.repeat(fn, number=repeat, repeat=3)) / repeat
        report.add(f"stage alone: {name}", f"{seconds * 1e6:,.0f} µs")


def _waiting(name: str) -> bool:
    return "poll' of 'select.epoll" in name or name == "<method 'poll' of 'select.poll' objects>"


def top_functions(stats: pstats.Stats, total: float, n: int = 8) -> str:
    """The n functions with the most self time (waiting in epoll left out), as shares."""
    rows = []
    for (filename, line, name), (_cc, _nc, tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if _waiting(name):
            continue
        short = filename.replace("\\", "/").rsplit("/site-packages/", 1)[-1]
        short = short.rsplit("/fedcomments/", 1)[-1] if "/fedcomments/" in short else short
        short = "python/" + short.rsplit("/lib/python3", 1)[-1].split("/", 1)[-1] if (
            "/lib/python3" in short) else short
        where = name if filename == "~" else f"{short}:{line} {name}"
        rows.append((tt, where))
    rows.sort(reverse=True)
    return ", ".join(f"{where} {tt / total * 100:.1f} %" for tt, where in rows[:n])


# --- main --------------------------------------------------------------------------------------


def phase_rows(report: Report, label: str, ours: LoadResult, floor: LoadResult,
               ours_cpu: float, floor_cpu: float, *, throughput_only: bool = False) -> None:
    report.add(f"accepted replies/s, {label}", per_s(ours.rate(202)), per_s(floor.rate(202)),
               ratio(ours.rate(202), floor.rate(202)))
    if not throughput_only:
        for q in (50, 99):
            report.add(f"latency p{q}, {label}", ms(ours.percentile(q, 202)),
                       ms(floor.percentile(q, 202)),
                       ratio(ours.percentile(q, 202), floor.percentile(q, 202), percent=False))
    report.add(f"server CPU per reply, {label}", f"{ours_cpu / max(1, ours.ok(202)) * 1e3:.2f} ms",
               f"{floor_cpu / max(1, floor.ok(202)) * 1e3:.2f} ms",
               ratio(ours_cpu / max(1, ours.ok(202)), floor_cpu / max(1, floor.ok(202)),
                     percent=False))


def describe(result: LoadResult) -> str:
    extra = dict(Counter(s for s in result.statuses if s != 202))
    errors = dict(result.errors)
    return f"{result.ok(202)} × 202" + (f", other {extra}" if extra else "") + (
        f", errors {errors}" if errors else "")


@dataclass
class Side:
    """One server under load: where to send, what to send, whose CPU to count."""

    name: str
    port: int
    pids: Callable[[], list[int]]
    requests: dict[int, list[Request]] = field(default_factory=dict)


def tree_cpu(pids: list[int]) -> float:
    """CPU seconds of these processes and of their live children (HTTP workers)."""
    return sum(common.tree_cpu_seconds(p) for p in pids)


async def measured(gen: LoadGenerator, side: Side, requests: list[Request],
                   concurrency: int) -> tuple[LoadResult, float]:
    cpu0 = tree_cpu(side.pids())
    result = await gen.run(HOST, side.port, requests, concurrency=concurrency, time_limit=120)
    return result, tree_cpu(side.pids()) - cpu0


async def interleaved(gen: LoadGenerator, concurrency: int, sides: list[Side]
                      ) -> list[tuple[LoadResult, float]]:
    """Every side's load in rounds, the order rotating from round to round, so
    background noise falls on all alike."""
    chunk = -(-len(sides[0].requests[concurrency]) // ROUNDS)
    merged = [(LoadResult(), 0.0) for _ in sides]
    for r in range(ROUNDS):
        part = slice(r * chunk, (r + 1) * chunk)
        for k in range(len(sides)):
            i = (k + r) % len(sides)
            side = sides[i]
            result, cpu = await measured(gen, side, side.requests[concurrency][part],
                                         concurrency)
            merged[i] = (merged[i][0].merge(result, offset=r * chunk), merged[i][1] + cpu)
    return merged


async def start_floors(tmp: Path, keys_file: Path, processes: int) -> list[common.FloorProcess]:
    """The floor as `processes` processes sharing one port (SO_REUSEPORT) and one file."""
    port = common.free_port()
    name = f"floor{processes}"
    floors = []
    for n in range(processes):
        floor = common.FloorProcess(
            common.floor_command("inbox.py", "--port", str(port), "--db",
                                 str(tmp / f"{name}.sqlite3"), "--keys", str(keys_file),
                                 *(["--reuse-port"] if processes > 1 else [])),
            port, tmp / f"{name}-{n}.log", ready_line="floor listening")
        floors.append(await floor.start())
    return floors


async def compare(tmp: Path, remote: FakeInstance, gen: LoadGenerator,
                  pool: ProcessPoolExecutor, sizes: Sizes, keys: list[Any],
                  report: Report) -> None:
    """Ours with one and two workers against the floor in one and two processes."""
    servers = {1: Server.prepare(tmp / "ours"),
               2: Server.prepare(tmp / "ours2", server={"workers": 2})}
    keys_file = tmp / "floor-keys.json"
    keys_file.write_text(json.dumps({remote.key_id(n): common.public_pem(k)
                                     for n, k in enumerate(keys)}))
    floors: dict[int, list[common.FloorProcess]] = {}
    try:
        await asyncio.gather(gen.warm(), *(s.start() for s in servers.values()))
        for n in (1, 2):
            floors[n] = await start_floors(tmp, keys_file, n)
        await asyncio.gather(*(s.wait_for_workers() for s in servers.values()))
        everyone = list(range(sizes.actors))
        plans = {}
        for n, server in servers.items():
            post = await server.admin("POST", "/api/v1/admin/posts", {
                "url": "https://blog.example/viral/", "title": "A post that went viral"})
            blog = f"{server.url}/users/blog"
            first = make_phase(remote, everyone, post["ap_id"], blog, [])
            plans[n] = (first, {c: make_phase(
                remote, [i % sizes.actors for i in range(sizes.replies)], post["ap_id"],
                blog, first.note_ids()) for c in (16, 64)})
        common.progress(f"signing {2 * sizes.actors + 8 * sizes.replies} requests")
        sides = [Side(f"ours{n}", s.port, lambda s=s: [s.pid]) for n, s in servers.items()]
        sides += [Side(f"floor{n}", fl[0].port, lambda fl=fl: [f.pid for f in fl])
                  for n, fl in floors.items()]
        for side, plan in zip(sides, (plans[1], plans[2], plans[1], plans[1]), strict=True):
            auth = f"{HOST}:{side.port}"
            side.requests = {c: sign_all(pool, len(keys), p.items(remote, auth, "/inbox"))
                             for c, p in plan[1].items()}
        common.progress("first contact: every actor's first reply (key fetched)")
        first_res = {}
        for n, side in zip((1, 2), sides, strict=False):
            first_reqs = sign_all(pool, len(keys), plans[n][0].items(
                remote, f"{HOST}:{side.port}", "/inbox"))
            first_res[n], _ = await measured(gen, side, first_reqs, 16)
        results = {}
        for c in (16, 64):
            common.progress(f"concurrency {c}: fedcomments with 1 and 2 workers, the floor "
                            f"in 1 and 2 processes, {ROUNDS} rounds each")
            results[c] = await interleaved(gen, c, sides)
            (o1, o1_cpu), (o2, o2_cpu), (f1, f1_cpu), (f2, _) = results[c]
            phase_rows(report, f"c={c}", o1, f1, o1_cpu, f1_cpu)
            phase_rows(report, f"c={c}, workers = 2", o2, f1, o2_cpu, f1_cpu,
                       throughput_only=True)
            report.add(f"accepted replies/s, c={c}, workers = 2, floor in 2 processes",
                       per_s(o2.rate(202)), per_s(f2.rate(202)),
                       ratio(o2.rate(202), f2.rate(202)))
        for n in (1, 2):
            report.add(f"accepted replies/s, first contact c=16 (key fetched), "
                       f"workers = {n}", per_s(first_res[n].rate(202)), "", "")
        rss = {n: s.rss_mb() for n, s in servers.items()}
    finally:
        await asyncio.gather(*(s.stop() for s in servers.values()),
                             *(f.stop() for fl in floors.values() for f in fl))

    for n, server in servers.items():
        first, phases = plans[n]
        accepted = accepted_ids(first_res[n], first)
        sent = first.note_ids()
        for c in (16, 64):
            accepted += accepted_ids(results[c][n - 1][0], phases[c])
            sent += phases[c].note_ids()
        lost, duplicated, unacked = check_stored(server.database, accepted, sent)
        report.add(f"stored exactly once (read back from SQLite), workers = {n}",
                   f"{len(accepted) - lost} of {len(accepted)} accepted",
                   f"lost {lost}, duplicated {duplicated}", "")
        if unacked:
            report.note(f"workers = {n}: {unacked} replies were stored without a 202 "
                        "reaching the client")
    for n in (1, 2):
        report.add(f"server RSS after the run, workers = {n}", f"{rss[n]:.0f} MB")
    report.note("; ".join(
        f"c={c}: " + ", ".join(f"{side.name} {describe(res)}"
                               for side, (res, _) in zip(sides, results[c], strict=True))
        for c in (16, 64)))
    report.note(f"{sizes.replies} replies per phase, every third one answers an earlier "
                f"reply; {remote.fetches} actor documents served by the fake instance")
    report.note("ratio: throughput as ours ÷ floor; latency and CPU as ours ÷ floor (× slower)")
    report.note("workers = 2: `[server] workers = 2`, two HTTP processes on one port and "
                "one SQLite file; the floor as the target sets it is one process, and the "
                "row 'floor in 2 processes' gives it the same two")


async def run(args: Any) -> Report:
    sizes = QUICK if args.quick else FULL
    report = Report(f"Inbox: signed Mastodon Create{{Note}} replies from {sizes.actors} actors")
    keys = common.rsa_keys(sizes.actors)
    gen = LoadGenerator()
    pool = signing_pool()
    with common.workdir(args.keep) as tmp:
        remote = await FakeInstance(keys).start()
        if args.profile_only:
            await gen.warm()
        else:
            await compare(tmp, remote, gen, pool, sizes, keys, report)
        common.progress("profiling an in-process run")
        await profile_stages(tmp / "profile", remote, gen, pool, sizes, report, args.pstats)
        isolated_stages(remote, report)
        await remote.close()
    gen.close()
    pool.shutdown()
    return report


def main() -> int:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--profile-only", action="store_true",
                   help="only the in-process profile and the stage timings (fast iteration)")
    p.add_argument("--pstats", metavar="FILE", help="also save the cProfile data to FILE")
    p.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--db", help=argparse.SUPPRESS)
    p.add_argument("--keys", help=argparse.SUPPRESS)
    p.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.floor_server:
        web.run_app(floor_app(args.db, args.keys), host=HOST, port=args.port,
                    print=lambda _: print("floor listening", flush=True), access_log=None,
                    reuse_port=args.reuse_port or None)
        return 0
    asyncio.run(run(args)).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
