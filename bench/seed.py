"""Deterministic comment threads and how to seed them: through fedcomments' own store layer,
through raw SQL for very large databases, and as a JSON spec for Isso's seeder."""

from __future__ import annotations

import json
import random
import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

WORDS = (
    "federation", "comment", "thread", "static", "blog", "reply", "server", "mastodon",
    "instance", "post", "reader", "owner", "question", "answer", "idea", "cache", "sqlite",
    "python", "privacy", "link", "feed", "moderation",
)
DOMAINS = tuple(f"social{n}.example" for n in range(12))
START = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SpecComment:
    """One comment of a generated thread; `parent` is an index into the same list."""

    parent: int | None
    origin: str  # "remote" (a fediverse reply) or "local" (the reader form)
    author: int  # actor number for remote comments, reader number for local ones
    text: str
    minutes: int  # after START

    @property
    def published(self) -> datetime:
        return START + timedelta(minutes=self.minutes)


def thread_spec(n: int, seed: int = 7) -> list[SpecComment]:
    """n comments: about a third from the reader form, the rest from the fediverse; replies
    nest under earlier comments (mostly recent ones), roots answer the post."""
    rnd = random.Random(seed)
    out: list[SpecComment] = []
    minutes = 0
    for i in range(n):
        minutes += rnd.randint(0, 5)
        parent = None
        if i and rnd.random() < 0.6:
            parent = max(0, i - 1 - int(rnd.expovariate(1 / 12)))
        origin = "local" if rnd.random() < 0.35 else "remote"
        author = rnd.randrange(60 if origin == "remote" else 40)
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(12, 60))]
        text = " ".join(words).capitalize() + "."
        out.append(SpecComment(parent, origin, author, text, minutes))
    return out


def actor_url(n: int) -> str:
    return f"https://{DOMAINS[n % len(DOMAINS)]}/users/reader{n}"


def remote_html(c: SpecComment, index: int) -> str:
    """What sanitize_html keeps of a Mastodon reply: paragraphs, a mention, a link."""
    half = len(c.text) // 2
    return (f'<p><span class="h-card"><a href="https://{DOMAINS[0]}/@blog" class="u-url mention"'
            f' rel="nofollow noopener noreferrer" target="_blank">@<span>blog</span></a></span> '
            f'{c.text[:half]}</p><p>{c.text[half:]} <a href="https://example.com/{index}" '
            'rel="nofollow noopener noreferrer" target="_blank">example.com/' f"{index}</a></p>")


async def seed_fedcomments(settings: Any, posts: list[tuple[str, str, list[SpecComment]]]
                           ) -> list[dict[str, Any]]:
    """Register posts and their threads through the services and store layer.

    Returns one dict per post (id, slug, ap_id, permalink). Run it before the server
    starts (it opens the same SQLite file).
    """
    from fedcomments.model import CommentStatus, Origin, PostInput, Visibility
    from fedcomments.runtime import open_runtime
    from fedcomments.services import posts as post_service
    from fedcomments.store import actors as actor_store
    from fedcomments.store import comments as comment_store
    from fedcomments.store.actors import ActorFields
    from fedcomments.store.comments import NewComment

    out = []
    async with open_runtime(settings) as rt:
        now = rt.now()
        for permalink, title, spec in posts:
            change = await post_service.add_post(rt, PostInput(
                permalink=permalink, title=title, summary="A post many people answered.",
                published_at=START - timedelta(hours=1)))
            post = change.post
            async with rt.db.transaction() as tx:
                actor_ids: dict[int, int] = {}
                for c in spec:
                    if c.origin == "remote" and c.author not in actor_ids:
                        url = actor_url(c.author)
                        domain = DOMAINS[c.author % len(DOMAINS)]
                        actor_ids[c.author] = await actor_store.upsert(tx, ActorFields(
                            ap_id=url, domain=domain, type="Person",
                            username=f"reader{c.author}", name=f"Reader {c.author}",
                            summary="<p>Reads blogs.</p>", url=f"https://{domain}/@reader{c.author}",
                            icon=f"https://{domain}/avatars/{c.author}.png", inbox=f"{url}/inbox",
                            shared_inbox=f"https://{domain}/inbox",
                            followers_url=f"{url}/followers"), now)
                ids: list[int] = []
                ap_ids: list[str | None] = []
                for i, c in enumerate(spec):
                    parent_id = ids[c.parent] if c.parent is not None else None
                    in_reply_to = ap_ids[c.parent] if c.parent is not None else post.ap_id
                    if c.origin == "remote":
                        ap_id: str | None = f"{actor_url(c.author)}/statuses/{post.id}{i:06d}"
                        new = NewComment(
                            post_id=post.id, parent_id=parent_id, origin=Origin.REMOTE,
                            visibility=Visibility.PUBLIC, status=CommentStatus.APPROVED,
                            content=remote_html(c, i), published_at=c.published, ap_id=ap_id,
                            actor_id=actor_ids[c.author], url=ap_id, in_reply_to=in_reply_to,
                            language="en", mentions=(rt.urls.actor,))
                    else:
                        ap_id = None
                        new = NewComment(
                            post_id=post.id, parent_id=parent_id, origin=Origin.LOCAL,
                            visibility=Visibility.PUBLIC, status=CommentStatus.APPROVED,
                            content=f"<p>{c.text}</p>", source=c.text, published_at=c.published,
                            author_name=f"Local Reader {c.author}",
                            author_website=f"https://reader{c.author}.example/" if c.author % 3
                            else None)
                    new_id = await comment_store.insert(tx, new, now)
                    if ap_id is None:
                        ap_id = rt.urls.comment(new_id)
                        await comment_store.set_ap_id(tx, new_id, ap_id)
                    ids.append(new_id)
                    ap_ids.append(ap_id)
                    # Every fourth comment got a like from another reader.
                    if i % 4 == 0 and actor_ids:
                        liker = list(actor_ids.values())[i % len(actor_ids)]
                        await comment_store.add_reaction(
                            tx, ap_id=f"{actor_url(i % 60)}/likes/{post.id}-{i}", type_="like",
                            actor_id=liker, post_id=post.id, comment_id=new_id,
                            target_ap_id=ap_id, now=now)
            out.append({"id": post.id, "slug": post.slug, "ap_id": post.ap_id,
                        "permalink": post.permalink, "comments": len(spec)})
    return out


def bulk_comments(database: Path, post_id: int, count: int, *, first: int = 0) -> None:
    """Append `count` approved remote-style comments to a post with plain SQL (fast seeding
    of very large databases; the columns follow store/schema.py)."""
    rnd = random.Random(post_id)
    con = sqlite3.connect(database)
    try:
        actor_row = con.execute("SELECT id FROM actors ORDER BY id LIMIT 1").fetchone()
        actor_id = actor_row[0] if actor_row else None
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows = []
        for i in range(first, first + count):
            text = " ".join(rnd.choice(WORDS) for _ in range(30))
            when = (START + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            rows.append((post_id, f"https://bulk.example/notes/{post_id}-{i}",
                         "remote" if actor_id else "local", actor_id,
                         None if actor_id else "Bulk Reader", f"<p>{text}</p>", when, now))
        with con:
            con.executemany(
                "INSERT INTO comments (post_id, ap_id, origin, actor_id, author_name, visibility,"
                " status, content, published_at, created_at) "
                "VALUES (?, ?, ?, ?, ?, 'public', 'approved', ?, ?, ?)", rows)
    finally:
        con.close()


def spec_json(spec: list[SpecComment]) -> str:
    """The thread for Isso's seeder (plain text; Isso renders it as Markdown)."""
    return json.dumps([{**asdict(c), "created": c.published.timestamp(),
                        "name": f"Reader {c.author}" if c.origin == "remote"
                        else f"Local Reader {c.author}",
                        "website": actor_url(c.author) if c.origin == "remote" else None}
                       for c in spec])


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def clone_thread(database: Path, post_id: int, copies: int) -> list[tuple[int, str]]:
    """`copies` more posts carrying the same thread as `post_id` (comments, nesting,
    reactions), copied with plain SQL; returns their (id, permalink).

    Unique columns get a `-copyN` suffix; every other column is copied as it is, so the
    copies stay exact whatever columns later migrations add.
    """
    con = sqlite3.connect(database)
    try:
        stride = int(con.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM comments").fetchone()[0])
        post_cols = [c for c in _columns(con, "posts") if c != "id"]
        comment_cols = _columns(con, "comments")
        reaction_cols = [c for c in _columns(con, "reactions") if c != "id"]
        unique = {"slug", "permalink", "ap_id", "target_ap_id"}
        permalinks = []
        with con:
            for n in range(1, copies + 1):
                suffix = f"-copy{n}"

                def expr(col: str, offset: int, new_post: int | None, suffix: str = suffix
                         ) -> str:
                    if col == "permalink":
                        return f"rtrim(permalink, '/') || '{suffix}/'"
                    if col in unique:
                        return f"{col} || '{suffix}'"
                    if col == "id" or col in ("parent_id", "comment_id"):
                        return f"{col} + {offset}"
                    if col == "post_id" and new_post is not None:
                        return str(new_post)
                    return col

                cur = con.execute(
                    f"INSERT INTO posts ({', '.join(post_cols)}) SELECT "
                    f"{', '.join(expr(c, 0, None) for c in post_cols)} FROM posts WHERE id = ?",
                    (post_id,))
                new_post = int(cur.lastrowid or 0)
                offset = stride * n
                con.execute(
                    f"INSERT INTO comments ({', '.join(comment_cols)}) SELECT "
                    f"{', '.join(expr(c, offset, new_post) for c in comment_cols)} "
                    "FROM comments WHERE post_id = ?", (post_id,))
                con.execute(
                    f"INSERT INTO reactions ({', '.join(reaction_cols)}) SELECT "
                    f"{', '.join(expr(c, offset, new_post) for c in reaction_cols)} "
                    "FROM reactions WHERE post_id = ?", (post_id,))
                permalinks.append((new_post, con.execute(
                    "SELECT permalink FROM posts WHERE id = ?", (new_post,)).fetchone()[0]))
    finally:
        con.close()
    return permalinks
