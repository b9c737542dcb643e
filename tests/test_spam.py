"""The spam check against an Akismet-compatible service played by a real server on
loopback: reader comments are checked before they are shown, spam is held with its
verdict for the admin, the owner's decisions are reported back, a broken or slow service
never loses a comment nor holds the writer, fediverse replies are checked through the
queue when asked, and nothing is sent unless a key is configured."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from fedcomments.services import moderation
from tests.conftest import Instance, InstanceFactory
from tests.helpers.admin import count
from tests.helpers.fediverse import FakeInstance
from tests.helpers.notify import FakeAkismet
from tests.helpers.peers import until, until_true
from tests.helpers.posts import add_post_via_service
from tests.helpers.reader import post_local, remote_reply, thread

KEY = "akismet-test-key"


@pytest.fixture
async def akismet() -> AsyncIterator[FakeAkismet]:
    service = await FakeAkismet().start()
    yield service
    await service.close()


async def blog(make_instance: InstanceFactory, akismet: FakeAkismet, policy: str = "none",
               **spam: Any) -> tuple[Instance, int]:
    fc: Instance = await make_instance(moderation={"policy": policy}, spam={
        "akismet_key": KEY, "akismet_url": akismet.url, **spam})
    post = await add_post_via_service(fc.rt, permalink="https://blog.example/spammy/")
    return fc, post.id


async def posted(fc: Instance, post_id: int, **fields: Any) -> dict[str, Any]:
    resp = await post_local(fc, post_id, **fields)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def status_of(fc: Instance, comment_id: int) -> str:
    row = await fc.rt.db.read.fetchone("SELECT status FROM comments WHERE id = ?",
                                       (comment_id,))
    assert row is not None
    return str(row[0])


async def shown(fc: Instance, comment_id: int) -> dict[str, Any]:
    return moderation.comment_detail_json(await moderation.get_comment(fc.rt, comment_id))


async def test_reader_comments_are_checked_and_spam_is_held(
        make_instance: InstanceFactory, akismet: FakeAkismet) -> None:
    """Given a spam service, a reader comment is sent to it (Akismet's fields, key and
    blog); a spam verdict holds the comment with the verdict shown to the admin, while a
    ham one is published at once under policy "none"."""
    fc, post_id = await blog(make_instance, akismet)
    spam = await posted(fc, post_id, name="Bot", email="bot@example.org",
                        website="https://pills.example", text="Cheap spam pills here",
                        headers={"User-Agent": "SpamBot/1.0"})
    assert spam["pending"] is True
    assert "the spam service flagged it" in spam["held_because"]
    [check] = akismet.named("comment-check")
    assert check["api_key"] == KEY
    assert check["blog"] == "https://blog.example/"
    assert check["comment_content"] == "Cheap spam pills here"
    assert (check["comment_author"], check["comment_author_email"],
            check["comment_author_url"]) == ("Bot", "bot@example.org", "https://pills.example")
    assert (check["user_ip"], check["user_agent"]) == ("127.0.0.1", "SpamBot/1.0")
    assert check["permalink"] == "https://blog.example/spammy/"
    assert check["comment_type"] == "comment"
    detail = await shown(fc, spam["comment"]["id"])
    assert (detail["status"], detail["spam"]) == ("pending", "spam")
    listed = {c["id"]: c for c in map(moderation.comment_json,
                                      await moderation.list_comments(fc.rt))}
    assert listed[spam["comment"]["id"]]["spam"] == "spam"

    ham = await posted(fc, post_id, name="Ada", text="A kind and thoughtful remark.", wait=61)
    assert ham["pending"] is False
    assert (await shown(fc, ham["comment"]["id"]))["spam"] == "ham"
    public = [c["id"] for c in (await thread(fc, id=str(post_id)))["comments"]]
    assert public == [ham["comment"]["id"]]


async def test_an_edit_is_checked_like_a_new_comment(
        make_instance: InstanceFactory, akismet: FakeAkismet) -> None:
    """Given a spam service and a reader comment it judged ham (published at once), when
    its author edits it into spam within the edit window, then the new text is checked
    too: the comment goes back to moderation with the verdict shown, out of the thread."""
    fc, post_id = await blog(make_instance, akismet)
    ham = await posted(fc, post_id, name="Ada", email="ada@example.org",
                       text="A kind remark.")
    assert ham["pending"] is False
    url = f"{fc.url}/api/v1/comments/{ham['comment']['id']}"
    edited = await fc.session.patch(url, json={"text": "Cheap spam pills here"}, headers={
        "X-Comment-Secret": ham["secret"], "Origin": fc.url, "User-Agent": "Edit/1.0"})
    assert edited.status == 200, await edited.text()
    checks = akismet.named("comment-check")
    assert [c["comment_content"] for c in checks] == ["A kind remark.",
                                                      "Cheap spam pills here"]
    assert (checks[1]["comment_author_email"], checks[1]["user_agent"]) == (
        "ada@example.org", "Edit/1.0")
    assert await status_of(fc, ham["comment"]["id"]) == "pending"
    assert (await shown(fc, ham["comment"]["id"]))["spam"] == "spam"
    assert (await thread(fc, id=str(post_id)))["comments"] == []


async def test_approving_reports_ham_and_rejecting_reports_spam(
        make_instance: InstanceFactory, akismet: FakeAkismet) -> None:
    """Given comments the service judged, approving a held one sends submit-ham and
    rejecting one sends submit-spam (through the delivery queue), each once, with the
    fields of the check."""
    fc, post_id = await blog(make_instance, akismet, policy="all")
    false_positive = await posted(fc, post_id, name="Ada", text="I love spam musubi")
    missed = await posted(fc, post_id, name="Bot", text="Visit my shop", wait=61)
    await moderation.approve_comments(fc.rt, [false_positive["comment"]["id"]])
    await moderation.reject_comments(fc.rt, [missed["comment"]["id"]])
    await until(lambda: len(akismet.named("submit-ham")) + len(akismet.named("submit-spam"))
                == 2, 10)
    [ham] = akismet.named("submit-ham")
    [spam] = akismet.named("submit-spam")
    assert (ham["comment_content"], ham["api_key"]) == ("I love spam musubi", KEY)
    assert (spam["comment_content"], spam["user_ip"]) == ("Visit my shop", "127.0.0.1")
    # Deciding again reports nothing more.
    await moderation.reject_comments(fc.rt, [false_positive["comment"]["id"]])
    assert await count(fc, "SELECT COUNT(*) FROM deliveries WHERE kind = 'spam'") == 2
    assert await count(fc, "SELECT COUNT(*) FROM spam_checks WHERE params != '{}'") == 0


async def test_a_slow_service_holds_no_transaction_and_a_broken_one_loses_nothing(
        make_instance: InstanceFactory, akismet: FakeAkismet, remote: FakeInstance) -> None:
    """Given a service that has not answered yet, the inbox still stores a fediverse reply
    (no transaction is held while we wait); given one that never answers in time or
    answers 500, the comment is stored as the moderation policy says, marked unknown."""
    fc, post_id = await blog(make_instance, akismet, timeout=30)
    akismet.hold = asyncio.Event()
    task = asyncio.create_task(posted(fc, post_id, name="Ada", text="Waiting on spam check"))
    await until(lambda: len(akismet.named("comment-check")) == 1, 10)
    post_ap_id = (await thread(fc, id=str(post_id)))["post"]["ap_id"]
    await remote_reply(fc, remote.actor("alice"), post_ap_id, content="<p>Meanwhile.</p>")
    assert not task.done()
    akismet.hold.set()
    held = await task
    assert held["pending"] is True  # "spam" is in its text

    slow, slow_post = await blog(make_instance, akismet, timeout=0.2)
    akismet.hold = asyncio.Event()
    timed_out = await posted(slow, slow_post, name="Bea", text="Nobody answers")
    assert timed_out["pending"] is False
    assert (await shown(slow, timed_out["comment"]["id"]))["spam"] == "unknown"
    akismet.hold.set()

    akismet.status = 500
    broken = await posted(slow, slow_post, name="Cy", text="The service is down", wait=61)
    assert broken["pending"] is False
    assert (await shown(slow, broken["comment"]["id"]))["spam"] == "unknown"


async def test_fediverse_replies_are_checked_through_the_queue(
        make_instance: InstanceFactory, akismet: FakeAkismet, remote: FakeInstance) -> None:
    """Given [spam] check_fediverse, a fediverse reply is acknowledged at once and held
    until the queue has asked the service: spam stays held, ham is published."""
    fc, post_id = await blog(make_instance, akismet, check_fediverse=True)
    post_ap_id = (await thread(fc, id=str(post_id)))["post"]["ap_id"]
    alice = remote.actor("alice")
    spam_id = await remote_reply(fc, alice, post_ap_id, content="<p>Buy spam now</p>")
    ham_id = await remote_reply(fc, alice, post_ap_id, content="<p>Lovely post</p>")

    async def settled() -> bool:
        return await count(fc, "SELECT COUNT(*) FROM spam_checks WHERE verdict != 'queued'"
                           ) == 2

    await until_true(settled, 10)
    assert (await status_of(fc, spam_id), await status_of(fc, ham_id)) == ("pending",
                                                                           "approved")
    checks = akismet.named("comment-check")
    assert [c["comment_content"] for c in checks] == ["Buy spam now", "Lovely post"]
    assert all(c["comment_type"] == "reply" and c["comment_author_url"] for c in checks)
    assert (await shown(fc, spam_id))["spam"] == "spam"


async def test_no_request_leaves_without_a_key(make_instance: InstanceFactory,
                                               akismet: FakeAkismet,
                                               remote: FakeInstance) -> None:
    """Given a spam URL but no key (the default), nothing is ever sent to the service."""
    fc: Instance = await make_instance(moderation={"policy": "none"}, spam={
        "akismet_url": akismet.url, "check_fediverse": True})
    post = await add_post_via_service(fc.rt)
    resp = await post_local(fc, post.id, name="Ada", text="spam or not, nobody asks")
    assert resp.status == 201
    comment_id = await remote_reply(fc, remote.actor("alice"), post.ap_id)
    assert await status_of(fc, comment_id) == "approved"
    assert akismet.calls == []
    assert await count(fc, "SELECT COUNT(*) FROM spam_checks") == 0
