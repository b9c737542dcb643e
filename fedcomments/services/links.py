"""Signed links in mails: one-click moderation (expiring, single-use), confirming a reader's
address, and unsubscribing. Pure: tokens in, checked claims out; the clock is passed in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fedcomments.errors import FedcommentsError

#: How long a moderation link in the owner's mail works (Isso's are valid for days too).
MODERATION_LIFETIME = timedelta(days=7)
#: How long a reader may take to confirm their address.
CONFIRM_LIFETIME = timedelta(days=7)
ACTIONS = ("approve", "reject")


class BadLink(FedcommentsError):
    """The link is forged, damaged, expired or already used."""

    http_status = 404
    exit_code = 2


def _mac(secret: bytes, purpose: str, message: str) -> str:
    key = hashlib.sha256(b"fedcomments/links/v1\0" + purpose.encode() + b"\0" + secret).digest()
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _check(secret: bytes, purpose: str, token: str, parts: int) -> list[str]:
    fields = token.split(".")
    if len(token) > 300 or len(fields) != parts + 1:
        raise BadLink("this link is not valid")
    *claims, mac = fields
    # Bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    if not hmac.compare_digest(mac.encode(), _mac(secret, purpose, ".".join(claims)).encode()):
        raise BadLink("this link is not valid")
    return claims


def _number(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise BadLink("this link is not valid")
    return int(text)


@dataclass(frozen=True)
class ModerationClaim:
    comment_id: int
    action: str
    expires_at: datetime
    #: Shared by the approve and reject links of one mail: using either spends both.
    nonce: str


def moderation_nonce() -> str:
    return secrets.token_urlsafe(12)


def moderation_token(secret: bytes, comment_id: int, action: str, nonce: str,
                     now: datetime) -> str:
    expires = int((now + MODERATION_LIFETIME).timestamp())
    claims = f"{comment_id}.{action}.{expires}.{nonce}"
    return f"{claims}.{_mac(secret, 'moderate', claims)}"


def check_moderation(secret: bytes, token: str, now: datetime) -> ModerationClaim:
    comment, action, expires, nonce = _check(secret, "moderate", token, 4)
    if action not in ACTIONS:
        raise BadLink("this link is not valid")
    when = datetime.fromtimestamp(_number(expires), now.tzinfo)
    if when < now:
        raise BadLink("this link has expired; use the command in the mail instead")
    return ModerationClaim(_number(comment), action, when, nonce)


@dataclass(frozen=True)
class ConfirmClaim:
    subscriber_id: int
    #: The comment whose replies the address asked to hear of.
    comment_id: int


def confirm_token(secret: bytes, subscriber_id: int, comment_id: int, now: datetime) -> str:
    claims = f"{subscriber_id}.{comment_id}.{int(now.timestamp())}"
    return f"{claims}.{_mac(secret, 'confirm', claims)}"


def check_confirm(secret: bytes, token: str, now: datetime) -> ConfirmClaim:
    subscriber, comment, issued = _check(secret, "confirm", token, 3)
    if now - datetime.fromtimestamp(_number(issued), now.tzinfo) > CONFIRM_LIFETIME:
        raise BadLink("this confirmation link has expired; tick the box with your next "
                      "comment to get a new one")
    return ConfirmClaim(_number(subscriber), _number(comment))


def unsubscribe_token(secret: bytes, subscriber_id: int) -> str:
    """Never expires: an unsubscribe link must work for as long as mail can arrive."""
    return f"{subscriber_id}.{_mac(secret, 'unsubscribe', str(subscriber_id))}"


def check_unsubscribe(secret: bytes, token: str) -> int:
    (subscriber,) = _check(secret, "unsubscribe", token, 1)
    return _number(subscriber)
