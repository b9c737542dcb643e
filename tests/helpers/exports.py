"""Builders of the exports blogs move from, shaped like the real ones: WordPress's WXR 1.2,
Disqus's XML export (threads, then posts naming their thread and parent by dsq:id) and
Isso's SQLite database (its `threads` and `comments` tables as Isso creates them)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from fedcomments.runtime import Runtime
from tests.helpers.inbox import stored_state


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass
class WpComment:
    id: int
    author: str
    date_gmt: str
    content: str
    parent: int = 0
    approved: str = "1"
    type: str = "comment"
    email: str = ""
    url: str = ""
    #: The blog's local time (WordPress's comment_date); the GMT time when not given.
    date_local: str = ""


@dataclass
class WpItem:
    link: str
    title: str
    date_gmt: str = "2020-01-01 10:00:00"
    status: str = "publish"
    post_type: str = "post"
    post_id: int = 1
    password: str = ""
    #: The blog's local time (WordPress's post_date); the GMT time when not given.
    date_local: str = ""
    comments: list[WpComment] = field(default_factory=list)


def wxr_comment(c: WpComment) -> str:
    return (
        "\t\t<wp:comment>\n"
        f"\t\t\t<wp:comment_id>{c.id}</wp:comment_id>\n"
        f"\t\t\t<wp:comment_author>{_cdata(c.author)}</wp:comment_author>\n"
        f"\t\t\t<wp:comment_author_email>{_cdata(c.email)}</wp:comment_author_email>\n"
        f"\t\t\t<wp:comment_author_url>{escape(c.url)}</wp:comment_author_url>\n"
        "\t\t\t<wp:comment_author_IP><![CDATA[192.0.2.1]]></wp:comment_author_IP>\n"
        f"\t\t\t<wp:comment_date>{_cdata(c.date_local or c.date_gmt)}</wp:comment_date>\n"
        f"\t\t\t<wp:comment_date_gmt>{_cdata(c.date_gmt)}</wp:comment_date_gmt>\n"
        f"\t\t\t<wp:comment_content>{_cdata(c.content)}</wp:comment_content>\n"
        f"\t\t\t<wp:comment_approved>{_cdata(c.approved)}</wp:comment_approved>\n"
        f"\t\t\t<wp:comment_type>{_cdata(c.type)}</wp:comment_type>\n"
        f"\t\t\t<wp:comment_parent>{c.parent}</wp:comment_parent>\n"
        "\t\t\t<wp:comment_user_id>0</wp:comment_user_id>\n"
        "\t\t\t<wp:commentmeta><wp:meta_key><![CDATA[akismet_result]]></wp:meta_key>"
        "<wp:meta_value><![CDATA[false]]></wp:meta_value></wp:commentmeta>\n"
        "\t\t</wp:comment>\n")


def wxr_head(site: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8" ?>\n'
        '<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:wfw="http://wellformedweb.org/CommentAPI/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:wp="http://wordpress.org/export/1.2/">\n<channel>\n'
        f"\t<title>A blog</title>\n\t<link>{escape(site)}</link>\n"
        "\t<wp:wxr_version>1.2</wp:wxr_version>\n"
        f"\t<wp:base_site_url>{escape(site)}</wp:base_site_url>\n"
        f"\t<wp:base_blog_url>{escape(site)}</wp:base_blog_url>\n")


def wxr_item_head(item: WpItem) -> str:
    return (
        f"\t<item>\n\t\t<title>{escape(item.title)}</title>\n"
        f"\t\t<link>{escape(item.link)}</link>\n"
        "\t\t<pubDate>Wed, 01 Jan 2020 10:00:00 +0000</pubDate>\n"
        f"\t\t<content:encoded>{_cdata('<p>The post body.</p>')}</content:encoded>\n"
        f"\t\t<wp:post_id>{item.post_id}</wp:post_id>\n"
        f"\t\t<wp:post_date>{_cdata(item.date_local or item.date_gmt)}</wp:post_date>\n"
        f"\t\t<wp:post_date_gmt>{_cdata(item.date_gmt)}</wp:post_date_gmt>\n"
        f"\t\t<wp:status>{_cdata(item.status)}</wp:status>\n"
        f"\t\t<wp:post_type>{_cdata(item.post_type)}</wp:post_type>\n"
        f"\t\t<wp:post_password>{_cdata(item.password)}</wp:post_password>\n")


def write_wxr(path: Path, site: str, items: list[WpItem]) -> Path:
    parts = [wxr_head(site)]
    for item in items:
        parts.append(wxr_item_head(item))
        parts.extend(wxr_comment(c) for c in item.comments)
        parts.append("\t</item>\n")
    parts.append("</channel>\n</rss>\n")
    path.write_text("".join(parts), encoding="utf-8")
    return path


@dataclass
class DsqThread:
    dsq_id: str
    link: str
    title: str
    created: str = "2019-03-01T08:00:00Z"


@dataclass
class DsqPost:
    dsq_id: str
    thread: str
    name: str
    created: str
    message: str
    parent: str | None = None
    email: str = ""
    spam: bool = False
    deleted: bool = False


def write_disqus(path: Path, forum: str, threads: list[DsqThread], posts: list[DsqPost]
                 ) -> Path:
    out = ['<?xml version="1.0" encoding="utf-8"?>\n<disqus xmlns="http://disqus.com" '
           'xmlns:dsq="http://disqus.com/disqus-internals" '
           'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
           'xsi:schemaLocation="http://disqus.com/api/schemas/1.0/disqus.xsd '
           'http://disqus.com/api/schemas/1.0/internals.xsd">\n'
           f'<category dsq:id="100"><forum>{forum}</forum><title>General</title>'
           "<isDefault>true</isDefault></category>\n"]
    for t in threads:
        out.append(
            f'<thread dsq:id="{t.dsq_id}"><id>{escape(t.link)}</id><forum>{forum}</forum>'
            f'<category dsq:id="100" /><link>{escape(t.link)}</link>'
            f"<title>{escape(t.title)}</title><message /><createdAt>{t.created}</createdAt>"
            "<author><name>The author</name><isAnonymous>false</isAnonymous>"
            "<username>author</username></author><isClosed>false</isClosed>"
            "<isDeleted>false</isDeleted></thread>\n")
    for p in posts:
        parent = f'<parent dsq:id="{p.parent}" />' if p.parent else ""
        out.append(
            f'<post dsq:id="{p.dsq_id}"><id /><message>{_cdata(p.message)}</message>'
            f"<createdAt>{p.created}</createdAt>"
            f"<isDeleted>{str(p.deleted).lower()}</isDeleted>"
            f"<isSpam>{str(p.spam).lower()}</isSpam>"
            f"<author><email>{escape(p.email)}</email><name>{escape(p.name)}</name>"
            "<isAnonymous>false</isAnonymous>"
            f"<username>{escape(p.name.lower().replace(' ', ''))}</username></author>"
            f'<ipAddress>198.51.100.9</ipAddress><thread dsq:id="{p.thread}" />{parent}'
            "</post>\n")
    out.append("</disqus>\n")
    path.write_text("".join(out), encoding="utf-8")
    return path


# Isso's tables as its code creates them (isso/db/threads.py and comments.py), with the
# schema version its migrations end at.
ISSO_SCHEMA = [
    "CREATE TABLE threads (id INTEGER PRIMARY KEY, uri VARCHAR(256) UNIQUE, "
    "title VARCHAR(256))",
    "CREATE TABLE comments (tid REFERENCES threads(id), id INTEGER PRIMARY KEY, "
    "parent INTEGER, created FLOAT NOT NULL, modified FLOAT, mode INTEGER, "
    "remote_addr VARCHAR, text VARCHAR NOT NULL, author VARCHAR, email VARCHAR, "
    "website VARCHAR, likes INTEGER DEFAULT 0, dislikes INTEGER DEFAULT 0, "
    "voters BLOB NOT NULL, notification INTEGER DEFAULT 0)",
    "CREATE TABLE preferences (key VARCHAR PRIMARY KEY, value VARCHAR)",
    "PRAGMA user_version = 5",
]


def write_isso(path: Path, threads: list[tuple[int, str, str]],
               comments: list[dict[str, Any]]) -> Path:
    """threads: (id, uri, title); comments: dicts of the comments table's columns."""
    db = sqlite3.connect(path)
    for statement in ISSO_SCHEMA:
        db.execute(statement)
    db.executemany("INSERT INTO threads (id, uri, title) VALUES (?, ?, ?)", threads)
    for c in comments:
        row = {"mode": 1, "remote_addr": "203.0.113.0", "voters": b"\0" * 256,
               "likes": 0, "dislikes": 0, "modified": None, "parent": None,
               "email": None, "website": None, **c}
        db.execute(f"INSERT INTO comments ({', '.join(row)}) VALUES "
                   f"({', '.join('?' * len(row))})", list(row.values()))
    db.commit()
    db.close()
    return path


async def database_state(rt: Runtime) -> dict[str, list[tuple[Any, ...]]]:
    """Every row an import may write (posts too), for "nothing changed" assertions."""
    state = await stored_state(rt)
    rows = await rt.db.read.fetchall("SELECT * FROM posts ORDER BY id")
    state["posts"] = [tuple(r) for r in rows]
    return state


def workdir(base: Path, name: str) -> Path:
    """A directory of its own (e.g. for each server's CLI config)."""
    path = base / name
    path.mkdir(exist_ok=True)
    return path
