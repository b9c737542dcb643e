"""Moderation from the CLI and the admin API: list, show, approve, reject, delete comments;
followers and reports. A live instance with real peers; the CLI runs beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedcomments.model import CommentStatus
from fedcomments.store import actors as actor_store
from fedcomments.store import comments as comment_store
from tests.conftest import Instance
from tests.helpers.admin import reply, run_cli, send, start_peer, wait_until, write_config
from tests.helpers.fediverse import FakeInstance, activity, deliver, note
from tests.helpers.posts import add_post_via_api


async def _id_of(fc: Instance, ap_id: str) -> int:
    comment = await comment_store.by_ap_id(fc.rt.db.read, ap_id)
    assert comment is not None
    return comment.id


async def test_cli_moderation_of_pending_private_and_threaded_comments(
        make_instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Given pending, private and threaded comments under the first-time policy, when the
    admin lists, approves with --trust-author, rejects and deletes them through the CLI,
    then each listing and public count follows, a trusted author skips the queue even
    with no approved comment left, and a deleted parent stays as a tombstone."""
    fc: Instance = await make_instance()
    config = write_config(fc, tmp_path)
    peer, other = await start_peer("localhost"), await FakeInstance().start()
    try:
        alice, bob, carol = peer.actor("alice"), other.actor("bob"), other.actor("carol")
        post = await add_post_via_api(fc, "hello")
        _, a1 = await reply(fc, alice, post["ap_id"], "<p>First line<br>second line</p>")
        _, b1 = await reply(fc, bob, a1["id"], "<p>Bob answers</p>")
        private = note(carol, post["ap_id"], content="<p>Just for you</p>",
                       visibility="followers")
        assert await send(fc, carol, "Create", private) == 202
        a1_id, b1_id, c1_id = [await _id_of(fc, n["id"]) for n in (a1, b1, private)]
        db = fc.rt.db.read

        run = await run_cli("comments", "list", "--status", "pending", "--json",
                            "--config", config)
        listed = run.json()["comments"]
        assert [c["id"] for c in listed] == [b1_id, a1_id]
        first = listed[1]
        assert {k: first[k] for k in ("status", "visibility", "origin", "parent_id", "text")} == {
            "status": "pending", "visibility": "public", "origin": "remote", "parent_id": None,
            "text": "First line second line"}
        assert first["author"]["handle"] == "@alice@localhost"
        assert first["post"] == {"id": post["id"], "slug": "hello"}
        run = await run_cli("comments", "list", "--status", "private", "--json",
                            "--config", config)
        assert [(c["id"], c["visibility"]) for c in run.json()["comments"]] == [
            (c1_id, "followers")]
        run = await run_cli("comments", "list", "--config", config)
        header, *rows = run.out.splitlines()
        assert header.split() == ["ID", "POST", "AUTHOR", "HANDLE", "STATUS", "TIME", "TEXT"]
        assert len(rows) == 3
        assert rows[-1].split()[:5] == [str(a1_id), "hello", "Alice", "@alice@localhost",
                                        "pending"]
        assert rows[-1].endswith("First line second line")
        assert "pending (followers)" in rows[0]
        assert header.index("STATUS") == rows[0].index("pending")

        run = await run_cli("comments", "approve", str(a1_id), "--trust-author", "--json",
                            "--config", config)
        assert run.json() == {"comments": [{"id": a1_id, "status": "approved", "changed": True,
                                            "author_trusted": True}]}
        assert await comment_store.count_public(db, post["id"]) == 1
        run = await run_cli("comments", "reject", str(a1_id), "--config", config)
        assert (run.code, run.out) == (0, f"rejected comment {a1_id}\n")
        assert await comment_store.count_public(db, post["id"]) == 0
        run = await run_cli("comments", "list", "--status", "rejected", "--json",
                            "--config", config)
        assert [c["id"] for c in run.json()["comments"]] == [a1_id]
        # Trusted from now on: no approved comment is left, yet the next one is approved.
        _, a2 = await reply(fc, alice, post["ap_id"], "<p>Trusted now</p>")
        a2_comment = await comment_store.by_ap_id(db, a2["id"])
        assert a2_comment is not None and a2_comment.status is CommentStatus.APPROVED

        run = await run_cli("comments", "delete", str(a1_id), str(b1_id), "--config", config)
        assert (run.code, run.out) == (2, "")
        assert run.err == ("fedcomments: delete 2 comments — refusing without --yes "
                           "(no terminal to ask)\n")
        assert await comment_store.by_id(db, a1_id) is not None
        run = await run_cli("comments", "delete", str(a1_id), "--config", config)
        assert run.out == f"deleted comment {a1_id} (a tombstone keeps its replies threaded)\n"
        tomb = await comment_store.by_id(db, a1_id)
        assert tomb is not None and (tomb.status, tomb.content) == (CommentStatus.DELETED, "")
        run = await run_cli("comments", "delete", str(b1_id), str(a1_id), "--yes", "--json",
                            "--config", config)
        assert run.json() == {"comments": [
            {"id": b1_id, "status": "removed", "changed": True, "author_trusted": False},
            {"id": a1_id, "status": "removed", "changed": False, "author_trusted": False}]}
        # The tombstone went with its last reply.
        assert await comment_store.by_id(db, a1_id) is None
        assert await comment_store.is_tombstoned(db, a1["id"])
    finally:
        await peer.close()
        await other.close()


async def test_cli_show_followers_and_reports(make_instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Given a follower who commented and reported a reply, `comments show`,
    `followers list` and `reports list` show them, as JSON and as aligned text."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    peer = await start_peer("localhost")
    try:
        alice, bob = peer.actor("alice"), peer.actor("bob")
        post = await add_post_via_api(fc, "hello")
        assert await send(fc, alice, "Follow", fc.rt.urls.actor) == 202
        _, a1 = await reply(fc, alice, post["ap_id"], "<p>Hello <b>there</b></p>")
        _, b1 = await reply(fc, bob, a1["id"], "<p>Hi</p>")
        flag = activity(alice, "Flag", [b1["id"]], content="<p>Rude reply</p>")
        resp = await deliver(fc.session, alice, f"{fc.url}/inbox", flag)
        assert resp.status == 202
        a1_id = await _id_of(fc, a1["id"])

        run = await run_cli("comments", "show", str(a1_id), "--json", "--config", config)
        shown = run.json()
        assert {k: shown[k] for k in ("id", "status", "text", "replies", "reactions",
                                      "in_reply_to", "deleted")} == {
            "id": a1_id, "status": "approved", "text": "Hello there", "replies": 1,
            "reactions": {}, "in_reply_to": post["ap_id"], "deleted": None}
        run = await run_cli("comments", "show", str(a1_id), "--config", config)
        assert "    handle: @alice@localhost" in run.out.splitlines()
        assert run.out.endswith("\nHello there\n")

        run = await run_cli("followers", "list", "--json", "--config", config)
        [follower] = run.json()["followers"]
        assert {k: follower[k] for k in ("actor", "handle", "inbox")} == {
            "actor": alice.id, "handle": "@alice@localhost", "inbox": f"{peer.url}/inbox"}
        run = await run_cli("followers", "list", "--config", config)
        assert run.out.splitlines()[0].split() == ["HANDLE", "NAME", "SINCE", "INBOX"]
        assert run.out.splitlines()[1].startswith("@alice@localhost  Alice")

        run = await run_cli("reports", "list", "--json", "--config", config)
        [report] = run.json()["reports"]
        assert {k: report[k] for k in ("ap_id", "actor", "handle", "content", "objects")} == {
            "ap_id": flag["id"], "actor": alice.id, "handle": "@alice@localhost",
            "content": "Rude reply", "objects": [b1["id"]]}
        run = await run_cli("reports", "list", "--config", config)
        assert run.out.splitlines()[1].split()[3:] == ["@alice@localhost", "1", "Rude", "reply"]
    finally:
        await peer.close()


async def _json(resp: Any) -> Any:
    return resp.status, await resp.json()


async def test_admin_api_moderation_calls_the_same_services(make_instance) -> None:  # type: ignore[no-untyped-def]
    """Given pending comments, the admin API lists, shows, approves (trusting the author),
    rejects and deletes them, lists followers and reports, and refuses bad input with
    400/404 and a missing token with 401."""
    fc: Instance = await make_instance()
    peer = await start_peer("localhost")
    try:
        alice = peer.actor("alice")
        post = await add_post_via_api(fc, "hello")
        assert await send(fc, alice, "Follow", fc.rt.urls.actor) == 202
        _, a1 = await reply(fc, alice, post["ap_id"])
        a1_id = await _id_of(fc, a1["id"])
        base = "/api/v1/admin"

        status, data = await _json(await fc.admin("GET", f"{base}/comments?status=pending"))
        assert (status, [c["id"] for c in data["comments"]]) == (200, [a1_id])
        status, data = await _json(await fc.admin("GET", f"{base}/comments/{a1_id}"))
        assert (status, data["status"], data["replies"]) == (200, "pending", 0)
        status, data = await _json(await fc.admin("POST", f"{base}/comments/{a1_id}/approve",
                                                  json={"trust_author": True}))
        assert (status, data) == (200, {"id": a1_id, "status": "approved", "changed": True,
                                        "author_trusted": True})
        actor = await actor_store.by_ap_id(fc.rt.db.read, alice.id)
        assert actor is not None and actor.trusted
        status, data = await _json(await fc.admin("POST", f"{base}/comments/{a1_id}/reject"))
        assert (status, data["status"]) == (200, "rejected")
        status, data = await _json(await fc.admin("DELETE", f"{base}/comments/{a1_id}"))
        assert (status, data["status"]) == (200, "removed")
        status, data = await _json(await fc.admin("GET", f"{base}/comments/{a1_id}"))
        assert (status, data) == (404, {"error": f"comment: no comment {a1_id}"})
        status, data = await _json(await fc.admin("POST", f"{base}/comments/{a1_id}/reply",
                                                  json={"text": "Thanks"}))
        assert (status, data) == (404, {"error": f"comment: no comment {a1_id}"})

        status, data = await _json(await fc.admin("GET", f"{base}/followers"))
        assert (status, [f["actor"] for f in data["followers"]]) == (200, [alice.id])
        status, data = await _json(await fc.admin("GET", f"{base}/reports"))
        assert (status, data) == (200, {"reports": [], "next_cursor": None})

        status, data = await _json(await fc.admin("GET", f"{base}/comments?status=spam"))
        assert (status, data["field"]) == (400, "status")
        status, data = await _json(await fc.admin("GET", f"{base}/comments/abc"))
        assert (status, data["field"]) == (400, "id")
        status, data = await _json(await fc.admin("POST", f"{base}/comments/{a1_id}/approve",
                                                  json={"trust": 1}))
        assert (status, data["field"]) == (400, "trust_author")
        resp = await fc.session.get(f"{fc.url}{base}/comments")
        assert resp.status == 401
    finally:
        await peer.close()


async def test_cli_reply_reaches_the_author_and_deleting_it_withdraws_it(
        make_instance, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Given alice's comment, `comments reply` answers it as the blog and her server
    receives the Create; `comments delete` of the answer sends her server a Delete."""
    fc: Instance = await make_instance(moderation={"policy": "none"})
    config = write_config(fc, tmp_path)
    peer = await start_peer("localhost")
    try:
        alice = peer.actor("alice")
        post = await add_post_via_api(fc, "hello")
        _, a1 = await reply(fc, alice, post["ap_id"])
        a1_id = await _id_of(fc, a1["id"])

        run = await run_cli("comments", "reply", str(a1_id), "--text", "Thanks, Alice!",
                            "--config", config)
        assert (run.code, run.err) == (0, "")
        answer = await comment_store.by_id(fc.rt.db.read, a1_id + 1)
        assert answer is not None and answer.parent_id == a1_id
        assert run.out == f"replied to comment {a1_id}: comment {answer.id}, {answer.ap_id}\n"

        # The CLI stamps jobs with the real time; let the server's fake clock catch up.
        fc.clock.advance(minutes=1)

        def received(kind: str) -> list[dict[str, Any]]:
            return [doc for doc in (r.json() for r in peer.received) if doc["type"] == kind]

        await wait_until(lambda: bool(received("Create")))
        [create] = received("Create")
        assert (create["object"]["id"], create["object"]["inReplyTo"]) == (answer.ap_id,
                                                                          a1["id"])
        run = await run_cli("comments", "delete", str(answer.id), "--config", config)
        assert run.out == f"deleted comment {answer.id}\n"
        fc.clock.advance(minutes=1)
        await wait_until(lambda: bool(received("Delete")))
        [delete] = received("Delete")
        assert delete["object"]["id"] == answer.ap_id
        assert [r.path for r in peer.received] == ["/inbox", "/inbox"]
    finally:
        await peer.close()
