"""Every listing pages with a cursor: the CLI's --limit/--cursor/--all and the admin API's
limit/cursor, each row exactly once however many there are."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from fedcomments.model import CommentStatus, Origin, Visibility
from fedcomments.paging import encode_cursor
from fedcomments.services import blocks, deliveries
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from fedcomments.store import queue
from fedcomments.store.actors import ActorFields
from fedcomments.store.comments import NewComment
from tests.conftest import Instance
from tests.helpers.admin import run_cli, write_config
from tests.helpers.posts import add_post_via_api


async def _comments(fc: Instance, post_id: int, count: int, *, text: str = "Hello",
                    start: int = 0) -> list[int]:
    """`count` reader comments; every third pair shares its publication time (the cursor
    must still tell them apart)."""
    ids = []
    now = fc.rt.now()
    async with fc.rt.db.transaction() as tx:
        for n in range(start, start + count):
            ids.append(await comment_store.insert(tx, NewComment(
                post_id=post_id, parent_id=None, origin=Origin.LOCAL,
                visibility=Visibility.PUBLIC, status=CommentStatus.APPROVED,
                content=f"<p>{text} {n}</p>", author_name=f"Reader {n}",
                published_at=now - timedelta(minutes=n - n % 3)), now))
    return ids


async def test_comments_list_all_returns_every_comment_exactly_once(
        make_instance: Any, tmp_path: Path) -> None:
    """Given 1,234 comments (some published at the same second), when listing with
    `comments list --all --json` (pages of the default size, and of 7), then every comment
    appears exactly once, newest first, and the document ends with a null cursor."""
    fc: Instance = await make_instance()
    post = await add_post_via_api(fc)
    ids = await _comments(fc, post["id"], 1234)
    config = write_config(fc, tmp_path)
    for extra in ([], ["--limit", "7"]):
        run = await run_cli("comments", "list", "--all", "--json", *extra, "--config", config)
        assert run.code == 0, run.err
        doc = run.json()
        listed = [c["id"] for c in doc["comments"]]
        assert sorted(listed) == sorted(ids) and len(listed) == len(set(listed))
        times = [c["published"] for c in doc["comments"]]
        assert times == sorted(times, reverse=True)
        assert doc["next_cursor"] is None
    run = await run_cli("comments", "list", "--config", config)
    assert run.out.splitlines()[-1].startswith("(more: --cursor ")
    assert len(run.out.splitlines()) == 1 + 100 + 1


async def test_a_cursor_stays_valid_while_comments_arrive(make_instance: Any,
                                                          tmp_path: Path) -> None:
    """Given a first page of comments, when newer comments arrive before the next page is
    asked for with its cursor, then the following pages hold the rest of the older ones,
    none of them twice."""
    fc: Instance = await make_instance()
    post = await add_post_via_api(fc)
    ids = await _comments(fc, post["id"], 30)
    config = write_config(fc, tmp_path)
    first = await run_cli("comments", "list", "--limit", "10", "--json", "--config", config)
    seen = [c["id"] for c in first.json()["comments"]]
    await _comments(fc, post["id"], 5, start=-10)  # newer than all of them
    cursor = first.json()["next_cursor"]
    while cursor:
        page = await run_cli("comments", "list", "--limit", "10", "--cursor", cursor, "--json",
                             "--config", config)
        seen += [c["id"] for c in page.json()["comments"]]
        cursor = page.json()["next_cursor"]
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))


async def _one_of_each(fc: Instance, n: int) -> None:
    """`n` rows in every listing: posts, followers, deliveries, reports, blocks."""
    now = fc.rt.now()
    for i in range(n):
        await add_post_via_api(fc, f"p{i}")
    async with fc.rt.db.transaction() as tx:
        for i in range(n):
            actor_id = await actor_store.upsert(tx, ActorFields(
                ap_id=f"https://f{i}.example/users/u", domain=f"f{i}.example", type="Person",
                username="u", name=None, summary=None, url=None, icon=None,
                inbox=f"https://f{i}.example/users/u/inbox", shared_inbox=None,
                followers_url=None), now)
            await actor_store.add_follower(tx, actor_id, None, now + timedelta(seconds=i % 2))
            await actor_store.add_report(tx, ap_id=f"https://f{i}.example/flags/1",
                                         actor_id=actor_id, content="spam", object_ids=[],
                                         now=now)
            await queue.enqueue(tx, activity_id=f"https://x/{i}", inbox=f"https://d{i}.example/i",
                                body=b"{}", now=now)
    for i in range(n):
        await blocks.block_domain(fc.rt, f"blocked{i}.example")
        await blocks.block_actor(fc.rt, f"https://troll{i}.example/users/t")


LISTINGS = ["posts", "followers", "deliveries", "reports", "domains", "actors", "comments"]


async def test_every_admin_listing_pages_with_a_cursor(make_instance: Any,
                                                       tmp_path: Path) -> None:
    """Given five rows in every listing, when each admin API listing is walked two rows at a
    time with its next_cursor, then the pages hold exactly the rows of one big page, in the
    same order; a malformed cursor, or one of another listing, is a 400 naming `cursor`."""
    fc: Instance = await make_instance(federation={"delivery_worker": False})
    await _one_of_each(fc, 5)
    await _comments(fc, 1, 5)
    for name in LISTINGS:
        path = f"/api/v1/admin/{name}"
        whole = await (await fc.admin("GET", f"{path}?limit=1000")).json()
        assert whole["next_cursor"] is None
        assert len(whole[name]) >= 5, name
        walked: list[Any] = []
        cursor = ""
        while True:
            resp = await fc.admin("GET", path, params={"limit": "2", "cursor": cursor})
            assert resp.status == 200, await resp.text()
            page = await resp.json()
            assert len(page[name]) <= 2
            walked += page[name]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert walked == whole[name], name
        for bad in ("garbage!", encode_cursor("elsewhere", ("x",))):
            resp = await fc.admin("GET", path, params={"cursor": bad})
            assert resp.status == 400
            assert (await resp.json())["field"] == "cursor"
        resp = await fc.admin("GET", path, params={"limit": "0"})
        assert resp.status == 400
    pending = await deliveries.deliveries_page(fc.rt, status=deliveries.parse_status("pending"),
                                               limit=2)
    assert pending.next_cursor is not None and len(pending.items) == 2


async def test_every_cli_listing_takes_limit_cursor_and_all(make_instance: Any,
                                                            tmp_path: Path) -> None:
    """Given five rows in every listing, when each CLI listing runs with --limit 2, then
    --cursor continues where it stopped and --all lists all five, as JSON and as a table
    with one header."""
    fc: Instance = await make_instance(federation={"delivery_worker": False})
    await _one_of_each(fc, 5)
    await _comments(fc, 1, 5)
    config = write_config(fc, tmp_path)
    for name in LISTINGS:
        first = await run_cli(name, "list", "--limit", "2", "--json", "--config", config)
        assert first.code == 0, first.err
        second = await run_cli(name, "list", "--limit", "2", "--cursor",
                               first.json()["next_cursor"], "--json", "--config", config)
        everything = await run_cli(name, "list", "--limit", "2", "--all", "--json",
                                   "--config", config)
        rows = everything.json()[name]
        assert len(rows) >= 5 and everything.json()["next_cursor"] is None
        assert first.json()[name] + second.json()[name] == rows[:4], name
        table = await run_cli(name, "list", "--limit", "2", "--all", "--config", config)
        lines = table.out.splitlines()
        assert lines[0].split()[0] in ("ID", "HANDLE", "DOMAIN", "ACTOR"), name
        assert sum(1 for line in lines if line == lines[0]) == 1
        assert len([line for line in lines if line.strip()]) >= 1 + len(rows)
        bad = await run_cli(name, "list", "--cursor", "nope", "--config", config)
        assert (bad.code, bad.out) == (2, "") and "cursor" in bad.err
    deleted = await run_cli("posts", "list", "--deleted", "--json", "--config", config)
    assert deleted.code == 0


def test_listing_everything_runs_in_bounded_memory(tmp_path: Path) -> None:
    """Given 5,000 comments of 8 kB each (40 MB of text), when `comments list --all --json`
    prints them all, then the process grows by no more than one page does, far less than
    holding every row would take."""
    database = tmp_path / "big.sqlite3"
    config = tmp_path / "fedcomments.toml"
    config.write_text(f'[storage]\ndatabase = "{database}"\n', encoding="utf-8")
    seed = (
        "import asyncio, sys\n"
        "from datetime import UTC, datetime\n"
        "from fedcomments.config import load_settings\n"
        "from fedcomments.model import PostInput\n"
        "from fedcomments.runtime import open_runtime\n"
        "from fedcomments.services import posts\n"
        # The bulk of each comment in a link (cheap to turn into plain text).
        "body = '<p><a href=\"https://example.org/' + 'x' * 8000 + '\">link</a></p>'\n"
        "async def main():\n"
        "    async with open_runtime(load_settings(sys.argv[1])) as rt:\n"
        "        post = (await posts.add_post(rt, PostInput('https://blog.example/a/', 'A'))"
        ").post\n"
        "        async with rt.db.transaction() as tx:\n"
        "            await tx.executemany('INSERT INTO comments (post_id, origin, visibility, "
        "status, content, author_name, published_at, created_at) VALUES (?, \"local\", "
        "\"public\", \"approved\", ?, \"R\", ?, ?)', [(post.id, body, "
        "f'2024-01-01T00:00:{n % 60:02d}.{n:06d}Z', '2024-01-01T00:00:00.000000Z') "
        "for n in range(5000)])\n"
        "asyncio.run(main())\n")
    subprocess.run([sys.executable, "-c", seed, str(config)], check=True, timeout=120)
    measure = (
        "import resource, sys\n"
        "from fedcomments import cli\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "code = cli.main(sys.argv[1:])\n"
        "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(code, grew, file=sys.stderr)\n")

    def growth(*argv: str) -> tuple[int, int]:
        done = subprocess.run([sys.executable, "-c", measure, "comments", "list", "--json",
                               *argv, "--config", str(config)], capture_output=True,
                              text=True, timeout=300, check=True)
        code, grew = done.stderr.split()
        if argv == ("--all",):
            assert done.stdout.count('\n  {"id": ') == 5_000
        return int(code), int(grew)

    one_page = growth("--limit", "1000")
    everything = growth("--all")
    assert one_page[0] == everything[0] == 0
    # Every row at once would take over 60 MB more; a page at a time stays near one page.
    assert everything[1] < one_page[1] + 16_000, (one_page, everything)


def _forged(listing: str, *parts: str) -> str:
    """A cursor of `listing` as a client could write it by hand: JSON text, base64url."""
    raw = "[" + ",".join([json.dumps(listing), *parts]) + "]"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


#: Each listing's sort key, forged: a number past SQLite's 64-bit integers and a lone
#: surrogate (valid JSON, but no UTF-8 text) in place of the key's parts.
FORGED = {
    "posts": [('"2020-01-01"', "1" + "0" * 30), (r'"\ud800"', "1")],
    "comments": [('"2020-01-01"', "-1" + "0" * 30), (r'"\ud800"', "1")],
    "followers": [('"2020-01-01"', "1" + "0" * 30), (r'"\udfff"', "1")],
    "reports": [('"2020-01-01"', "1" + "0" * 30), (r'"\ud800"', "1")],
    "deliveries": [("1" + "0" * 30,)],
    "domains": [(r'"\ud800"',)],
    "actors": [(r'"\ud800"',)],
}


async def test_a_forged_cursor_is_bad_input_not_a_server_error(make_instance: Any,
                                                               tmp_path: Path) -> None:
    """Given cursors forged by hand with the right listing name but an integer SQLite
    cannot hold or a string that is not valid Unicode, when any listing is asked for the
    page after them, then the admin API answers 400 naming `cursor` and the CLI exits 2
    with one line, instead of an internal error."""
    fc: Instance = await make_instance(federation={"delivery_worker": False})
    await _one_of_each(fc, 1)
    config = write_config(fc, tmp_path)
    for name, forged in FORGED.items():
        for parts in forged:
            cursor = _forged(name, *parts)
            resp = await fc.admin("GET", f"/api/v1/admin/{name}", params={"cursor": cursor})
            assert resp.status == 400, (name, parts, await resp.text())
            assert (await resp.json())["field"] == "cursor"
            run = await run_cli(name, "list", "--cursor", cursor, "--config", config)
            assert (run.code, run.out) == (2, ""), (name, parts, run.err)
            assert run.err.count("\n") == 1 and "cursor" in run.err
