"""How remote servers and accounts are named wherever we compare, store or show them: one
spelling of a host (lower-case, IDNA 2008 / UTS 46 punycode, no trailing dot), the host and
origin of a URL, special-use names that are never looked up, and handles. Pure, no I/O.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import urlsplit

import idna

MAX_HOST = 253

#: `http(s)://host[:port]` with a plain ASCII host: the shape nearly every id has, read with
#: one regex; anything else (IPv6, user info, other characters) goes to urlsplit.
_PLAIN = re.compile(r"([hH][tT][tT][pP][sS]?)://([A-Za-z0-9.-]+)(?::([0-9]*))?(?=[/?#]|\Z)")
# A label as DNS carries it. Underscores are not valid in host names but appear in some
# real ones (and resolve), so they are kept rather than refused.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_ASCII_HOST = re.compile(r"[A-Za-z0-9_.-]+\Z")

#: Names no lookup can turn into a fediverse server: RFC 6761's `.invalid`, RFC 7686's
#: `.onion` (Tor), RFC 9476's `.alt` (other name systems) and I2P's `.i2p`.
NEVER_LOOKED_UP: dict[str, str] = {
    "onion": "a Tor onion service (RFC 7686)",
    "i2p": "an I2P name",
    "invalid": "never a real name (RFC 6761)",
    "alt": "outside the DNS (RFC 9476)",
}
#: Names of this machine or its own network: RFC 6761's `localhost`, RFC 6762's `.local`
#: (multicast DNS), RFC 8375's `home.arpa` and ICANN's `.internal`. Refused like private
#: addresses (allowed only where `[federation] allow_private_addresses` is on).
LOCAL_ONLY: dict[str, str] = {
    "localhost": "this machine (RFC 6761)",
    "local": "the local network's multicast DNS (RFC 6762)",
    "home.arpa": "a home network (RFC 8375)",
    "internal": "a private network (ICANN)",
}

#: What a user part of a handle may hold: RFC 7565's unreserved characters, so that
#: `acct:NAME@HOST` needs no escaping and `@` can never appear in NAME. Mastodon's own
#: usernames are a subset ([a-z0-9_.-]).
_USERNAME = re.compile(r"[A-Za-z0-9_.~-]{1,100}\Z")


class HostError(ValueError):
    """Not a host name or IP address we can compare (the message says why)."""


@functools.lru_cache(maxsize=4096)
def canonical_host(host: str) -> str:
    """The one spelling of `host`: DNS names lower-case in punycode without the trailing
    dot, IPv4 dotted, IPv6 compressed (no brackets). HostError when it is neither."""
    if not host:
        raise HostError("no host")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise HostError("brackets hold IPv6 addresses only")
    if ":" in host:
        if "%" in host:
            raise HostError("a scoped IPv6 address")
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            raise HostError("malformed IPv6 address") from None
    if host.endswith("."):
        host = host[:-1]
    last = host.rsplit(".", 1)[-1]
    if last.isascii() and last.isdigit():
        # Like URL parsers: a host ending in a number is an IPv4 address or nothing.
        try:
            return str(ipaddress.IPv4Address(host))
        except ValueError:
            raise HostError("numeric, but not an IPv4 address") from None
    if _ASCII_HOST.match(host):
        ascii_host = host.lower()
        for label in ascii_host.split("."):
            if label.startswith("xn--") and not _round_trips(label):
                raise HostError(f"{label!r} is not a valid IDNA label")
    else:
        try:
            ascii_host = idna.encode(host, uts46=True).decode("ascii").lower()
        except (idna.IDNAError, UnicodeError) as exc:
            raise HostError(str(exc)) from None
    if len(ascii_host) > MAX_HOST:
        raise HostError(f"longer than {MAX_HOST} characters")
    if not all(_LABEL.match(label) for label in ascii_host.split(".")):
        raise HostError("letters, digits, '-' and '_' only, 63 at most between dots")
    return ascii_host


def _round_trips(label: str) -> bool:
    """An A-label is the IDNA 2008 encoding of a valid U-label, exactly (so that one name
    has one spelling: no other punycode decodes to what it shows)."""
    try:
        return idna.alabel(idna.ulabel(label)).decode("ascii") == label
    except (idna.IDNAError, UnicodeError):
        return False


def _netloc_end(url: str, start: int) -> int:
    ends = [i for i in (url.find(c, start) for c in "/?#") if i >= 0]
    return min(ends) if ends else len(url)


def _split_hostport(hostport: str) -> tuple[str, str | None]:
    """(host, port text or None) of `host[:port]` / `[v6][:port]`; HostError if malformed."""
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise HostError("unbalanced '['")
        host, rest = hostport[:end + 1], hostport[end + 1:]
        if rest and not rest.startswith(":"):
            raise HostError("junk after an IPv6 address")
        return host, rest[1:] if rest else None
    host, colon, port = hostport.partition(":")
    return host, port if colon else None


def canonical_url(url: str) -> str | None:
    """`url` with its scheme and host in their one spelling (path, query and fragment kept
    as given), or None when it is not an absolute http(s) URL with a usable host and port.
    User info is refused: an id with credentials in it names nothing we would fetch."""
    plain = _PLAIN.match(url)
    if plain is not None:
        host = plain.group(2)
        try:
            canon = canonical_host(host)
        except HostError:
            return None
        port = plain.group(3)
        if port and (len(port) > 5 or int(port) > 65535):
            return None
        scheme = plain.group(1)
        if canon == host and scheme in ("http", "https"):
            return url  # the common case: already canonical
        return f"{scheme.lower()}://{canon}{url[plain.end(2):]}"
    scheme, sep, _rest = url.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return None
    start = len(scheme) + 3
    end = _netloc_end(url, start)
    netloc = url[start:end]
    if "@" in netloc:
        return None
    try:
        host, port = _split_hostport(netloc)
        canon = canonical_host(host)
    except HostError:
        return None
    if port is not None and (not port.isdigit() or int(port) > 65535):
        return None
    shown = f"[{canon}]" if ":" in canon else canon
    return f"{scheme.lower()}://{shown}{'' if port is None else ':' + port}{url[end:]}"


def host_of(url: str) -> str:
    """The canonical host of an http(s) (or other) URL; '' when it has none we can read."""
    plain = _PLAIN.match(url)
    try:
        if plain is not None:
            return canonical_host(plain.group(2))
        host = urlsplit(url).hostname
        return canonical_host(host) if host else ""
    except (HostError, ValueError):
        return ""


def http_scheme(url: str) -> str | None:
    """'http' or 'https' when `url` has one of those schemes (in any case), else None."""
    plain = _PLAIN.match(url)
    scheme = plain.group(1) if plain is not None else urlsplit(url).scheme
    scheme = scheme.lower()
    return scheme if scheme in ("http", "https") else None


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, canonical host, port, the scheme's default when none is given): what
    "same origin" compares. ('', '', 0) when it is not an http(s) URL with a usable host
    and port, which no real origin equals."""
    nothing = ("", "", 0)
    plain = _PLAIN.match(url)
    try:
        if plain is not None:
            scheme, host, port = plain.group(1).lower(), plain.group(2), plain.group(3)
            number = int(port) if port else None
        else:
            parts = urlsplit(url)
            scheme, host, number = parts.scheme.lower(), parts.hostname or "", parts.port
        if scheme not in _DEFAULT_PORTS or not host:
            return nothing
        if number is not None and not 0 <= number <= 65535:
            return nothing
        return scheme, canonical_host(host), _DEFAULT_PORTS[scheme] if number is None else number
    except ValueError:  # HostError, or a malformed port or IPv6 literal
        return nothing


def same_origin(a: str, b: str) -> bool:
    """Scheme, host and port equal, and both usable."""
    found = origin(a)
    return found[0] != "" and found == origin(b)


def same_host(a: str, b: str) -> bool:
    """Both URLs name the same host (any scheme or port), and it is a usable one."""
    host = host_of(a)
    return bool(host) and host == host_of(b)


# --- domain blocks --------------------------------------------------------------------


def covering_domain(host: str, blocked: set[str] | frozenset[str]) -> str | None:
    """The blocked entry that covers `host` (itself or a parent domain), if any."""
    current = host
    while True:
        if current in blocked:
            return current
        _, dot, rest = current.partition(".")
        if not dot or ":" in host:
            return None
        current = rest


def covers(domain: str, host: str) -> bool:
    """True when a block on `domain` applies to `host` (equal or a subdomain)."""
    return host == domain or host.endswith("." + domain)


# --- special-use names ----------------------------------------------------------------


def special_use(host: str, *, allow_local: bool) -> str | None:
    """Why a canonical host must not be looked up, or None. `allow_local` lets the names
    of this machine and its network through (development and tests)."""
    for table, allowed in ((NEVER_LOOKED_UP, False), (LOCAL_ONLY, allow_local)):
        if allowed:
            continue
        for suffix, why in table.items():
            if covers(suffix, host):
                return why
    return None


# --- handles ---------------------------------------------------------------------------


def valid_username(name: str | None) -> bool:
    """Whether `name` can be the user part of a handle (`@name@host`)."""
    return name is not None and bool(_USERNAME.match(name))


def handle(username: str | None, host: str) -> str | None:
    """`@username@host` when the name is fit to be shown as one; None otherwise, so that
    a preferredUsername like `admin@other.example` never reads as another account."""
    return f"@{username}@{host}" if valid_username(username) and host else None
