"""'Reply from your fediverse account': WebFinger the reader's handle, follow its
interaction template to their own instance, or explain how to paste the object's URL.

Only https targets built from the template their own WebFinger returned, on their
instance's host, and only for objects of ours that are public: never an open redirect.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fedcomments.errors import FedcommentsError, InvalidInput, NotFound
from fedcomments.names import HostError, canonical_host, host_of
from fedcomments.runtime import Runtime
from fedcomments.store import comments as comment_store
from fedcomments.store import posts as post_store

log = logging.getLogger("fedcomments.interact")

#: The OStatus "remote follow" link: Mastodon, Pleroma/Akkoma, Misskey and Friendica
#: publish it with a `template` whose {uri} takes the object (or account) to open.
SUBSCRIBE_REL = "http://ostatus.org/schema/1.0/subscribe"
MAX_TEMPLATE = 2048
_HANDLE = re.compile(r"@?([A-Za-z0-9_.~+-]{1,100})@([^\s@/?#\\]{1,253})")


@dataclass(frozen=True)
class Interaction:
    object_url: str
    handle: str
    #: The reader's instance, opened on the object; None when it offers no template.
    redirect: str | None = None
    #: Why there is no redirect, in words for the reader.
    problem: str | None = None


@dataclass(frozen=True)
class Handle:
    user: str
    #: The host as written in the handle (with a port for local test instances).
    host: str
    #: The host name alone, IDNA-encoded and lowercase.
    hostname: str

    def __str__(self) -> str:
        return f"@{self.user}@{self.host}"


def parse_handle(value: str) -> Handle:
    """`@user@host` or `user@host`; refused with a message next to the `acct` field."""
    bad = InvalidInput("acct: enter your fediverse address, like @you@mastodon.social",
                       field="acct")
    match = _HANDLE.fullmatch(value.strip())
    if match is None:
        raise bad
    user, host = match.groups()
    name, _, port = host.partition(":")
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise bad
    try:
        name = canonical_host(name)
    except HostError:
        raise bad from None
    return Handle(user, f"{name}:{port}" if port else name, name)


def subscribe_template(jrd: dict[str, Any]) -> str | None:
    """The `template` of the first subscribe link of a WebFinger document."""
    links = jrd.get("links")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("rel") == SUBSCRIBE_REL:
            template = link.get("template")
            if isinstance(template, str) and template:
                return template
    return None


def _same_site(target_host: str, acct_host: str, jrd_host: str) -> bool:
    """The target is the instance the reader named (or its subdomain), or the host that
    answered WebFinger (a handle on example.org served by social.example.org)."""
    return (target_host in (acct_host, jrd_host) or target_host.endswith("." + acct_host))


def redirect_target(template: str, object_id: str, *, acct_host: str, jrd_host: str,
                    allow_http: bool) -> str | None:
    """The URL to send the reader to, or None when the template is unusable."""
    if (len(template) > MAX_TEMPLATE or template.count("{uri}") != 1
            or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in template)):
        return None
    url = template.replace("{uri}", quote(object_id, safe=""))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return None
    schemes = ("https", "http") if allow_http else ("https",)
    if (parts.scheme.lower() not in schemes or not parts.hostname
            or parts.username is not None or parts.password is not None):
        return None
    if not _same_site(host_of(url), acct_host, jrd_host):
        return None
    return url


async def public_object(rt: Runtime, object_id: str) -> str:
    """`object_id` if it is the blog's actor (to follow it), one of our public posts or a
    public comment under one."""
    object_id = object_id.strip()
    if object_id == rt.urls.actor:
        return object_id
    post = await post_store.by_ap_id(rt.db.read, object_id)
    if post is None:
        comment = await comment_store.by_ap_id(rt.db.read, object_id)
        if comment is not None and comment.is_public:
            post = await post_store.by_id(rt.db.read, comment.post_id)
    if post is None or post.is_deleted or post.published_at > rt.now():
        raise NotFound("object: not a public post or comment of this blog")
    return object_id


def _webfinger_url(rt: Runtime, handle: Handle) -> str:
    # Local test instances speak plain http on loopback; everywhere else WebFinger is https.
    local = handle.hostname == "localhost" or _is_ip(handle.hostname)
    scheme = "http" if rt.settings.federation.allow_private_addresses and local else "https"
    query = urlencode({"resource": f"acct:{handle.user}@{handle.host}"})
    return f"{scheme}://{handle.host}/.well-known/webfinger?{query}"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


async def interact(rt: Runtime, acct: str, object_id: str) -> Interaction:
    """Where to send a reader who wants to answer `object_id` from their account."""
    handle = parse_handle(acct)
    obj = await public_object(rt, object_id)
    try:
        resp = await rt.remote.get_jrd(_webfinger_url(rt, handle))
    except FedcommentsError as exc:
        log.info("webfinger for interaction failed",
                 extra={"host": handle.host, "error": str(exc)})
        return Interaction(obj, str(handle), problem=f"We could not look up {handle}.")
    template = subscribe_template(resp.data)
    if template is None:
        return Interaction(obj, str(handle), problem=f"{handle.host} does not say how to open "
                                                     "posts from other servers.")
    target = redirect_target(template, obj, acct_host=handle.hostname,
                             jrd_host=host_of(resp.url),
                             allow_http=rt.settings.federation.allow_private_addresses)
    if target is None:
        return Interaction(obj, str(handle),
                           problem=f"{handle.host} gave an address we will not open.")
    return Interaction(obj, str(handle), redirect=target)
