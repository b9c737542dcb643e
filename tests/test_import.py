"""`fedcomments import`: WordPress, Disqus and Isso exports brought into a running server,
threads, names, dates, statuses and counts as in the source, idempotent and quiet."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import html5lib
import pytest

from tests.conftest import Instance
from tests.helpers.admin import run_cli, write_config
from tests.helpers.blogkit import deliveries, followed, start_blog_without_worker, worker
from tests.helpers.exports import (
    DsqPost,
    DsqThread,
    WpComment,
    WpItem,
    database_state,
    write_disqus,
    write_isso,
    write_wxr,
    wxr_comment,
    wxr_head,
    wxr_item_head,
)
from tests.helpers.peers import peers
from tests.helpers.posts import add_post_via_api
from tests.helpers.reader import thread

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples" / "import"
SMALLER_PICTURE = SAMPLES / "wordpress-the-smaller-picture.xml"
HTML = "text/html"


async def _import(fc: Instance, tmp_path: Path, *argv: str) -> dict[str, Any]:
    """Run `fedcomments import ... --json` beside the running server; asserts exit 0."""
    run = await run_cli("import", *argv, "--json", "--config", write_config(fc, tmp_path))
    assert run.code == 0, run.err
    return dict(run.json())


def _tree(nodes: list[dict[str, Any]]) -> list[tuple[str, str, list[Any]]]:
    """A thread as (author, published, replies) nested like the page shows it."""
    return [(n["author"]["name"], n["published"], _tree(n["replies"])) for n in nodes]


@pytest.mark.skipif(not SMALLER_PICTURE.is_file(), reason="../shared/samples not present")
async def test_wordpress_com_export_shows_the_thread_on_the_post_page(
        make_instance: Any, tmp_path: Path) -> None:
    """Given the real WordPress.com export of "The smaller picture", when it is imported,
    then the post page shows "2 comments": vernhughes's, and Alex Fox's answer nested under
    it, with their names and dates, the comment feeds carry both, and the email addresses
    appear nowhere public."""
    fc: Instance = await make_instance()
    report = await _import(fc, tmp_path, "wordpress", str(SMALLER_PICTURE))
    assert (report["imported"], report["posts_created"], report["skipped"]) == (2, 1, {})

    data = await thread(fc, url="https://alexfox.blog.example/2018/01/25/the-smaller-picture/")
    assert data["post"]["title"] == "The smaller picture"
    resp = await fc.get("/posts/the-smaller-picture", accept=HTML)
    assert resp.status == 200
    page = await resp.text()
    assert '<h2 id="fc-count" class="fc-count">2 comments</h2>' in page
    doc = html5lib.parse(page, treebuilder="etree", namespaceHTMLElements=False)
    [top] = doc.findall(".//ol[@class='fc-thread']/li")
    assert top.findtext(".//span[@class='fc-author']/a") == "vernhughes"
    assert top.find(".//time").get("datetime") == "2018-01-26T00:52:00Z"
    assert "26 January 2018, 00:52 UTC" in ET.tostring(top, encoding="unicode")
    [answer] = top.findall("./ol[@class='fc-replies']/li")
    assert answer.findtext(".//span[@class='fc-author']/a") == "Alex Fox"
    assert answer.find(".//time").get("datetime") == "2018-01-26T10:01:00Z"
    assert "Thanks for your considered response Vern" in ET.tostring(answer, encoding="unicode")
    # Paragraphs as WordPress shows them (blank lines part them).
    assert page.count("<p>But what if the ‘faulty processes’") == 1
    feeds = []
    for path in ("/posts/the-smaller-picture/comments.atom", "/comments.atom"):
        resp = await fc.get(path, accept="application/atom+xml")
        assert resp.status == 200
        feeds.append(await resp.text())
        assert "<name>vernhughes</name>" in feeds[-1] and "<name>Alex Fox</name>" in feeds[-1]
    for surface in (page, json.dumps(data), *feeds):
        assert "vern@example.net" not in surface and "alex@alexfox" not in surface
    # The reader's website is kept as the link of their name.
    assert data["comments"][0]["author"]["website"] == "http://vernhughes.example.net"


async def test_wordpress_import_is_idempotent_keeps_statuses_and_skips_spam(
        make_instance: Any, tmp_path: Path) -> None:
    """Given a WXR export with replies listed before their parents three levels deep, a held
    comment, spam, trash, a pingback and a draft's comment, and the post already registered
    under another spelling of its permalink, when imported twice, then the thread matches
    the source, the skipped ones are counted, no post is created, and the second import
    changes nothing at all."""
    fc: Instance = await make_instance()
    post = await add_post_via_api(fc, "hello")  # https://blog.example/hello/
    item = WpItem(link="HTTP://Blog.Example/hello", title="Hello", comments=[
        WpComment(4, "Dora", "2021-05-04 12:00:00", "Deepest reply", parent=3),
        WpComment(3, "Carl", "2021-05-03 12:00:00", "Reply to Bea", parent=2),
        WpComment(2, "Bea", "2021-05-02 12:00:00", "Reply to Ann", parent=1),
        WpComment(1, "Ann", "2021-05-01 12:00:00", "First!\nwith https://ann.example/x.",
                  email="ann@example.org", url="https://ann.example"),
        WpComment(5, "Held", "2021-05-05 12:00:00", "Waiting", approved="0"),
        WpComment(6, "Spammer", "2021-05-06 12:00:00", "Buy", approved="spam"),
        WpComment(7, "Binned", "2021-05-06 13:00:00", "Gone", approved="trash"),
        WpComment(8, "Other blog", "2021-05-07 12:00:00", "Linked here", type="pingback"),
        WpComment(9, "Evil", "2021-05-08 12:00:00", '<script>alert(1)</script>Hi',
                  url="javascript:alert(1)"),
    ])
    draft = WpItem(link="https://blog.example/?p=9", title="Draft", status="draft", post_id=9,
                   comments=[WpComment(20, "Early", "2021-01-01 00:00:00", "Too soon")])
    export = write_wxr(tmp_path / "blog.xml", "https://blog.example", [item, draft])

    first = await _import(fc, tmp_path, "wordpress", str(export))
    assert first["imported"] == 6 and first["statuses"] == {"approved": 5, "pending": 1}
    assert first["skipped"] == {"pingback": 1, "post not published": 1, "spam": 1, "trash": 1}
    assert (first["posts_created"], first["posts_matched"], first["orphans"]) == (0, 1, 0)

    data = await thread(fc, id=str(post["id"]))
    assert data["count"] == 5
    assert _tree(data["comments"]) == [
        ("Ann", "2021-05-01T12:00:00Z", [
            ("Bea", "2021-05-02T12:00:00Z", [
                ("Carl", "2021-05-03T12:00:00Z", [
                    ("Dora", "2021-05-04T12:00:00Z", [])])])]),
        ("Evil", "2021-05-08T12:00:00Z", [])]
    ann, evil = data["comments"][0], data["comments"][1]
    assert ann["content"] == ('<p>First!<br>\nwith <a href="https://ann.example/x" '
                              'rel="nofollow noopener noreferrer">https://ann.example/x</a>.</p>')
    assert ann["author"]["kind"] == "reader" and ann["author"]["website"] == "https://ann.example"
    assert "<script" not in evil["content"] and evil["author"]["website"] is None
    pending = await run_cli("comments", "list", "--status", "pending", "--json", "--config",
                            write_config(fc, tmp_path))
    [held] = pending.json()["comments"]
    assert (held["author"]["name"], held["imported"]["source"]) == ("Held", "wordpress")

    before = await database_state(fc.rt)
    again = await _import(fc, tmp_path, "wordpress", str(export))
    assert (again["imported"], again["existing"], again["posts_created"]) == (0, 6, 0)
    assert await database_state(fc.rt) == before


async def test_a_newer_export_adds_only_what_is_new_and_links_to_earlier_parents(
        make_instance: Any, tmp_path: Path) -> None:
    """Given an import of an export, when a newer export of the same blog holds the same
    comments and a reply to one of them, then only the reply is added, under its parent."""
    fc: Instance = await make_instance()
    old = [WpComment(1, "Ann", "2021-05-01 12:00:00", "Hello")]
    item = WpItem(link="https://blog.example/post/", title="Post", comments=old)
    await _import(fc, tmp_path, "wordpress",
                  str(write_wxr(tmp_path / "old.xml", "https://blog.example", [item])))
    item.comments = [*old, WpComment(2, "Bob", "2021-06-01 12:00:00", "Hi Ann", parent=1)]
    newer = await _import(fc, tmp_path, "wordpress",
                          str(write_wxr(tmp_path / "new.xml", "https://blog.example", [item])))
    assert (newer["imported"], newer["existing"]) == (1, 1)
    data = await thread(fc, url="https://blog.example/post/")
    assert _tree(data["comments"]) == [
        ("Ann", "2021-05-01T12:00:00Z", [("Bob", "2021-06-01T12:00:00Z", [])])]


async def test_disqus_export_threads_by_parent_in_any_order(make_instance: Any,
                                                            tmp_path: Path) -> None:
    """Given a Disqus export with two threads, a reply listed before its parent, spam, a
    deleted comment that has a reply, and a post of a thread the export does not hold,
    when imported, then each thread shows as in Disqus, with counts of what was skipped."""
    fc: Instance = await make_instance()
    threads = [DsqThread("11", "https://blog.example/one/", "One"),
               DsqThread("12", "https://blog.example/two/", "Two")]
    posts = [
        DsqPost("103", "11", "Cleo", "2019-03-03T10:00:00Z", "<p>Agreed, Bo</p>", parent="102"),
        DsqPost("101", "11", "Ada", "2019-03-01T10:00:00Z", "<p>Nice <b>post</b></p>",
                email="ada@example.org"),
        DsqPost("102", "11", "Bo", "2019-03-02T10:00:00Z", "<p>Thanks Ada</p>", parent="101"),
        DsqPost("104", "11", "Spam Bot", "2019-03-04T10:00:00Z", "<p>cheap</p>", spam=True),
        DsqPost("201", "12", "Dee", "2019-04-01T10:00:00Z", "<p>Removed</p>", deleted=True),
        DsqPost("202", "12", "Eve", "2019-04-02T10:00:00Z", "<p>Still here</p>", parent="201"),
        DsqPost("301", "99", "Lost", "2019-05-01T10:00:00Z", "<p>?</p>"),
    ]
    export = write_disqus(tmp_path / "disqus.xml", "myblog", threads, posts)
    report = await _import(fc, tmp_path, "disqus", str(export))
    assert report["statuses"] == {"approved": 4, "deleted": 1}
    assert report["skipped"] == {"spam": 1, "thread not in the export": 1}
    assert report["posts_created"] == 2

    one = await thread(fc, url="https://blog.example/one/")
    assert one["post"]["title"] == "One" and one["count"] == 3
    assert _tree(one["comments"]) == [
        ("Ada", "2019-03-01T10:00:00Z", [
            ("Bo", "2019-03-02T10:00:00Z", [
                ("Cleo", "2019-03-03T10:00:00Z", [])])])]
    assert one["comments"][0]["content"] == "<p>Nice <b>post</b></p>"
    two = await thread(fc, url="https://blog.example/two")
    assert two["count"] == 1
    [placeholder] = two["comments"]
    assert placeholder["deleted"] and "Removed" not in json.dumps(two)
    assert [r["author"]["name"] for r in placeholder["replies"]] == ["Eve"]
    again = await _import(fc, tmp_path, "disqus", str(export))
    assert (again["imported"], again["existing"]) == (0, 5)


async def test_isso_database_with_markdown_and_pending(make_instance: Any,
                                                       tmp_path: Path) -> None:
    """Given an Isso database (its own schema) with Markdown comments, a reply, a comment
    waiting for approval and one deleted under a reply, when imported with --site, then the
    threads, names, websites, dates and statuses are Isso's, the text rendered as HTML."""
    fc: Instance = await make_instance()
    db = write_isso(tmp_path / "comments.db", [(1, "/blog/hello/", "Hello"),
                                               (2, "/blog/bye/", None)], [
        {"tid": 1, "id": 1, "created": 1_600_000_000.5, "text": "Great *post*, see "
         "https://isso.example/x", "author": "Ivy", "email": "ivy@example.org",
         "website": "https://ivy.example"},
        {"tid": 1, "id": 2, "parent": 1, "created": 1_600_000_100.0, "text": "> quote\n\n"
         "Thanks **Ivy**", "author": None},
        {"tid": 1, "id": 3, "created": 1_600_000_200.0, "text": "Moderate me", "author": "New",
         "mode": 2},
        {"tid": 2, "id": 4, "created": 1_600_000_300.0, "text": "", "author": "Zed", "mode": 4},
        {"tid": 2, "id": 5, "parent": 4, "created": 1_600_000_400.0, "text": "Answer",
         "author": "Yan"},
    ])
    run = await run_cli("import", "isso", str(db), "--config", write_config(fc, tmp_path))
    assert run.code == 2 and "--site" in run.err
    report = await _import(fc, tmp_path, "isso", str(db), "--site", "https://blog.example")
    assert report["statuses"] == {"approved": 3, "deleted": 1, "pending": 1}
    hello = await thread(fc, url="https://blog.example/blog/hello/")
    assert _tree(hello["comments"]) == [
        ("Ivy", "2020-09-13T12:26:40Z", [
            ("Anonymous", "2020-09-13T12:28:20Z", [])])]
    ivy = hello["comments"][0]
    assert ivy["content"] == (
        '<p>Great <em>post</em>, see <a href="https://isso.example/x" rel="nofollow noopener '
        'noreferrer">https://isso.example/x</a></p>')
    assert ivy["author"]["website"] == "https://ivy.example"
    assert ivy["replies"][0]["content"] == (
        "<blockquote>\n<p>quote</p>\n</blockquote>\n<p>Thanks <strong>Ivy</strong></p>")
    bye = await thread(fc, url="https://blog.example/blog/bye/")
    assert bye["post"]["title"] == "https://blog.example/blog/bye/"
    assert bye["comments"][0]["deleted"] and bye["comments"][0]["replies"][0]["author"][
        "name"] == "Yan"


async def test_nothing_is_sent_to_followers_during_an_import(make_instance: Any,
                                                              tmp_path: Path) -> None:
    """Given a follower on a real peer, when an export creating two posts is imported and
    the delivery worker runs (scheduled posts included), then the follower receives
    nothing and no delivery is queued."""
    fc = await start_blog_without_worker(make_instance)
    async with peers("127.0.0.2") as [peer]:
        alice = peer.actor("alice")
        await followed(fc, (peer, alice))
        queued = await deliveries(fc)
        export = write_wxr(tmp_path / "blog.xml", "https://blog.example", [
            WpItem(link=f"https://blog.example/{n}/", title=f"Post {n}", post_id=n,
                   comments=[WpComment(n, "Ann", "2021-05-01 12:00:00", "Hello"),
                             WpComment(n + 10, "Bob", "2021-05-02 12:00:00", "Hi", parent=n)])
            for n in (1, 2)])
        report = await _import(fc, tmp_path, "wordpress", str(export))
        assert (report["imported"], report["posts_created"]) == (4, 2)
        await worker(fc).run_until_idle()
        assert peer.arrivals == []
        assert await deliveries(fc) == queued


@pytest.mark.parametrize("body", [
    # Billion laughs: entity declarations are refused before any is expanded.
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    "<rss><channel><link>https://blog.example</link><item><title>&b;</title></item>"
    "</channel></rss>",
    # An external entity would read a local file into a comment.
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    "<rss><channel><link>https://blog.example</link></channel></rss>",
])
async def test_hostile_xml_is_refused_and_nothing_stored(make_instance: Any, tmp_path: Path,
                                                         body: str) -> None:
    """Given an export with entity declarations, when imported, then one line on stderr,
    exit code 2, and nothing stored."""
    fc: Instance = await make_instance()
    before = await database_state(fc.rt)
    path = tmp_path / "evil.xml"
    path.write_text(body, encoding="utf-8")
    run = await run_cli("import", "wordpress", str(path), "--config", write_config(fc, tmp_path))
    assert (run.code, run.out) == (2, "")
    assert run.err.count("\n") == 1 and "refused XML construct" in run.err
    assert await database_state(fc.rt) == before


async def test_a_broken_export_stores_nothing_even_after_many_good_comments(
        make_instance: Any, tmp_path: Path) -> None:
    """Given an export whose first thousand comments are fine and whose end is cut off, when
    imported, then it is refused with exit code 2 and not one comment is stored (the file is
    checked whole before anything is written); a wrong format is refused the same way."""
    fc: Instance = await make_instance()
    before = await database_state(fc.rt)
    good = write_wxr(tmp_path / "good.xml", "https://blog.example", [WpItem(
        link="https://blog.example/p/", title="P",
        comments=[WpComment(n, f"R{n}", "2021-05-01 12:00:00", "Hi") for n in range(1, 1001)])])
    cut = tmp_path / "cut.xml"
    cut.write_bytes(good.read_bytes()[:-40])
    config = write_config(fc, tmp_path)
    for argv, message in ((["wordpress", str(cut)], "not well-formed XML"),
                          (["disqus", str(good)], "not a Disqus export"),
                          (["fedcomments", str(good)], "not valid JSON"),
                          (["wordpress", str(tmp_path / "none.xml")], "not a readable file")):
        run = await run_cli("import", *argv, "--config", config)
        assert (run.code, run.out) == (2, ""), run.err
        assert run.err.count("\n") == 1 and message in run.err
    assert await database_state(fc.rt) == before


async def test_dry_run_reports_and_changes_nothing(make_instance: Any, tmp_path: Path) -> None:
    """Given an export, when imported with --dry-run, then the report says what would be
    imported and nothing is stored."""
    fc: Instance = await make_instance()
    before = await database_state(fc.rt)
    export = write_wxr(tmp_path / "blog.xml", "https://blog.example", [WpItem(
        link="https://blog.example/p/", title="P",
        comments=[WpComment(1, "Ann", "2021-05-01 12:00:00", "Hi"),
                  WpComment(2, "Spam", "2021-05-01 12:00:00", "x", approved="spam")])])
    report = await _import(fc, tmp_path, "wordpress", str(export), "--dry-run")
    assert (report["dry_run"], report["imported"], report["posts_created"]) == (True, 1, 1)
    assert report["skipped"] == {"spam": 1}
    assert await database_state(fc.rt) == before


def _big_wxr(path: Path, comments: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.write(wxr_head("https://big.example"))
        for post in range(comments // 1000):
            f.write(wxr_item_head(WpItem(link=f"https://big.example/{post}/", title=f"P{post}",
                                         post_id=post)))
            for n in range(post * 1000, post * 1000 + 1000):
                f.write(wxr_comment(WpComment(n + 1, f"Reader {n}", "2021-05-01 12:00:00",
                                              f"Comment {n}: " + "words " * 60,
                                              parent=n if n % 1000 else 0)))
            f.write("\t</item>\n")
        f.write("</channel>\n</rss>\n")
    return path


def _read_in_child(module: str, path: Path) -> tuple[int, int]:
    """(records read, growth of the peak RSS in kB) of reading `path` with
    `fedcomments.formats.MODULE` in a fresh interpreter (untraced: full speed)."""
    code = (
        "import resource, sys\n"
        "from pathlib import Path\n"
        f"from fedcomments.formats import {module} as reader\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "count = sum(1 for _ in reader.read(Path(sys.argv[1])))\n"
        "grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(count, grew)\n")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=120, check=True)
    count, grew = done.stdout.split()
    return int(count), int(grew)


def test_large_exports_are_parsed_in_bounded_memory(tmp_path: Path) -> None:
    """Given a 30 MB WordPress export of 25,000 comments and a 20 MB Disqus export of 20,000,
    when read, then every comment comes out while the reader's memory grows by a few MB at
    most (the whole file as a tree takes over a hundred)."""
    path = _big_wxr(tmp_path / "big.xml", 25_000)
    assert path.stat().st_size > 30_000_000
    count, grew = _read_in_child("wxr", path)
    assert count == 25_000 and grew < 16_000, grew

    posts = [DsqPost(str(n), "1", f"R{n}", "2020-01-01T00:00:00Z", "<p>" + "w " * 500 + "</p>",
                     parent=str(n - 1) if n > 1 else None) for n in range(1, 20_001)]
    dpath = write_disqus(tmp_path / "big-disqus.xml", "big",
                         [DsqThread("1", "https://big.example/d/", "D")], posts)
    assert dpath.stat().st_size > 20_000_000
    count, grew = _read_in_child("disqus", dpath)
    assert count == 20_000 and grew < 16_000, grew


async def test_a_post_an_import_creates_is_the_one_the_blog_names_in_its_own_spelling(
        make_instance: Any, tmp_path: Path) -> None:
    """Given a Disqus export whose thread was loaded as http://Blog.Example/hello (no
    slash), when it is imported and the blog, served over https with trailing slashes,
    then asks for the thread and registers the post, then the widget finds the imported
    comment and the registration updates that post instead of making a second one."""
    fc: Instance = await make_instance()
    export = write_disqus(tmp_path / "disqus.xml", "myblog",
                          [DsqThread("11", "http://Blog.Example/hello", "Hello")],
                          [DsqPost("101", "11", "Ada", "2014-03-01T10:00:00Z", "<p>Hi</p>")])
    report = await _import(fc, tmp_path, "disqus", str(export))
    assert (report["imported"], report["posts_created"]) == (1, 1)

    data = await thread(fc, url="https://blog.example/hello/")
    assert [c["author"]["name"] for c in data["comments"]] == ["Ada"]
    registered = await add_post_via_api(fc, "hello", expect=200)
    assert registered["id"] == data["post"]["id"]
    listed = await run_cli("posts", "list", "--json", "--config", write_config(fc, tmp_path))
    assert [p["id"] for p in listed.json()["posts"]] == [registered["id"]]
    assert (await thread(fc, url="https://blog.example/hello"))["count"] == 1


async def test_a_comment_deleted_here_is_not_brought_back_by_a_newer_export(
        make_instance: Any, tmp_path: Path) -> None:
    """Given an imported WordPress thread whose second comment the admin deleted here,
    when a newer export of the blog (the same comments and one new) is imported, then only
    the new comment is added: the deleted one stays deleted, counted as skipped."""
    fc: Instance = await make_instance()
    config = write_config(fc, tmp_path)
    old = [WpComment(1, "Ann", "2021-05-01 12:00:00", "Hello"),
           WpComment(2, "Spammy", "2021-05-02 12:00:00", "Cheap pills, approved by mistake")]
    item = WpItem(link="https://blog.example/post/", title="Post", comments=old)
    await _import(fc, tmp_path, "wordpress",
                  str(write_wxr(tmp_path / "old.xml", "https://blog.example", [item])))
    listed = await run_cli("comments", "list", "--json", "--config", config)
    [spam_id] = [c["id"] for c in listed.json()["comments"] if c["author"]["name"] == "Spammy"]
    deleted = await run_cli("comments", "delete", str(spam_id), "--yes", "--config", config)
    assert deleted.code == 0, deleted.err

    item.comments = [*old, WpComment(3, "Bob", "2021-06-01 12:00:00", "Hi Ann", parent=1)]
    newer = await _import(fc, tmp_path, "wordpress",
                          str(write_wxr(tmp_path / "new.xml", "https://blog.example", [item])))
    assert (newer["imported"], newer["existing"]) == (1, 1)
    assert newer["skipped"] == {"deleted here before": 1}
    data = await thread(fc, url="https://blog.example/post/")
    assert _tree(data["comments"]) == [
        ("Ann", "2021-05-01T12:00:00Z", [("Bob", "2021-06-01T12:00:00Z", [])])]


async def test_comments_of_a_password_protected_post_are_not_made_public(
        make_instance: Any, tmp_path: Path) -> None:
    """Given a WordPress export with a published post and a password-protected one (whose
    comments WordPress shows only to readers who give the password), when imported, then
    the open post's comment is public and the protected post's comment is skipped,
    counted, and shown nowhere."""
    fc: Instance = await make_instance()
    export = write_wxr(tmp_path / "blog.xml", "https://blog.example", [
        WpItem(link="https://blog.example/open/", title="Open", post_id=1,
               comments=[WpComment(1, "Ann", "2021-05-01 12:00:00", "Open reply")]),
        WpItem(link="https://blog.example/family/", title="Family", post_id=2,
               password="hunter2",
               comments=[WpComment(2, "Aunt May", "2021-05-02 12:00:00", "Private news")])])
    report = await _import(fc, tmp_path, "wordpress", str(export))
    assert (report["imported"], report["skipped"]) == (1, {"post password-protected": 1})
    everything = await run_cli("comments", "list", "--status", "all", "--json", "--config",
                               write_config(fc, tmp_path))
    assert [c["author"]["name"] for c in everything.json()["comments"]] == ["Ann"]
    resp = await fc.get("/comments.atom", accept="application/atom+xml")
    assert "Private news" not in await resp.text()


def _wxr_with_content(path: Path, content_xml: str) -> Path:
    """A WXR export of one post and one comment whose <wp:comment_content> holds
    `content_xml` as written (not escaped)."""
    comment = wxr_comment(WpComment(1, "Ann", "2021-05-01 12:00:00", "PLACEHOLDER"))
    comment = comment.replace("<![CDATA[PLACEHOLDER]]>", content_xml)
    with path.open("w", encoding="utf-8") as f:
        f.write(wxr_head("https://blog.example"))
        f.write(wxr_item_head(WpItem(link="https://blog.example/p/", title="P")))
        f.write(comment + "\t</item>\n</channel>\n</rss>\n")
    return path


@pytest.mark.parametrize("fmt", ["wordpress", "disqus"])
async def test_elements_nested_too_deep_are_refused_and_nothing_stored(
        make_instance: Any, tmp_path: Path, fmt: str) -> None:
    """Given an export whose comment holds elements nested 100 deep (a few hundred bytes
    that, a million deep, take gigabytes to read), when imported, then one line on
    stderr, exit code 2, and nothing stored."""
    fc: Instance = await make_instance()
    before = await database_state(fc.rt)
    deep = "<x>" * 100 + "text" + "</x>" * 100
    if fmt == "disqus":
        path = write_disqus(tmp_path / "deep.xml", "f", [DsqThread("1", "https://b.example/",
                                                                   "B")],
                            [DsqPost("9", "1", "Ann", "2020-01-01T00:00:00Z", "Hi")])
        body = path.read_text(encoding="utf-8").replace("<![CDATA[Hi]]>", deep)
        path.write_text(body, encoding="utf-8")
    else:
        path = _wxr_with_content(tmp_path / "deep.xml", deep)
    run = await run_cli("import", fmt, str(path), "--config", write_config(fc, tmp_path))
    assert (run.code, run.out) == (2, ""), run.err
    assert run.err.count("\n") == 1 and "nested more than 32 deep" in run.err
    assert await database_state(fc.rt) == before


async def test_a_comment_dated_only_in_the_blogs_local_time_gets_its_utc_time(
        make_instance: Any, tmp_path: Path) -> None:
    """Given a WordPress export of a blog two hours ahead of UTC (its post written at 14:00
    local, 12:00 GMT) with a comment whose GMT date is 0000-00-00 00:00:00 (as comments
    brought in by old importers are) and whose local date is 10:00, when imported, then
    the comment is dated 08:00 UTC, like the one dated in both."""
    fc: Instance = await make_instance()
    export = write_wxr(tmp_path / "blog.xml", "https://blog.example", [WpItem(
        link="https://blog.example/p/", title="P", date_gmt="2021-05-01 12:00:00",
        date_local="2021-05-01 14:00:00", comments=[
            WpComment(1, "Local only", "0000-00-00 00:00:00", "a",
                      date_local="2021-05-03 10:00:00"),
            WpComment(2, "Both", "2021-05-03 09:00:00", "b",
                      date_local="2021-05-03 11:00:00")])])
    await _import(fc, tmp_path, "wordpress", str(export))
    data = await thread(fc, url="https://blog.example/p/")
    assert {c["author"]["name"]: c["published"] for c in data["comments"]} == {
        "Local only": "2021-05-03T08:00:00Z", "Both": "2021-05-03T09:00:00Z"}
