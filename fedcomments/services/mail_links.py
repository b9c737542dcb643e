"""What the links in our mails do: moderate a comment (after a confirmation page, so a
mail scanner that follows links changes nothing), confirm a reader's address, unsubscribe."""

from __future__ import annotations

from dataclasses import dataclass

from fedcomments.errors import InvalidInput, NotFound
from fedcomments.model import CommentStatus
from fedcomments.runtime import Runtime
from fedcomments.services import links, moderation, notify
from fedcomments.services.mail import CommentFacts
from fedcomments.store import comments as comment_store
from fedcomments.store import notify as notify_store
from fedcomments.store import posts as post_store


@dataclass(frozen=True)
class ModerationView:
    """What the confirmation page shows before the owner presses the button."""

    action: str
    comment: CommentFacts
    #: The comment's status now; the action may already be done.
    status: str


async def moderation_view(rt: Runtime, token: str) -> ModerationView:
    claim = links.check_moderation(notify.link_secret(rt), token, rt.now())
    if await notify_store.link_used(rt.db.read, claim.nonce):
        raise links.BadLink("this link was used already; use the command in the mail instead")
    c = await comment_store.by_id(rt.db.read, claim.comment_id)
    post = await post_store.by_id(rt.db.read, c.post_id) if c else None
    if c is None or post is None or c.status is CommentStatus.DELETED:
        raise NotFound("this comment was deleted")
    return ModerationView(claim.action, notify.facts(c, post), c.status.value)


async def moderate_by_link(rt: Runtime, token: str) -> moderation.Outcome:
    """Do what the link says, once: the link (and its sibling in the same mail) is spent."""
    now = rt.now()
    claim = links.check_moderation(notify.link_secret(rt), token, now)
    async with rt.db.transaction() as tx:
        if not await notify_store.use_link(tx, claim.nonce, now, claim.expires_at):
            raise links.BadLink("this link was used already; use the command in the mail "
                                "instead")
    try:
        if claim.action == "approve":
            [outcome] = await moderation.approve_comments(rt, [claim.comment_id])
        else:
            [outcome] = await moderation.reject_comments(rt, [claim.comment_id])
    except (NotFound, InvalidInput) as exc:
        raise NotFound(f"nothing was changed: {exc}") from None
    return outcome


async def confirm_subscription(rt: Runtime, token: str) -> bool:
    """Confirm that a reader wants mail about replies to the comment the link names;
    False when it was confirmed before."""
    claim = links.check_confirm(notify.link_secret(rt), token, rt.now())
    async with rt.db.transaction() as tx:
        done = await notify_store.confirm(tx, claim.subscriber_id, claim.comment_id, rt.now())
    if done is None:
        # Unsubscribing drops every subscription: an old link must not undo it.
        raise links.BadLink("this subscription ended (unsubscribed, or the comment was "
                            "removed); tick the box with your next comment to subscribe again")
    return done


async def check_unsubscribe(rt: Runtime, token: str) -> None:
    """Refuse a forged unsubscribe link (before the page offers its button)."""
    links.check_unsubscribe(notify.link_secret(rt), token)


async def unsubscribe(rt: Runtime, token: str) -> bool:
    """No more mail to the address; False when it had unsubscribed already."""
    subscriber_id = links.check_unsubscribe(notify.link_secret(rt), token)
    async with rt.db.transaction() as tx:
        return await notify_store.unsubscribe(tx, subscriber_id, rt.now())
