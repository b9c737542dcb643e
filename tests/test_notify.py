"""Word of new comments, end to end: mail through a real SMTP server on loopback (the
owner's for held comments with one-click links, the digest, readers' confirmations and
reply notices with their unsubscribe), signed webhook events, and nothing lost while the
SMTP server or the webhook is down."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fedcomments.services import mail, moderation, notify
from tests.conftest import Instance, InstanceFactory, bound_socket
from tests.helpers.admin import count, run_cli, write_config
from tests.helpers.fediverse import FakeInstance, activity, deliver
from tests.helpers.notify import FakeAkismet, Mailbox, WebhookReceiver, notify_settings
from tests.helpers.peers import until, until_true
from tests.helpers.posts import add_post_via_service
from tests.helpers.reader import post_local, remote_reply, thread
from tests.test_reader_pages import assert_valid_html5

SECRET = "webhook-test-secret"
#: How long finished mail, webhook and spam-service jobs are kept (README, Privacy).
NOTICE_RETENTION_DAYS = 15


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    box = await Mailbox().start()
    yield box
    await box.close()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = await WebhookReceiver().start()
    yield hook
    await hook.close()


async def blog(make_instance: InstanceFactory, policy: str = "first-time",
               **sections: dict[str, Any]) -> tuple[Instance, int]:
    fc: Instance = await make_instance(moderation={"policy": policy}, **sections)
    post = await add_post_via_service(fc.rt, title="Hello, readers")
    return fc, post.id


async def posted(fc: Instance, post_id: int, **fields: Any) -> dict[str, Any]:
    resp = await post_local(fc, post_id, **fields)
    assert resp.status == 201, await resp.text()
    return dict((await resp.json())["comment"])


async def test_held_comment_mails_the_owner_with_commands_and_one_click_links(
        make_instance: InstanceFactory, mailbox: Mailbox) -> None:
    """Given mail to the owner, a held reader comment sends one mail with its text, author,
    post and the exact approve/reject commands; its approve link opens a page that
    changes nothing (a scanner's GET), its button approves once, and the mail's links are
    spent after that; a forged or expired link changes nothing."""
    fc, post_id = await blog(make_instance, notify=notify_settings(mailbox))
    held = await posted(fc, post_id, name="Ada", email="ada@example.org",
                        text="First thoughts on this post.")
    [mail] = await mailbox.wait_for(1)
    assert mail.recipients == ["owner@blog.test"]
    assert mail.sender == "comments@blog.test"
    assert "waiting for approval" in mail.subject and "Hello, readers" in mail.subject
    assert "First thoughts on this post." in mail.text and "Ada" in mail.text
    # The exact commands, with the config file the server runs with ("test" here).
    assert f"fedcomments --config test comments approve {held['id']}" in mail.text
    assert f"fedcomments --config test comments reject {held['id']}" in mail.text
    assert "ada@example.org" not in mail.message.as_string()
    approve, reject = mail.links("moderate")
    assert approve != reject

    # A link scanner (or a preview) follows the link: a page, nothing changed.
    page = await fc.session.get(approve)
    html = await page.text()
    assert page.status == 200 and "Approve comment" in html and "First thoughts" in html
    assert_valid_html5(html)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert await count(fc, "SELECT COUNT(*) FROM comments WHERE status = 'pending'") == 1
    # The owner presses the button.
    done = await fc.session.post(approve, headers={"Origin": fc.url})
    assert done.status == 200 and "approved" in await done.text()
    assert await count(fc, "SELECT COUNT(*) FROM comments WHERE status = 'approved'") == 1
    # Single use: neither this link nor its sibling in the same mail works again.
    assert (await fc.session.post(approve, headers={"Origin": fc.url})).status == 404
    assert (await fc.session.post(reject, headers={"Origin": fc.url})).status == 404
    assert (await fc.session.get(reject)).status == 404
    assert await count(fc, "SELECT COUNT(*) FROM comments WHERE status = 'approved'") == 1

    # A forged link, and a genuine one after a week, change nothing.
    second = await posted(fc, post_id, name="Bea", email="bea@example.org",
                          text="Another first comment.", wait=61)
    mails = await mailbox.wait_for(2)
    approve2, _ = mails[1].links("moderate")
    forged = approve2.replace(f"/{second['id']}.approve.", f"/{held['id']}.reject.")
    assert (await fc.session.post(forged, headers={"Origin": fc.url})).status == 404
    fc.clock.advance(days=8)
    expired = await fc.session.post(approve2, headers={"Origin": fc.url})
    assert expired.status == 404 and "expired" in await expired.text()
    assert await count(fc, "SELECT COUNT(*) FROM comments WHERE status = 'pending'") == 1


async def test_published_comments_are_mailed_one_by_one_without_a_digest(
        make_instance: InstanceFactory, mailbox: Mailbox) -> None:
    """Given no digest, each published comment sends the owner one mail with the commands
    to hide or answer it; the owner's own answers send none."""
    fc, post_id = await blog(make_instance, policy="none", notify=notify_settings(mailbox))
    first = await posted(fc, post_id, name="Ada", text="Published at once.")
    [mail] = await mailbox.wait_for(1)
    assert "New comment by Ada" in mail.subject
    assert "Published at once." in mail.text
    assert f"fedcomments --config test comments reject {first['id']}" in mail.text
    await moderation.reply_to_comment(fc.rt, first["id"], "Thank you, Ada.")
    await posted(fc, post_id, name="Bea", text="Second one.", wait=61)
    mails = await mailbox.wait_for(2)
    assert "Second one." in mails[1].text
    await until_true(lambda: _idle(fc), 10)
    assert len(mailbox.received) == 2


async def test_published_comments_come_in_a_digest(make_instance: InstanceFactory,
                                                   mailbox: Mailbox) -> None:
    """Given an hourly digest, published comments send no mail of their own; once the hour
    has passed one mail lists them all; a private fediverse reply is mailed at once,
    marked private."""
    fc, post_id = await blog(make_instance, policy="none",
                             notify=notify_settings(mailbox, digest="hourly"))
    await posted(fc, post_id, name="Ada", text="Digest me, first.")
    await posted(fc, post_id, name="Bea", text="Digest me, second.", wait=30)
    remote = await FakeInstance().start()
    try:
        post_ap_id = (await thread(fc, id=str(post_id)))["post"]["ap_id"]
        await remote_reply(fc, remote.actor("carol"), post_ap_id, visibility="direct",
                           mention=fc.rt.urls.actor, content="<p>Just between us.</p>")
        [private] = await mailbox.wait_for(1)
        assert private.subject.startswith("[private]")
        assert "PRIVATE" in private.text and "Just between us." in private.text
        fc.clock.advance(minutes=59)
        # Within the hour the digest is not due (housekeeping asks the same every minute).
        assert await notify.send_digest(fc.rt) == 0
        assert await count(fc, "SELECT COUNT(*) FROM digest_items") == 2
        fc.clock.advance(minutes=2)
        mails = await mailbox.wait_for(2)
    finally:
        await remote.close()
    digest = mails[1]
    assert "2 new comments" in digest.subject and "hourly digest" in digest.subject
    assert "Digest me, first." in digest.text and "Digest me, second." in digest.text
    assert "Just between us." not in digest.text
    assert await count(fc, "SELECT COUNT(*) FROM digest_items") == 0


async def test_reader_hears_of_replies_after_confirming_and_can_unsubscribe(
        make_instance: InstanceFactory, mailbox: Mailbox, remote: FakeInstance) -> None:
    """Given a reader who ticks "email me when someone replies", the first mail asks to
    confirm the address (with List-Unsubscribe headers); replies before confirming are not
    mailed; after confirming, a fediverse reply, the owner's answer and another reader's
    reply are; the one-click unsubscribe (RFC 8058) stops the next; the address never
    shows in the thread."""
    fc, post_id = await blog(make_instance, policy="none",
                             notify=notify_settings(mailbox, to=""))
    mine = await posted(fc, post_id, name="Dee", email="dee@example.org", notify="1",
                        text="Tell me when someone answers.")
    [confirm] = await mailbox.wait_for(1)
    assert confirm.recipients == ["dee@example.org"]
    assert "Confirm" in confirm.subject
    assert confirm.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [confirm_url] = confirm.links("subscriptions/confirm")
    post_ap_id = (await thread(fc, id=str(post_id)))["post"]["ap_id"]
    comment_ap_id = f"{fc.url}/comments/{mine['id']}"
    alice = remote.actor("alice")
    # Not confirmed yet: nothing is sent.
    await remote_reply(fc, alice, comment_ap_id, content="<p>Early answer.</p>")
    # The confirmation page does nothing on GET; its button confirms.
    page = await fc.session.get(confirm_url)
    assert page.status == 200
    assert await count(fc, "SELECT COUNT(*) FROM subscribers WHERE confirmed_at IS NULL") == 1
    done = await fc.session.post(confirm_url, headers={"Origin": fc.url})
    assert done.status == 200 and "confirmed" in await done.text()

    await remote_reply(fc, alice, comment_ap_id, content="<p>A real answer.</p>")
    mails = await mailbox.wait_for(2)
    notice = mails[1]
    assert notice.recipients == ["dee@example.org"]
    assert "replied to your comment" in notice.subject
    assert "A real answer." in notice.text and "Tell me when someone answers." in notice.text
    assert "Early answer." not in notice.text
    unsubscribe = str(notice.message["List-Unsubscribe"]).strip().strip("<>")
    assert notice.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert unsubscribe in notice.text
    body = json.dumps(await thread(fc, id=str(post_id)))
    assert "dee@example.org" not in body
    # The owner's answer and another reader's reply are mailed too.
    await moderation.reply_to_comment(fc.rt, mine["id"], "Thanks, Dee.")
    await posted(fc, post_id, name="Eve", text="Me too!", parent=str(mine["id"]), wait=61)
    mails = await mailbox.wait_for(4)
    assert [m.recipients for m in mails[2:]] == [["dee@example.org"]] * 2
    assert "Thanks, Dee." in mails[2].text and "Test Blog" in mails[2].subject
    assert "Me too!" in mails[3].text and "Eve replied" in mails[3].subject

    page = await fc.session.get(unsubscribe)  # a page with a button; nothing changes yet
    assert page.status == 200
    assert_valid_html5(await page.text())
    assert await count(fc, "SELECT COUNT(*) FROM subscriptions") == 1
    # The mail client's one-click POST (no Origin, the RFC 8058 body).
    resp = await fc.session.post(unsubscribe, data="List-Unsubscribe=One-Click", headers={
        "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 200
    await remote_reply(fc, alice, comment_ap_id, content="<p>After unsubscribing.</p>")
    await remote_reply(fc, alice, post_ap_id, content="<p>Elsewhere.</p>")
    # The delivery worker has run every job queued so far once nothing is pending.
    await until_true(lambda: _idle(fc), 10)
    assert len(mailbox.received) == 4
    assert await count(fc, "SELECT COUNT(*) FROM subscriptions") == 0


async def _idle(fc: Instance) -> bool:
    return await count(fc, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'") == 0


def _signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_webhook_gets_signed_events(make_instance: InstanceFactory,
                                          receiver: WebhookReceiver,
                                          remote: FakeInstance) -> None:
    """Given a webhook, a follow, a held fediverse reply, its approval, its deletion and a
    report each POST one JSON event signed with HMAC-SHA256 over the exact body."""
    fc, post_id = await blog(make_instance, notify={"webhook_url": receiver.url,
                                                    "webhook_secret": SECRET})
    alice = remote.actor("alice")
    resp = await deliver(fc.session, alice, f"{fc.url}/inbox",
                         activity(alice, "Follow", fc.rt.urls.actor))
    assert resp.status == 202
    post_ap_id = (await thread(fc, id=str(post_id)))["post"]["ap_id"]
    comment_id = await remote_reply(fc, alice, post_ap_id, content="<p>Held at first.</p>")
    await moderation.approve_comments(fc.rt, [comment_id])
    resp = await deliver(fc.session, alice, f"{fc.url}/inbox", activity(
        alice, "Flag", [fc.rt.urls.actor], content="Please look at this"))
    assert resp.status == 202
    await moderation.delete_comments(fc.rt, [comment_id])
    want = ["follower.added", "comment.created", "comment.held", "comment.approved",
            "report.created", "comment.deleted"]
    await until(lambda: len(receiver.received) >= len(want), 10)
    assert receiver.events() == want
    for hook in receiver.received:
        assert hook.headers["X-Fedcomments-Signature"] == _signed(SECRET, hook.body)
        assert hook.headers["Content-Type"] == "application/json"
        event = json.loads(hook.body)
        assert event["event"] == hook.headers["X-Fedcomments-Event"]
        assert event["blog"] == fc.url
    created = json.loads(receiver.received[1].body)["data"]
    assert created["id"] == comment_id and created["status"] == "pending"
    assert created["author"]["actor"] == alice.id and created["text"] == "Held at first."
    assert json.loads(receiver.received[0].body)["data"]["actor"] == alice.id
    assert json.loads(receiver.received[4].body)["data"]["content"] == "Please look at this"


async def test_a_down_smtp_server_or_webhook_loses_nothing(
        make_instance: InstanceFactory, receiver: WebhookReceiver, remote: FakeInstance,
        tmp_path: Path) -> None:
    """Given an SMTP server that is down and a webhook answering 503, comments are stored
    and acknowledged as usual; the mail and the event wait in the queue, are listed by
    `deliveries list --kind notify`, and arrive once both are back."""
    sock = bound_socket()  # the SMTP server's port, not listening yet: connections refused
    port = int(sock.getsockname()[1])
    receiver.status = 503
    fc, post_id = await blog(make_instance, notify={
        "smtp_host": "127.0.0.1", "smtp_port": port, "to": "owner@blog.test",
        "webhook_url": receiver.url, "webhook_secret": SECRET})
    resp = await post_local(fc, post_id, name="Ada", email="ada@example.org",
                            text="Stored whatever the mail does.")
    assert resp.status == 201
    post_ap_id = (await thread(fc, id=str(post_id)))["post"]["ap_id"]
    await remote_reply(fc, remote.actor("alice"), post_ap_id)
    assert await count(fc, "SELECT COUNT(*) FROM comments") == 2

    async def tried() -> bool:
        return await count(fc, "SELECT COUNT(*) FROM deliveries WHERE kind IN ('mail', "
                               "'webhook') AND attempts > 0") == 6

    await until_true(tried, 10)
    cfg = write_config(fc, tmp_path)
    run = await run_cli("deliveries", "list", "--kind", "notify", "--json", "--config", cfg)
    assert run.code == 0, run.err
    jobs = run.json()["deliveries"]
    assert sorted(j["kind"] for j in jobs) == ["mail", "mail", "webhook", "webhook",
                                               "webhook", "webhook"]
    assert {j["status"] for j in jobs} == {"pending"}
    assert all(j["last_error"] for j in jobs)
    mail_errors = [j["last_error"] for j in jobs if j["kind"] == "mail"]
    assert all("SMTP 127.0.0.1" in e for e in mail_errors)
    assert {j["inbox"] for j in jobs if j["kind"] == "mail"} == {"mail:owner"}

    # Both come back; the retries fall due.
    mailbox = await Mailbox().start(sock)
    try:
        receiver.status = 204
        fc.clock.advance(minutes=5)
        await mailbox.wait_for(2)
        # Each of the 4 events: refused once with 503, then accepted.
        await until(lambda: len(receiver.received) == 8, 10)
    finally:
        await mailbox.close()
    assert {m.recipients[0] for m in mailbox.received} == {"owner@blog.test"}
    assert sorted(h.headers["X-Fedcomments-Event"] for h in receiver.received[4:]) == [
        "comment.created", "comment.created", "comment.held", "comment.held"]


    async def all_done() -> bool:  # the outcomes are written just after the answers
        return await count(fc, "SELECT COUNT(*) FROM deliveries WHERE status = 'done' "
                               "AND kind IN ('mail', 'webhook')") == 6

    await until_true(all_done, 10)


async def test_a_refused_recipient_fails_at_once_and_is_listed(
        make_instance: InstanceFactory, mailbox: Mailbox) -> None:
    """Given an SMTP server that refuses the recipient for good (550), the mail job fails
    without retries and keeps the server's answer for `deliveries list`."""
    mailbox.refuse = "550 5.1.1 no such user"
    fc, post_id = await blog(make_instance, notify=notify_settings(mailbox))
    await posted(fc, post_id, name="Ada", text="Who will read this?")

    async def failed() -> bool:
        return await count(fc, "SELECT COUNT(*) FROM deliveries WHERE kind = 'mail' "
                               "AND status = 'failed'") == 1

    await until_true(failed, 10)
    row = await fc.rt.db.read.fetchone("SELECT attempts, last_error FROM deliveries "
                                       "WHERE kind = 'mail'")
    assert row is not None and row[0] == 1 and "550" in row[1]


async def test_webhook_on_a_private_address_needs_the_owners_permission(
        make_instance: InstanceFactory, receiver: WebhookReceiver) -> None:
    """Given a webhook on loopback and a server that fetches nothing private, the event is
    refused (failed, listed) unless [notify] webhook_allow_private says otherwise."""
    for allowed in (False, True):
        fc, post_id = await blog(make_instance, policy="none",
                                 federation={"allow_private_addresses": False},
                                 notify={"webhook_url": receiver.url, "webhook_secret": SECRET,
                                         "webhook_allow_private": allowed})
        await posted(fc, post_id, name="Ada", text=f"Private webhook allowed: {allowed}")

        async def settled(fc: Instance = fc) -> bool:
            return await count(fc, "SELECT COUNT(*) FROM deliveries WHERE kind = 'webhook' "
                                   "AND status != 'pending'") == 1

        await until_true(settled, 10)
        row = await fc.rt.db.read.fetchone("SELECT status, last_error FROM deliveries "
                                           "WHERE kind = 'webhook'")
        assert row is not None
        if allowed:
            assert row[0] == "done"
            assert len(receiver.received) == 1
        else:
            assert row[0] == "failed" and "refused" in row[1]
            assert receiver.received == []


async def test_line_breaks_in_names_and_titles_never_reach_a_mail_header(
        make_instance: InstanceFactory, mailbox: Mailbox, remote: FakeInstance) -> None:
    """Given mail to the owner, a fediverse author whose name carries CR/LF (or another
    line separator) and a post title with a line break: the replies are stored and
    acknowledged, each mail arrives with a one-line Subject, and no header is added."""
    fc: Instance = await make_instance(moderation={"policy": "none"},
                                       notify=notify_settings(mailbox))
    post = await add_post_via_service(fc.rt, title="Line\nbreak\u2028title")
    post_ap_id = (await thread(fc, id=str(post.id)))["post"]["ap_id"]
    names = ["Mallory\r\nBcc: victim@example.org", "Eve\u2028X-Injected: yes", "Trudy\x85Z"]
    for n, name in enumerate(names):
        actor = remote.actor(f"user{n}")
        actor.name = name
        await remote_reply(fc, actor, post_ap_id, content=f"<p>Reply {n}.</p>")
    mails = await mailbox.wait_for(len(names))
    assert sorted(m.recipients[0] for m in mails) == ["owner@blog.test"] * len(names)
    for m in mails:
        assert "\n" not in m.subject and "\r" not in m.subject
        assert m.message["Bcc"] is None and m.message["X-Injected"] is None
    assert any("Mallory" in m.subject and "Bcc: victim@example.org" in m.subject
               for m in mails)


async def test_default_sender_on_an_ip_literal_host_is_a_valid_address(
        make_instance: InstanceFactory, mailbox: Mailbox) -> None:
    """Given no `from` and a server whose base URL is an IPv6 literal, the owner's mail
    is still built (from fedcomments@[::1]) instead of raising in the inbox transaction."""
    fc: Instance = await make_instance(server={"base_url": "http://[::1]:8080"},
                                       notify=notify_settings(mailbox, **{"from": ""}))
    env = notify.envelope(fc.rt, "owner@blog.test")
    assert env.sender == "fedcomments@[::1]"
    message = mail.digest(env, [], period="daily", now=fc.rt.now())
    assert b"From: Test Blog <fedcomments@[::1]>" in message


async def test_links_with_characters_outside_ascii_are_refused_cleanly(
        make_instance: InstanceFactory, mailbox: Mailbox) -> None:
    """Given a moderation, confirmation or unsubscribe link whose signature part was
    replaced by non-ASCII text, each page answers 404 (not a server error) and nothing
    changes."""
    fc, post_id = await blog(make_instance, notify=notify_settings(mailbox))
    held = await posted(fc, post_id, name="Ada", text="Held for now.")
    for path in (f"moderate/{held['id']}.approve.9999999999.abcdefghijklmnop.%C3%A9t%C3%A9",
                 "subscriptions/confirm/1.1700000000.%E2%82%AC", "unsubscribe/1.%C3%BF"):
        if not path.startswith("subscriptions"):  # that page checks on POST only
            page = await fc.session.get(f"{fc.url}/{path}")
            assert page.status == 404, path
        done = await fc.session.post(f"{fc.url}/{path}", headers={"Origin": fc.url})
        assert done.status == 404, path
    assert await count(fc, "SELECT COUNT(*) FROM comments WHERE status = 'pending'") == 1


async def test_sent_mails_and_spam_reports_do_not_keep_readers_data(
        make_instance: InstanceFactory, mailbox: Mailbox, receiver: WebhookReceiver,
        remote: FakeInstance, tmp_path: Path) -> None:
    """Given mail, a webhook and a spam service, a reader's comment (with their address
    and IP) sends mails, events and a ham report; within housekeeping's hour the bodies of
    the sent jobs are cleared while `deliveries list` still shows them (and a retry says
    why it cannot), and after the retention the finished jobs and the spam service's copy
    of the reader's data are gone; ActivityPub jobs stay (Update/Delete follow them)."""
    akismet = await FakeAkismet().start()
    try:
        fc, post_id = await blog(
            make_instance, policy="all",
            notify=notify_settings(mailbox, webhook_url=receiver.url, webhook_secret=SECRET),
            spam={"akismet_key": "k", "akismet_url": akismet.url})
        alice = remote.actor("alice")
        resp = await deliver(fc.session, alice, f"{fc.url}/inbox",
                             activity(alice, "Follow", fc.rt.urls.actor))
        assert resp.status == 202
        held = await posted(fc, post_id, name="Ada", email="ada@example.org", notify="1",
                            text="I love spam musubi")
        undecided = await posted(fc, post_id, name="Bea", email="bea@example.org",
                                 text="A kind remark.", wait=61)
        await moderation.approve_comments(fc.rt, [held["id"]])
        await until(lambda: len(akismet.named("submit-ham")) == 1, 10)

        async def settled() -> bool:
            return await count(fc, "SELECT COUNT(*) FROM deliveries "
                                   "WHERE status = 'pending'") == 0

        await until_true(settled, 10)
        rows = await fc.rt.db.read.fetchall("SELECT id, kind, body FROM deliveries")
        kinds = sorted(r[1] for r in rows)
        assert {"activity", "mail", "webhook", "spam"} <= set(kinds)
        sent = [r for r in rows if r[1] != "activity"]
        assert any(b"ada@example.org" in bytes(r[2]) for r in sent)  # what must go
        mail_job = next(r[0] for r in sent if r[1] == "mail")

        fc.clock.advance(hours=1)

        async def cleared() -> bool:
            return await count(fc, "SELECT COUNT(*) FROM deliveries WHERE kind != 'activity' "
                                   "AND length(body) > 0") == 0

        await until_true(cleared, 10)
        assert await count(fc, "SELECT COUNT(*) FROM deliveries WHERE kind = 'activity' "
                               "AND length(body) > 0") == kinds.count("activity")
        cfg = write_config(fc, tmp_path)
        run = await run_cli("deliveries", "list", "--kind", "all", "--json", "--config", cfg)
        assert run.code == 0, run.err
        assert sorted(j["kind"] for j in run.json()["deliveries"]) == kinds
        run = await run_cli("deliveries", "retry", str(mail_job), "--config", cfg)
        assert run.code == 2 and "cleared" in run.err
        checks = await count(fc, "SELECT COUNT(*) FROM spam_checks WHERE params != '{}'")
        assert checks == 1  # the undecided comment's, kept for the owner's decision

        fc.clock.advance(days=NOTICE_RETENTION_DAYS + 1)

        async def pruned() -> bool:
            return await count(fc, "SELECT COUNT(*) FROM deliveries "
                                   "WHERE kind != 'activity'") == 0

        await until_true(pruned, 10)
        assert await count(fc, "SELECT COUNT(*) FROM deliveries") == kinds.count("activity")
        assert await count(fc, "SELECT COUNT(*) FROM spam_checks WHERE params != '{}'") == 0
        # Too late to report: rejecting it now asks nothing of the service.
        await moderation.reject_comments(fc.rt, [undecided["id"]])
        assert await count(fc, "SELECT COUNT(*) FROM deliveries WHERE kind = 'spam'") == 0
    finally:
        await akismet.close()


async def test_a_confirmed_address_is_not_subscribed_by_someone_elses_comment(
        make_instance: InstanceFactory, mailbox: Mailbox) -> None:
    """Given a reader who confirmed their address for their own comment, when someone
    else comments with that address and ticks the box, then replies to that comment are
    not mailed to the reader (each subscription is confirmed by its own link: the
    reader would otherwise get mail, with text the stranger chose, they never asked
    for); a second comment of the reader asks again and, once confirmed, is mailed."""
    fc, post_id = await blog(make_instance, policy="none",
                             notify=notify_settings(mailbox, to=""))
    mine = await posted(fc, post_id, name="Dee", email="dee@example.org", notify="1",
                        text="My own comment.")
    [confirm] = await mailbox.wait_for(1)
    [confirm_url] = confirm.links("subscriptions/confirm")
    done = await fc.session.post(confirm_url, headers={"Origin": fc.url})
    assert done.status == 200

    fc.clock.advance(days=2)
    stranger = await posted(fc, post_id, name="Mallory", email="dee@example.org",
                            notify="1", text="Not Dee at all.")
    await posted(fc, post_id, name="Eve", text="Buy pills at pills.example!",
                 parent=str(stranger["id"]), wait=61)
    await posted(fc, post_id, name="Eve", text="An answer to Dee.", parent=str(mine["id"]),
                 wait=61)
    await until_true(lambda: _idle(fc), 10)
    to_dee = mailbox.to("dee@example.org")
    assert not any("Buy pills" in m.text for m in to_dee)
    assert any("An answer to Dee." in m.text for m in to_dee)
    # The stranger's subscription asked for its own confirmation, which Dee ignores.
    asks = [m for m in to_dee if "Confirm" in m.subject]
    assert len(asks) == 2 and asks[1].links("subscriptions/confirm") != [confirm_url]

    # Dee's second comment asks too; once confirmed, replies to it are mailed.
    fc.clock.advance(days=2)
    second = await posted(fc, post_id, name="Dee", email="dee@example.org", notify="1",
                          text="Another of mine.")
    await until_true(lambda: _idle(fc), 10)
    ask = mailbox.to("dee@example.org")[-1]
    assert "Confirm" in ask.subject
    [second_url] = ask.links("subscriptions/confirm")
    assert (await fc.session.post(second_url, headers={"Origin": fc.url})).status == 200
    await posted(fc, post_id, name="Eve", text="Welcome back, Dee.",
                 parent=str(second["id"]), wait=61)
    await until_true(lambda: _idle(fc), 10)
    assert "Welcome back, Dee." in mailbox.to("dee@example.org")[-1].text
