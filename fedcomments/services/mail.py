"""The mails fedcomments writes, as RFC 5322 bytes: to the owner (a held comment, a
published one, the digest) and to readers (confirm your address, someone replied). Pure."""

from __future__ import annotations

import shlex
import textwrap
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

#: Longest excerpt of a comment quoted in a mail.
MAX_QUOTE = 4000


@dataclass(frozen=True)
class Envelope:
    """Who a mail is from and to, and the names the blog signs with."""

    sender: str
    to: str
    blog_name: str
    #: Host name for Message-IDs (the comment server's).
    domain: str


@dataclass(frozen=True)
class CommentFacts:
    """What a mail says of one comment."""

    id: int
    author: str
    text: str
    post_title: str
    post_url: str
    #: Where the comment can be read (None: not public).
    url: str | None
    status: str
    private: bool
    published: datetime
    spam: str | None = None


def one_line(text: str) -> str:
    """`text` fit for a header: every line break (CR, LF and the other separators Python
    splits lines on) and control character becomes a space. A fediverse author's name is
    theirs to choose; the email library refuses a header with a line break, and that
    refusal must not fail the inbox write the mail is queued in."""
    return " ".join("".join(" " if unicodedata.category(c) == "Cc" else c
                            for c in " ".join(text.splitlines())).split())


def _message(env: Envelope, subject: str, body: str, now: datetime,
             unsubscribe: str | None = None) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(one_line(env.blog_name), addr_spec=env.sender)
    msg["To"] = env.to
    msg["Subject"] = one_line(subject)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("fedcomments", domain=env.domain)
    # RFC 3834: robots and vacation responders must not answer.
    msg["Auto-Submitted"] = "auto-generated"
    if unsubscribe:
        # RFC 8058: a mail client unsubscribes with one POST of this body to the URL.
        msg["List-Unsubscribe"] = f"<{unsubscribe}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg.set_content(body, charset="utf-8")
    return msg.as_bytes()


def _quote(text: str) -> str:
    text = text if len(text) <= MAX_QUOTE else text[:MAX_QUOTE] + " …"
    lines = []
    for paragraph in text.split("\n"):
        lines += textwrap.wrap(paragraph, 74) or [""]
    return "\n".join(f"> {line}" for line in lines)


def _about(c: CommentFacts) -> str:
    where = f"Post: {c.post_title}\n      {c.post_url}\n"
    if c.url:
        where += f"Comment: {c.url}\n"
    private = ("This reply is PRIVATE (followers-only or direct): it is never shown "
               "publicly.\n") if c.private else ""
    spam = f"The spam service says: {c.spam}.\n" if c.spam in ("spam", "unknown") else ""
    return (f"From: {c.author}\n{where}Time: {c.published:%Y-%m-%d %H:%M} UTC\n{private}{spam}"
            f"\n{_quote(c.text)}\n")


def cli_command(config: str | None, *args: str) -> str:
    """The exact command to run, with the config file the server was started with."""
    words = ["fedcomments", *args]
    if config:
        words[1:1] = ["--config", config]
    return shlex.join(words)


def held_comment(env: Envelope, c: CommentFacts, *, approve_url: str, reject_url: str,
                 config: str | None, now: datetime) -> bytes:
    mark = "[private] " if c.private else ""
    subject = f"{mark}[{env.blog_name}] Comment waiting for approval: {c.post_title}"
    body = (f"A comment by {c.author} waits for your approval.\n\n{_about(c)}\n"
            f"Approve it:\n  {cli_command(config, 'comments', 'approve', str(c.id))}\n"
            f"  or open {approve_url}\n\n"
            f"Reject it:\n  {cli_command(config, 'comments', 'reject', str(c.id))}\n"
            f"  or open {reject_url}\n\n"
            "Each link opens a page with a button; it works once, for a week.\n")
    return _message(env, subject, body, now)


def published_comment(env: Envelope, c: CommentFacts, *, config: str | None,
                      now: datetime) -> bytes:
    mark = "[private] " if c.private else ""
    what = "Private reply" if c.private else "New comment"
    subject = f"{mark}[{env.blog_name}] {what} by {c.author}: {c.post_title}"
    body = (f"{what} by {c.author}.\n\n{_about(c)}\n"
            f"Hide it:\n  {cli_command(config, 'comments', 'reject', str(c.id))}\n"
            f"Answer it:\n  {cli_command(config, 'comments', 'reply', str(c.id), '--text', '…')}\n")
    return _message(env, subject, body, now)


def digest(env: Envelope, comments: Sequence[CommentFacts], *, period: str,
           now: datetime) -> bytes:
    n = len(comments)
    subject = f"[{env.blog_name}] {n} new comment{'s' if n != 1 else ''} ({period} digest)"
    parts = [f"{n} comment{'s were' if n != 1 else ' was'} published since the last digest.\n"]
    for c in comments:
        parts.append(f"--- comment {c.id} ---\n{_about(c)}")
    return _message(env, subject, "\n".join(parts), now)


def confirm_address(env: Envelope, *, post_title: str, confirm_url: str,
                    unsubscribe_url: str, now: datetime) -> bytes:
    subject = f"[{env.blog_name}] Confirm that you want mail about replies"
    body = (f"You (or someone using your address) commented on “{post_title}” and asked to "
            "hear of replies by mail.\n\n"
            f"To get mail about replies to that comment, confirm:\n  {confirm_url}\n\n"
            "If it was not you, ignore this message: nothing will be sent. To never get "
            f"mail from this blog, unsubscribe:\n  {unsubscribe_url}\n")
    return _message(env, subject, body, now, unsubscribe=unsubscribe_url)


def reply_notice(env: Envelope, reply: CommentFacts, *, your_text: str,
                 unsubscribe_url: str, now: datetime) -> bytes:
    subject = f"[{env.blog_name}] {reply.author} replied to your comment on {reply.post_title}"
    body = (f"{reply.author} replied to your comment on “{reply.post_title}”.\n\n"
            f"You wrote:\n{_quote(your_text)}\n\n{reply.author} answered:\n"
            f"{_quote(reply.text)}\n\nRead and answer it: {reply.url or reply.post_url}\n\n"
            f"Stop this mail (every mail from this blog):\n  {unsubscribe_url}\n")
    return _message(env, subject, body, now, unsubscribe=unsubscribe_url)
