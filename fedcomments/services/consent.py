"""What fediverse authors consent to: replies of an author with an opt-out hashtag (#nobot,
#noblog) in their profile, or not discoverable and replying unlisted, are kept for the owner
only; FEP-5feb's `indexable: false` keeps them shown but asks search engines not to index.
"""

from __future__ import annotations

from fedcomments.ap import parse
from fedcomments.model import RemoteActor
from fedcomments.runtime import Runtime
from fedcomments.store import actors as actor_store
from fedcomments.store import consent as consent_store
from fedcomments.store.conn import Conn

NOT_DISCOVERABLE = "the author is not discoverable and replied unlisted"


def opt_out_tag(rt: Runtime, tags: tuple[str, ...]) -> str | None:
    """The first configured opt-out hashtag among a profile's hashtags."""
    wanted = rt.settings.federation.opt_out_tags
    return next((tag for tag in wanted if tag in tags), None)


def verdict(rt: Runtime, actor: RemoteActor) -> tuple[str | None, str | None]:
    """(reason to withhold every public reply, reason to withhold the unlisted ones)."""
    tag = opt_out_tag(rt, actor.profile_tags)
    if tag is not None:
        return f"the author opted out with #{tag} in their profile", None
    # Mastodon's "discoverable: false" keeps an account out of its directory and trends;
    # with an unlisted reply the author also kept it off public timelines: together they
    # say "not for showing around", so a blog does not either.
    if actor.discoverable is False:
        return None, NOT_DISCOVERABLE
    return None, None


async def enforce(rt: Runtime, tx: Conn, actor: RemoteActor) -> int:
    """Bring every reply of `actor` in line with their profile as stored: withheld, or
    given back (a tag removed from the profile restores the audience they had)."""
    everything, unlisted = verdict(rt, actor)
    if everything is None and unlisted is None and not await consent_store.has_withheld(
            tx, actor.id):
        return 0
    return await consent_store.apply(tx, actor.id, everything=everything, unlisted=unlisted)


async def enforce_new(rt: Runtime, tx: Conn, actor: RemoteActor) -> None:
    """After storing replies of `actor`: withhold them if their profile says so (nothing
    to give back, so an author without a verdict costs no query)."""
    everything, unlisted = verdict(rt, actor)
    if everything is not None or unlisted is not None:
        await consent_store.apply(tx, actor.id, everything=everything, unlisted=unlisted)


async def from_update(rt: Runtime, actor: RemoteActor, profile: parse.IncomingActor) -> int:
    """An Update{Person} the author signed: its consent takes effect at once, even when the
    profile is not refetched now (a refetch is rate-limited). Only consent is read from
    the body; keys and the rest of the profile still come from a fetch."""
    if profile.id != actor.ap_id:
        return 0
    async with rt.db.transaction() as tx:
        await actor_store.set_consent(tx, actor.id, indexable=profile.indexable,
                                      discoverable=profile.discoverable,
                                      profile_tags=profile.hashtags)
        stored = await actor_store.by_id(tx, actor.id)
        assert stored is not None
        return await enforce(rt, tx, stored)
