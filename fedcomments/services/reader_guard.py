"""Who may send the reader form, and how fast: signed form tokens, the client's address
behind trusted proxies (IPv6 by /64), and the Origin check against CSRF."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from fedcomments.errors import Forbidden, InvalidInput
from fedcomments.runtime import Runtime


class FormErrors(InvalidInput):
    """One or more fields are wrong; `errors` maps each field to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()),
                         field=next(iter(errors)))
        self.errors = errors


@dataclass(frozen=True)
class Client:
    """Who sends the form: the address the limit counts, and what the browser says."""

    ip: str
    origin: str | None = None
    referer: str | None = None
    #: What the spam service is told of the browser (never stored otherwise).
    user_agent: str = ""


def _key(rt: Runtime, purpose: str) -> bytes:
    """A secret per purpose, derived from the blog's private key (never leaves the server)."""
    return hashlib.sha256(f"fedcomments/{purpose}/v1\0{rt.keys.private_pem}".encode()).digest()


def _mac(rt: Runtime, purpose: str, message: str) -> str:
    digest = hmac.new(_key(rt, purpose), message.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


def issue_token(rt: Runtime, post_id: int) -> str:
    """The form token: when the form was shown, signed together with the post."""
    issued = int(rt.now().timestamp())
    return f"{issued}.{_mac(rt, 'form', f'{post_id}:{issued}')}"


def token_age(rt: Runtime, token: str, post_id: int) -> float:
    """Seconds since the token was issued; refuses forged, foreign and expired tokens."""
    issued_text, _, mac = token.partition(".")
    if not issued_text.isdigit() or len(issued_text) > 12 or not hmac.compare_digest(
            mac, _mac(rt, "form", f"{post_id}:{issued_text}")):
        raise FormErrors({"token": "the form is not valid for this post; reload the page"})
    age = rt.now().timestamp() - int(issued_text)
    if age > rt.settings.comments.form_max_age_hours * 3600 or age < -60:
        raise FormErrors({"token": "the form has expired; reload the page and send it again"})
    return age


def client_ip(peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...]) -> str:
    """The reader's address: the socket peer, or X-Forwarded-For only via a trusted proxy.

    The header is read right to left, skipping our own proxies; the first other address is
    the client (anything left of it was written by the client and proves nothing).
    """
    networks = [ipaddress.ip_network(t, strict=False) for t in trusted]

    def is_trusted(ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in n for n in networks)

    current = peer or "unknown"
    if not forwarded_for or not is_trusted(current):
        return current
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        current = hop
        if not is_trusted(hop):
            break
    return current


def client_key(rt: Runtime, ip: str) -> str:
    """A keyed hash of the address (IPv6 by /64: one host owns the whole network)."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        group = ip
    else:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        group = (str(ipaddress.ip_network(f"{address}/64", strict=False))
                 if address.version == 6 else str(address))
    return _mac(rt, "client", group)


def allowed_origins(rt: Runtime) -> frozenset[str]:
    return frozenset((rt.settings.server.base_url, *rt.settings.server.blog_origins))


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(rt: Runtime, client: Client) -> None:
    """CSRF: the browser's Origin (else Referer) must be this server or a blog origin."""
    seen = client.origin if client.origin and client.origin != "null" else None
    if seen is None and client.referer:
        seen = _origin_of(client.referer)
    if seen is None or seen.rstrip("/").lower() not in allowed_origins(rt):
        raise Forbidden("comments are accepted only from the blog's own pages (Origin)")
