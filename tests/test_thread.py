"""The pure thread builder: nesting, depth capping, placeholders, reactions, JSON shape, and
the assembly from per-comment fragments that must give the same JSON."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from fedcomments.model import Attachment, Comment, CommentStatus, Origin, RemoteActor, Visibility
from fedcomments.services.thread import Owner, count_visible, entry_of, safe_url, thread_tree
from fedcomments.services.thread_json import (
    Authors,
    Reactions,
    assemble,
    fragment,
    group_reactions,
    thread_json,
)
from fedcomments.store.comments import ReactionRow
from fedcomments.store.threads import ThreadEntry, ThreadPost

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OWNER = Owner("The Blog", "@blog@example.org", "https://example.org/users/blog", None)
POST = ThreadPost(1, "https://blog.example/a/", "https://example.org/posts/a", "A \"quoted\" title",
                  "", "2024-05-01T11:00:00.000000Z", False, 3)


def actor(name: str = "Alice", **extra: object) -> RemoteActor:
    fields: dict[str, object] = dict(
        id=1, ap_id=f"https://social.example/users/{name.lower()}", domain="social.example",
        type="Person", username=name.lower(), name=name, summary=None,
        url=f"https://social.example/@{name.lower()}", icon="https://social.example/a.png",
        inbox=None, shared_inbox=None, followers_url=None, fetched_at=T0)
    fields.update(extra)
    return RemoteActor(**fields)  # type: ignore[arg-type]


def comment(cid: int, parent: int | None = None, *, status: CommentStatus = CommentStatus.APPROVED,
            origin: Origin = Origin.LOCAL, name: str = "", **extra: object) -> ThreadEntry:
    fields: dict[str, object] = dict(
        id=cid, post_id=1, parent_id=parent, ap_id=None, origin=origin,
        visibility=Visibility.PUBLIC, status=status, content=f"<p>c{cid}</p>",
        published_at=T0 + timedelta(minutes=cid), created_at=T0 + timedelta(minutes=cid),
        author_name=name or f"Reader {cid}")
    fields.update(extra)
    return entry_of(Comment(**fields))  # type: ignore[arg-type]


def shape(nodes: list[dict[str, Any]]) -> list[tuple[int, int, object]]:
    """(id, depth, reply_to id) in display order."""
    out: list[tuple[int, int, object]] = []
    for n in nodes:
        out.append((n["id"], n["depth"], n["reply_to"]["id"] if n["reply_to"] else None))
        out.extend(shape(n["replies"]))
    return out


def test_nesting_follows_parents_in_time_order() -> None:
    """Given replies to replies, when built, each sits under its parent, oldest first."""
    roots = thread_tree([comment(1), comment(2), comment(3, 1), comment(4, 3), comment(5, 1)], [])
    assert [n["id"] for n in roots] == [1, 2]
    assert [n["id"] for n in roots[0]["replies"]] == [3, 5]
    assert [n["id"] for n in roots[0]["replies"][0]["replies"]] == [4]
    assert shape(roots) == [(1, 0, None), (3, 1, None), (4, 2, None), (5, 1, None), (2, 0, None)]


def test_deep_replies_are_flattened_with_in_reply_to() -> None:
    """Given a chain deeper than max_depth, when built, deeper replies stay at the cap, each
    naming the author it answers, and a later sibling branch keeps its place."""
    chain = [comment(1)] + [comment(i, i - 1) for i in range(2, 7)] + [comment(7, 2)]
    roots = thread_tree(chain, [], max_depth=2)
    assert shape(roots) == [(1, 0, None), (2, 1, None), (3, 2, None), (4, 2, 3), (5, 2, 4),
                            (6, 2, 5), (7, 2, None)]
    flat = roots[0]["replies"][0]["replies"]
    assert flat[1]["reply_to"] == {"id": 3, "name": "Reader 3"}
    assert max(d for _, d, _ in shape(roots)) == 2


def test_deleted_placeholders_stay_only_above_visible_replies() -> None:
    """Given deleted comments with and without surviving replies, only those holding up a
    visible reply remain, shown as placeholders, and they are not counted."""
    deleted = CommentStatus.DELETED
    comments = [comment(1, status=deleted), comment(2, 1), comment(3, status=deleted),
                comment(4, status=deleted), comment(5, 4, status=deleted), comment(6)]
    roots = thread_tree(comments, [])
    assert shape(roots) == [(1, 0, None), (2, 1, None), (6, 0, None)]
    assert count_visible(roots) == 2
    data = roots[0]
    assert data["deleted"] is True and "author" not in data and "content" not in data
    assert data["replies"][0]["content"] == "<p>c2</p>"


def test_reply_to_hidden_parent_moves_to_top() -> None:
    """Given a reply whose parent is not in the public rows (pending or private), it is shown
    at the top level rather than lost."""
    roots = thread_tree([comment(1), comment(3, 2)], [])
    assert shape(roots) == [(1, 0, None), (3, 0, None)]


def test_long_chain_builds_without_recursion_limits() -> None:
    """Given a 5,000-deep reply chain, the tree builds and every comment appears once."""
    chain = [comment(1)] + [comment(i, i - 1) for i in range(2, 5001)]
    roots = thread_tree(chain, [], max_depth=4)
    assert count_visible(roots) == 5000
    assert [d for _, d, _ in shape(roots)][:6] == [0, 1, 2, 3, 4, 4]


def test_reactions_are_counted_per_comment_with_a_facepile() -> None:
    """Given likes and boosts on comments and on the post, counts attach to the right
    comment and the facepile lists each person once, at most eight."""
    rows = [ReactionRow(1, "like", f"https://s.example/u/{i}", f"U{i}", None,
                        f"https://s.example/@{i}") for i in range(10)]
    rows += [ReactionRow(1, "announce", "https://s.example/u/0", "U0", None, None),
             ReactionRow(None, "like", "https://s.example/u/x", "X", None, None),
             ReactionRow(2, "announce", "https://s.example/u/y", None,
                         "javascript:alert(1)", "javascript:alert(1)")]
    roots = thread_tree([comment(1), comment(2)], rows)
    first, second = roots[0]["reactions"], roots[1]["reactions"]
    assert (first["likes"], first["boosts"]) == (10, 1)
    assert [p["name"] for p in first["people"]] == [f"U{i}" for i in range(8)]
    assert first["people"][1] == {"name": "U1", "avatar": None, "url": "https://s.example/@1",
                                  "avatar_2x": None}
    assert (second["likes"], second["boosts"]) == (0, 1)
    # A hostile icon or profile URL never becomes a link; the name falls back to the host.
    assert second["people"] == [{"name": "s.example", "avatar": None,
                                 "url": "https://s.example/u/y", "avatar_2x": None}]


def test_json_shapes_for_each_kind_of_author() -> None:
    """Given a fediverse reply, an owner answer and a reader comment, the JSON names each
    author as shown publicly, and only http(s) URLs survive."""
    hostile = actor("Mallory", id=2, url="javascript:alert(1)",
                    icon="data:image/png;base64,AAAA")
    remote = comment(1, origin=Origin.REMOTE, actor=actor(), ap_id="https://social.example/n/1",
                     url="https://social.example/@alice/1", summary="spoilers",
                     attachments=(Attachment("https://social.example/f.png", "image/png", None),
                                  Attachment("javascript:x", None, "bad")),
                     updated_at=T0 + timedelta(hours=1))
    owner = comment(2, 1, origin=Origin.OWNER, ap_id="https://example.org/comments/2")
    reader = comment(3, 2, author_website="javascript:alert(1)", name="Bob")
    bad = comment(4, origin=Origin.REMOTE, actor=hostile, url="javascript:alert(2)",
                  ap_id="https://social.example/n/4")
    roots = thread_tree([remote, owner, reader, bad], [], owner=OWNER)
    r = roots[0]
    assert r["author"] == {"kind": "fediverse", "name": "Alice", "handle": "@alice@social.example",
                           "url": "https://social.example/@alice",
                           "avatar": "https://social.example/a.png", "website": None,
                           "avatar_2x": None, "emojis": []}
    assert (r["url"], r["summary"], r["sensitive"], r["edited"]) == (
        "https://social.example/@alice/1", "spoilers", True, True)
    assert r["attachments"] == [{"url": "https://social.example/f.png", "media_type": "image/png",
                                 "name": None, "thumbnail": None}]
    o = r["replies"][0]
    assert o["author"]["kind"] == "owner" and o["author"]["name"] == "The Blog"
    assert o["author"]["handle"] == "@blog@example.org"
    b = o["replies"][0]
    assert b["author"] == {"kind": "reader", "name": "Bob", "handle": None, "url": None,
                           "avatar": None, "website": None, "avatar_2x": None, "emojis": []}
    assert b["url"] is None and "email" not in str(b)
    m = roots[1]
    assert m["author"]["url"] == "https://social.example/users/mallory"
    assert m["author"]["avatar"] is None
    assert m["url"] == "https://social.example/n/4"


def test_safe_url() -> None:
    """Only absolute http(s) URLs pass."""
    assert safe_url("https://a.example/x") == "https://a.example/x"
    assert safe_url("HTTP://a.example/") == "HTTP://a.example/"
    for bad in ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "/relative",
                "//a.example/x", "https://", "", None, "https://a.example/" + "x" * 3000,
                'https://a.example/"onclick="x', "https://a.example/<b>", "https://u:p@a.example/",
                "https://a.example/x y"):
        assert safe_url(bad) is None, bad


def test_images_are_https_unless_local_development() -> None:
    """Given http and https avatars, only https ones are kept (the page policy allows no
    other), unless the instance runs for local development with private addresses."""
    prod = Owner("B", "@b@example.org", "https://example.org/", None)
    dev = Owner("B", "@b@example.org", "https://example.org/", None, http_images=True)
    assert prod.image("https://a.example/x.png") == "https://a.example/x.png"
    assert prod.image("http://a.example/x.png") is None
    assert dev.image("http://a.example/x.png") == "http://a.example/x.png"
    assert dev.image("javascript:alert(1)") is None and dev.image(None) is None


def assembled(entries: list[ThreadEntry], reactions: list[ReactionRow], max_depth: int,
              owner: Owner = OWNER) -> dict[str, Any]:
    """The thread as the API assembles it: each comment's fragment rendered on its own
    (as stored), then joined as bytes."""
    authors = Authors(owner)
    grouped = group_reactions(reactions)
    rows = [(e.id, e.parent_id, int(e.status == "deleted"), fragment(e, grouped.get(e.id), authors))
            for e in entries]
    post_level = Reactions()
    for r in reactions:
        if r.comment_id is None:
            post_level.add(r)
    return orjson.loads(assemble(POST, rows, post_level, owner, max_depth))


def random_thread(seed: int, n: int) -> tuple[list[ThreadEntry], list[ReactionRow]]:
    """Nested comments of every kind: deleted ones (some above replies, some not), replies
    to comments that are not shown, owner answers, fediverse authors, long chains."""
    rnd = random.Random(seed)
    entries: list[ThreadEntry] = []
    for i in range(1, n + 1):
        parent = None
        if i > 1 and rnd.random() < 0.7:
            parent = rnd.randrange(1, i) if rnd.random() < 0.5 else i - 1
        if rnd.random() < 0.05:
            parent = n + 100  # a parent that is not public (pending, private)
        status = CommentStatus.DELETED if rnd.random() < 0.2 else CommentStatus.APPROVED
        kind = rnd.choice([Origin.LOCAL, Origin.REMOTE, Origin.OWNER])
        extra: dict[str, object] = {}
        if kind is Origin.REMOTE:
            # Names that look like the JSON around them must stay names.
            name = ["Zoë \\\"Z\\\"", 'A","handle":"x', "A1", "\\"][i % 4]
            extra = {"actor": actor(name, id=i % 4 + 1),
                     "ap_id": f"https://social.example/n/{i}", "summary": rnd.choice([None, "cw"])}
        elif kind is Origin.LOCAL:
            extra = {"author_name": ['R "1"', "R\\", "Ré\n", "R"][i % 4]}
        entries.append(comment(i, parent, status=status, origin=kind, **extra))
    entries.sort(key=lambda e: (rnd.random() < 0.1, e.id))  # a few out of time order
    reactions = [ReactionRow(rnd.choice([None, *range(1, n + 1)]), rnd.choice(["like", "announce"]),
                             f"https://s.example/u/{rnd.randrange(12)}", rnd.choice(["U", None]),
                             "https://s.example/a.png", None) for _ in range(n)]
    return entries, reactions


def test_assembled_fragments_equal_the_reference_tree() -> None:
    """Given many random threads (nesting past max_depth, deleted placeholders with and
    without visible replies, orphans, reactions), the thread assembled from per-comment
    fragments parses to exactly the JSON the reference builder gives."""
    for seed in range(60):
        entries, reactions = random_thread(seed, 1 + seed * 3)
        for max_depth in (0, 1, 4):
            expected = thread_json(POST, entries, reactions, OWNER, max_depth)
            assert assembled(entries, reactions, max_depth) == expected, (seed, max_depth)


def test_assembly_handles_a_long_chain_and_an_empty_thread() -> None:
    """Given a 5,000-deep reply chain and a thread with no comments, assembly equals the
    reference (no recursion limit) and counts the comments shown."""
    chain = [comment(1)] + [comment(i, i - 1) for i in range(2, 5001)]
    data = assembled(chain, [], 4)
    assert data == thread_json(POST, chain, [], OWNER, 4) and data["count"] == 5000
    assert assembled([], [], 4) == {"post": thread_json(POST, [], [], OWNER, 4)["post"],
                                    "count": 0, "reactions": {"likes": 0, "boosts": 0,
                                                              "people": []}, "comments": []}
