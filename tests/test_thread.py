"""The pure thread builder: nesting, depth capping, placeholders, reactions, JSON shape."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fedcomments.model import Attachment, Comment, CommentStatus, Origin, RemoteActor, Visibility
from fedcomments.services.thread import Owner, count_visible, entry_of, safe_url, thread_tree
from fedcomments.store.comments import ReactionRow
from fedcomments.store.threads import ThreadEntry

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
OWNER = Owner("The Blog", "@blog@example.org", "https://example.org/users/blog", None)


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
    assert first["people"][1] == {"name": "U1", "avatar": None, "url": "https://s.example/@1"}
    assert (second["likes"], second["boosts"]) == (0, 1)
    # A hostile icon or profile URL never becomes a link; the name falls back to the host.
    assert second["people"] == [{"name": "s.example", "avatar": None,
                                 "url": "https://s.example/u/y"}]


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
                           "avatar": "https://social.example/a.png", "website": None}
    assert (r["url"], r["summary"], r["sensitive"], r["edited"]) == (
        "https://social.example/@alice/1", "spoilers", True, True)
    assert r["attachments"] == [{"url": "https://social.example/f.png", "media_type": "image/png",
                                 "name": None}]
    o = r["replies"][0]
    assert o["author"]["kind"] == "owner" and o["author"]["name"] == "The Blog"
    assert o["author"]["handle"] == "@blog@example.org"
    b = o["replies"][0]
    assert b["author"] == {"kind": "reader", "name": "Bob", "handle": None, "url": None,
                           "avatar": None, "website": None}
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
