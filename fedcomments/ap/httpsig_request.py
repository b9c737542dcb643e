"""What both HTTP signature schemes share: typed failures, the parsed signature, the request
as a signature sees it (normalised once), Unix and HTTP times, and body digests. Pure."""

from __future__ import annotations

import base64
import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import MappingProxyType
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from fedcomments.ap import keys, sfv
from fedcomments.errors import Unauthorized

_OBS_FOLD = re.compile(r"\r\n[ \t]+")


class SignatureFailure(enum.Enum):
    """Why a request signature was refused; the web layer maps these to responses."""

    MISSING = "missing"
    MALFORMED = "malformed"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNSUPPORTED_COMPONENT = "unsupported_component"
    MISSING_COMPONENT = "missing_component"
    DIGEST_MISSING = "digest_missing"
    DIGEST_MISMATCH = "digest_mismatch"
    DATE_OUT_OF_WINDOW = "date_out_of_window"
    WRONG_HOST = "wrong_host"
    EXPIRED = "expired"
    INVALID_KEY = "invalid_key"
    KEY_TYPE_MISMATCH = "key_type_mismatch"
    INVALID_SIGNATURE = "invalid_signature"


class SignatureError(Unauthorized):
    """A request signature is absent or does not hold; `.failure` says which rule broke."""

    def __init__(self, failure: SignatureFailure, message: str) -> None:
        super().__init__(f"{failure.value}: {message}")
        self.failure = failure


@dataclass(frozen=True)
class ParsedSignature:
    """One signature read from request headers, before any key is involved.

    `covered` holds lower-cased cavage header names or RFC 9421 component names; `params` the
    raw signature parameters; `signature_base` the exact bytes the signer must have signed,
    as rebuilt from the request given to the parser (verification rebuilds it again).
    """

    scheme: Literal["cavage", "rfc9421"]
    key_id: str
    algorithm: str | None
    covered: tuple[str, ...]
    created: datetime | None
    expires: datetime | None
    signature: bytes
    signature_base: bytes
    label: str | None = None
    params: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    #: RFC 9421 only: the canonical `@signature-params` value (the last line of the base).
    signature_params: str | None = None
    #: The request view it was parsed from, with the (method, url, headers) it was built
    #: of: checks on the very same request reuse it instead of normalising it again.
    source: tuple[str, str, Mapping[str, str], _Request] | None = field(
        default=None, compare=False, repr=False)


@dataclass(frozen=True)
class _Request:
    """What a signature can cover, normalised once: method, URL parts and header fields."""

    method: str
    scheme: str
    authority: str  # host[:port], the port only when it is not the scheme's default
    path: str
    query: str | None
    uri: str
    fields: dict[str, str]  # lower-cased names; repeated field lines joined by ", " in order

    @classmethod
    def of(cls, method: str, url: str, headers: Mapping[str, str]) -> _Request:
        parts = urlsplit(url)
        if not parts.scheme or not parts.hostname:
            raise ValueError(f"not an absolute URL: {url!r}")
        scheme = parts.scheme.lower()
        authority = authority_of(parts, scheme)
        path, query = parts.path or "/", parts.query or None
        uri = f"{scheme}://{parts.netloc.rpartition('@')[2]}{path}" + (f"?{query}" if query else "")
        fields: dict[str, list[str]] = {}
        for name, value in headers.items():  # multidicts yield every field line
            if "\n" in value:
                value = _OBS_FOLD.sub(" ", value)
            fields.setdefault(name.lower(), []).append(value.strip(" \t"))
        joined = {name: ", ".join(values) for name, values in fields.items()}
        return cls(method, scheme, authority, path, query, uri, joined)

    @property
    def request_target(self) -> str:
        return self.path if self.query is None else f"{self.path}?{self.query}"

    def header(self, name: str) -> str:
        if name not in self.fields:
            raise _fail(SignatureFailure.MISSING_COMPONENT, f"covered header {name!r} is absent")
        return self.fields[name]

    def component(self, name: str) -> str:
        """An RFC 9421 component value: a derived `@…` component or a header field."""
        derived = {
            "@method": self.method,
            "@target-uri": self.uri,
            "@authority": self.authority,
            "@scheme": self.scheme,
            "@request-target": self.request_target,
            "@path": self.path,
            "@query": f"?{self.query or ''}",
        }
        return derived[name] if name.startswith("@") else self.header(name)


def authority_of(parts: SplitResult, scheme: str) -> str:
    """host[:port] as a signature names it: the host lower-case, the port only when it is
    not the scheme's default. ValueError for a malformed port."""
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in {parts.netloc!r}") from exc
    host = host or ""
    host = f"[{host}]" if ":" in host else host
    default = {"http": 80, "https": 443}.get(scheme)
    return host if port is None or port == default else f"{host}:{port}"


def host_names(req: _Request, value: str) -> bool:
    """Whether a Host field value names the request's authority (case and a default port
    aside): a signature covering `host` is a signature for that host only."""
    try:
        parts = urlsplit(f"{req.scheme}://{value.strip()}")
        return not (parts.path or parts.query or parts.fragment or parts.username) and (
            authority_of(parts, req.scheme) == req.authority)
    except ValueError:
        return False


def _request(method: str, url: str, headers: Mapping[str, str]) -> _Request:
    try:
        return _Request.of(method, url, headers)
    except ValueError as exc:
        raise _fail(SignatureFailure.MALFORMED, str(exc)) from exc


def _fail(failure: SignatureFailure, message: str) -> SignatureError:
    return SignatureError(failure, message)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return now


def _timestamp(value: object, name: str) -> datetime:
    try:
        number = float(value) if isinstance(value, str) else value
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise TypeError(name)
        return datetime.fromtimestamp(number, UTC)
    except (TypeError, ValueError, OverflowError, OSError) as exc:
        raise _fail(SignatureFailure.MALFORMED, f"{name} is not a Unix time: {value!r}") from exc


def http_date(now: datetime) -> str:
    """RFC 7231 IMF-fixdate, e.g. 'Sun, 06 Nov 1994 08:49:37 GMT'."""
    return format_datetime(_aware(now).astimezone(UTC).replace(microsecond=0), usegmt=True)


def body_digest_cavage(body: bytes) -> str:
    """RFC 3230 `Digest` value as Mastodon sends it: 'SHA-256=<base64>'."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest(body: bytes) -> str:
    """RFC 9530 `Content-Digest` value: 'sha-256=:<base64>:'."""
    return sfv.serialize_dictionary({"sha-256": sfv.Item(hashlib.sha256(body).digest())})


def _signing_setup(
    method: str, url: str, headers: Mapping[str, str], private_key_pem: str
) -> tuple[_Request, bool]:
    """The request view (ValueError for a bad URL) and whether the key is RSA (else Ed25519)."""
    return _Request.of(method, url, headers), keys.private_key_kind(private_key_pem) == "rsa"
