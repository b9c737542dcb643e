"""HTTP request signatures for federation: draft-cavage-12 (as Mastodon speaks it) and RFC 9421,
signing and verifying, with body digests and typed failures. Pure: no I/O; `now` is passed in."""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

from fedcomments.ap import keys, sfv
from fedcomments.errors import Unauthorized

#: Mastodon accepts a signature until created + 5 min expiry + 1 h clock skew, and refuses one
#: created more than 1 h in the future; we use the same effective window for Date and `created`.
MAX_AGE = timedelta(minutes=65)
MAX_FUTURE = timedelta(minutes=60)

_CAVAGE_ALGORITHMS: dict[str, keys.Primitive] = {
    "rsa-sha256": "rsa-pkcs1-sha256",
    "ed25519": "ed25519",
}
_RFC9421_ALGORITHMS: dict[str, keys.Primitive] = {
    "rsa-v1_5-sha256": "rsa-pkcs1-sha256",
    "rsa-pss-sha512": "rsa-pss-sha512",
    "ed25519": "ed25519",
}
_DERIVED = {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}
_PSEUDO = {"(request-target)", "(created)", "(expires)"}
_HASHES = {"sha-256": "sha256", "sha-512": "sha512"}  # digest label -> hashlib name
_OBS_FOLD = re.compile(r"\r\n[ \t]+")
_UNESCAPE = re.compile(r"\\(.)")
_CAVAGE_PARAM = re.compile(
    # The quoted value as an unrolled loop (runs of plain characters, then one escape):
    # a per-character alternation walks a 344-character RSA signature very slowly.
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^",\s]*))\s*(?:,|$)'
)


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
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise ValueError(f"bad port in URL {url!r}") from exc
        if not parts.scheme or not host:
            raise ValueError(f"not an absolute URL: {url!r}")
        scheme = parts.scheme.lower()
        host = f"[{host}]" if ":" in host else host
        default = {"http": 80, "https": 443}.get(scheme)
        authority = host if port is None or port == default else f"{host}:{port}"
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


# --- signature bases ---------------------------------------------------------------------------


def _cavage_base(covered: tuple[str, ...], req: _Request, params: Mapping[str, object]) -> bytes:
    lines = []
    for name in covered:
        if name == "(request-target)":
            value = f"{req.method.lower()} {req.request_target}"
        elif name in ("(created)", "(expires)"):
            value = str(params[name[1:-1]])  # the parser made sure the parameter is there
        elif name == "host" and "host" not in req.fields:
            value = req.authority  # no Host field (e.g. HTTP/2): the authority stands for it
        else:
            value = req.header(name)
        lines.append(f"{name}: {value}")
    return "\n".join(lines).encode("utf-8")


def _rfc9421_base(covered: tuple[str, ...], req: _Request, signature_params: str) -> bytes:
    lines = [f'"{name}": {req.component(name)}' for name in covered]
    lines.append(f'"@signature-params": {signature_params}')
    return "\n".join(lines).encode("utf-8")


# --- parsing -----------------------------------------------------------------------------------


def _cavage_params(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    pos, value = 0, value.strip()
    while pos < len(value):
        match = _CAVAGE_PARAM.match(value, pos)
        if not match or match.end() == pos:
            raise _fail(SignatureFailure.MALFORMED, f"cannot parse signature parameters at {pos}")
        name = match.group(1).lower()  # keyId, algorithm … compared case-insensitively
        if name in params:
            raise _fail(SignatureFailure.MALFORMED, f"duplicate signature parameter {name!r}")
        quoted = match.group(2)
        if quoted is None:
            params[name] = match.group(3)
        else:
            params[name] = _UNESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
        pos = match.end()
    return params


def _parse_cavage(raw: str, req: _Request) -> ParsedSignature:
    params = _cavage_params(raw)
    if not params.get("keyid") or not params.get("signature"):
        raise _fail(SignatureFailure.MALFORMED, "keyId and signature are required")
    algorithm = params["algorithm"].lower() if "algorithm" in params else None
    if algorithm not in (None, "hs2019", *_CAVAGE_ALGORITHMS):
        raise _fail(SignatureFailure.UNSUPPORTED_ALGORITHM, f"algorithm {algorithm!r}")
    # Without `headers`, draft-12 means (created) for hs2019 while its rsa-sha256 examples mean
    # date; Mastodon settles it by algorithm, and so do we.
    default = "(created)" if algorithm in (None, "hs2019") else "date"
    covered = tuple(params.get("headers", default).lower().split())
    if not covered:
        raise _fail(SignatureFailure.MALFORMED, "empty headers parameter")
    for name in covered:
        if name.startswith("(") and name not in _PSEUDO:
            raise _fail(SignatureFailure.UNSUPPORTED_COMPONENT, f"pseudo-header {name}")
        if name in ("(created)", "(expires)"):
            # draft-12 section 2.3, enforced by Mastodon: not allowed with rsa-* algorithms.
            if algorithm == "rsa-sha256":
                raise _fail(SignatureFailure.MALFORMED, f"{name} cannot be used with rsa-sha256")
            if name[1:-1] not in params:
                raise _fail(SignatureFailure.MALFORMED, f"{name} covered without its parameter")
    try:
        signature = base64.b64decode("".join(params["signature"].split()), validate=True)
    except binascii.Error as exc:
        raise _fail(SignatureFailure.MALFORMED, "signature is not base64") from exc
    frozen = MappingProxyType(dict(params))
    return ParsedSignature(
        scheme="cavage",
        key_id=params["keyid"],
        algorithm=algorithm,
        covered=covered,
        created=_timestamp(params["created"], "created") if "created" in params else None,
        expires=_timestamp(params["expires"], "expires") if "expires" in params else None,
        signature=signature,
        signature_base=_cavage_base(covered, req, frozen),
        params=frozen,
    )


def _rfc9421_candidate(
    label: str, member: sfv.Member, sig: sfv.Member | None, req: _Request
) -> ParsedSignature:
    if not isinstance(member, sfv.InnerList) or not isinstance(sig, sfv.Item):
        raise _fail(SignatureFailure.MALFORMED, f"label {label!r} lacks an input list or signature")
    if not isinstance(sig.value, bytes):
        raise _fail(SignatureFailure.MALFORMED, f"signature {label!r} is not a byte sequence")
    covered: list[str] = []
    for item in member.items:
        name = item.value
        if not isinstance(name, str) or isinstance(name, sfv.Token) or name != name.lower():
            raise _fail(SignatureFailure.MALFORMED, f"bad component identifier {name!r}")
        if item.params or (name.startswith("@") and name not in _DERIVED):
            raise _fail(SignatureFailure.UNSUPPORTED_COMPONENT, f"component {name!r} {item.params}")
        if name in covered or name == "@signature-params":
            raise _fail(SignatureFailure.MALFORMED, f"component {name!r} repeated or reserved")
        covered.append(name)
    params = member.params
    key_id, alg = params.get("keyid"), params.get("alg")
    if not isinstance(key_id, str) or not key_id:
        raise _fail(SignatureFailure.MALFORMED, "keyid parameter missing")
    if alg is not None and alg not in _RFC9421_ALGORITHMS:
        raise _fail(SignatureFailure.UNSUPPORTED_ALGORITHM, f"alg {alg!r}")
    for name in ("created", "expires"):
        if name in params and type(params[name]) is not int:
            raise _fail(SignatureFailure.MALFORMED, f"{name} must be an integer")
    try:
        signature_params = sfv.serialize_member(member)
    except sfv.StructuredFieldError as exc:
        raise _fail(SignatureFailure.MALFORMED, str(exc)) from exc
    return ParsedSignature(
        scheme="rfc9421",
        key_id=key_id,
        algorithm=str(alg) if alg is not None else None,
        covered=tuple(covered),
        created=_timestamp(params["created"], "created") if "created" in params else None,
        expires=_timestamp(params["expires"], "expires") if "expires" in params else None,
        signature=sig.value,
        signature_base=_rfc9421_base(tuple(covered), req, signature_params),
        label=label,
        params=MappingProxyType(dict(params)),
        signature_params=signature_params,
    )


def _parse_rfc9421(req: _Request) -> ParsedSignature:
    try:
        inputs = sfv.parse_dictionary(req.fields["signature-input"])
        signatures = sfv.parse_dictionary(req.fields.get("signature", ""))
    except sfv.StructuredFieldError as exc:
        raise _fail(SignatureFailure.MALFORMED, str(exc)) from exc
    if not inputs:
        raise _fail(SignatureFailure.MISSING, "Signature-Input is empty")
    # Several signatures can arrive (a proxy may add its own label next to the sender's). We take
    # the first label, in Signature-Input order, that we can fully read; we never fall back to
    # another label after a cryptographic failure, which keeps it to one key fetch per request.
    errors: list[SignatureError] = []
    for label, member in inputs.items():
        try:
            return _rfc9421_candidate(label, member, signatures.get(label), req)
        except SignatureError as exc:
            errors.append(exc)
    raise errors[0]


def parse_request_signature(method: str, url: str, headers: Mapping[str, str]) -> ParsedSignature:
    """Read the request's signature without any key, so the caller can vet `key_id` first.

    Prefers RFC 9421 when Signature-Input is present, else draft-cavage from `Signature` or
    `Authorization: Signature …`. `url` is the absolute URL the request was sent to, with the
    path and query exactly as received. Raises SignatureError: MISSING, MALFORMED,
    UNSUPPORTED_ALGORITHM, UNSUPPORTED_COMPONENT, or MISSING_COMPONENT (a covered header absent).
    """
    req = _request(method, url, headers)
    if "signature-input" in req.fields:
        parsed = _parse_rfc9421(req)
    elif "signature" in req.fields:
        parsed = _parse_cavage(req.fields["signature"], req)
    else:
        scheme, _, rest = req.fields.get("authorization", "").partition(" ")
        if scheme.lower() != "signature":
            raise _fail(SignatureFailure.MISSING,
                        "no Signature-Input, Signature or Authorization header")
        parsed = _parse_cavage(rest, req)
    return replace(parsed, source=(method, url, headers, req))


# --- verification ------------------------------------------------------------------------------


def _check_coverage(parsed: ParsedSignature, req: _Request, has_body: bool) -> None:
    covered = set(parsed.covered)
    if parsed.scheme == "cavage":
        missing = [name for name in ("(request-target)", "host") if name not in covered]
        missing += [] if covered & {"date", "(created)"} else ["date or (created)"]
        digest = "digest"
    else:
        # @path alone would leave the query unsigned, so it needs @query when there is one.
        path_ok = "@path" in covered and ("@query" in covered or req.query is None)
        target_ok = "@target-uri" in covered or (
            "@authority" in covered and ("@request-target" in covered or path_ok)
        )
        missing = [] if "@method" in covered else ["@method"]
        missing += [] if target_ok else ["@target-uri (or @authority with the path and query)"]
        missing += [] if parsed.created is not None else ["the created parameter"]
        digest = "content-digest"
    if missing:
        message = "signature must cover " + ", ".join(missing)
        raise _fail(SignatureFailure.MISSING_COMPONENT, message)
    if has_body and digest not in covered:
        raise _fail(SignatureFailure.DIGEST_MISSING, f"a request with a body must sign {digest}")


def _check_window(when: datetime, now: datetime, what: str) -> None:
    if not now - MAX_AGE <= when <= now + MAX_FUTURE:
        message = f"{what} {when.isoformat()} is outside the window around {now.isoformat()}"
        raise _fail(SignatureFailure.DATE_OUT_OF_WINDOW, message)


def _check_times(parsed: ParsedSignature, req: _Request, now: datetime) -> None:
    if "date" in parsed.covered:
        try:
            date = parsedate_to_datetime(req.fields["date"])
        except (TypeError, ValueError, IndexError) as exc:
            raise _fail(SignatureFailure.MALFORMED, f"bad Date {req.fields['date']!r}") from exc
        _check_window(date if date.tzinfo else date.replace(tzinfo=UTC), now, "Date")
    if parsed.created is not None:
        _check_window(parsed.created, now, "created")
    if parsed.expires is not None and parsed.expires < now:
        raise _fail(SignatureFailure.EXPIRED, f"signature expired at {parsed.expires.isoformat()}")


def _digests(parsed: ParsedSignature, req: _Request) -> dict[str, bytes]:
    """The digests we know how to check, as {algorithm: raw digest}; unknown ones are ignored."""
    found: dict[str, bytes] = {}
    if parsed.scheme == "cavage":
        for part in req.fields["digest"].split(","):
            name, _, value = part.strip().partition("=")
            if name.lower() in _HASHES:
                try:
                    found[name.lower()] = base64.b64decode(value.strip(), validate=True)
                except binascii.Error as exc:
                    raise _fail(SignatureFailure.DIGEST_MISMATCH, f"{name} is not base64") from exc
        return found
    try:
        members = sfv.parse_dictionary(req.fields["content-digest"])
    except sfv.StructuredFieldError as exc:
        raise _fail(SignatureFailure.MALFORMED, f"Content-Digest: {exc}") from exc
    for name, member in members.items():
        if name in _HASHES:
            if not isinstance(member, sfv.Item) or not isinstance(member.value, bytes):
                raise _fail(SignatureFailure.MALFORMED, f"Content-Digest {name} is not bytes")
            found[name] = member.value
    return found


def _check_digest(parsed: ParsedSignature, req: _Request, body: bytes) -> None:
    digests = _digests(parsed, req)
    if not digests:
        raise _fail(SignatureFailure.DIGEST_MISSING, "no SHA-256 or SHA-512 digest of the body")
    for name, expected in digests.items():
        if not hmac.compare_digest(expected, hashlib.new(_HASHES[name], body).digest()):
            raise _fail(SignatureFailure.DIGEST_MISMATCH, f"{name} digest does not match the body")


def _primitives(parsed: ParsedSignature, kind: keys.KeyKind) -> tuple[keys.Primitive, ...]:
    algorithm = parsed.algorithm
    if algorithm is None or algorithm == "hs2019":
        # hs2019 and a missing alg mean "as the key says". Mastodon signs hs2019 with RSA
        # PKCS#1 v1.5 SHA-256. RFC 9421's own RSA examples omit alg and use RSA-PSS SHA-512,
        # so there we also try PSS after PKCS#1 v1.5.
        if kind == "ed25519":
            return ("ed25519",)
        if parsed.scheme == "cavage":
            return ("rsa-pkcs1-sha256",)
        return ("rsa-pkcs1-sha256", "rsa-pss-sha512")
    table = _CAVAGE_ALGORITHMS if parsed.scheme == "cavage" else _RFC9421_ALGORITHMS
    if keys.primitive_key_kind(table[algorithm]) != kind:
        raise _fail(SignatureFailure.KEY_TYPE_MISMATCH, f"{algorithm} with a {kind} key")
    return (table[algorithm],)


def _checked_base(
    parsed: ParsedSignature,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    now: datetime,
) -> bytes:
    """Run every key-independent check in order; return the signature base they vetted."""
    _aware(now)
    source = parsed.source
    if source is not None and source[2] is headers and source[0] == method and source[1] == url:
        req = source[3]
    else:
        req = _request(method, url, headers)
    has_body = method.upper() == "POST" or bool(body)
    _check_coverage(parsed, req, has_body)
    if parsed.scheme == "cavage":
        base = _cavage_base(parsed.covered, req, parsed.params)
    else:
        base = _rfc9421_base(parsed.covered, req, parsed.signature_params or "")
    _check_times(parsed, req, now)
    if has_body:
        _check_digest(parsed, req, body or b"")
    return base


def check_request(
    parsed: ParsedSignature,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    now: datetime,
) -> None:
    """Every check that needs no key; return None or raise SignatureError.

    The same checks, in the same order and with the same failures, as `verify_request`
    makes before it reaches the key: coverage (MISSING_COMPONENT, DIGEST_MISSING), every
    covered header present (MISSING_COMPONENT), the time window (DATE_OUT_OF_WINDOW,
    MALFORMED for an unreadable Date), `expires` (EXPIRED) and the body digest
    (DIGEST_MISSING, DIGEST_MISMATCH, MALFORMED). A request passing it can only fail
    verification because of its key, so a caller may run it before fetching one.
    """
    _checked_base(parsed, method=method, url=url, headers=headers, body=body, now=now)


def verify_request(
    parsed: ParsedSignature,
    public_key_pem: str,
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    now: datetime,
) -> None:
    """Check `parsed` against this request and key; return None or raise SignatureError.

    In order: coverage (cavage: (request-target), host, date or (created), digest when there is
    a body; RFC 9421: @method, the target, `created`, content-digest when there is a body), the
    time window, the body digest (all of these are `check_request`), then the key type and the
    signature over the base rebuilt from *these* arguments. A request "has a body" when it is
    a POST or `body` is non-empty.
    """
    base = _checked_base(parsed, method=method, url=url, headers=headers, body=body, now=now)
    try:
        kind = keys.public_key_kind(public_key_pem)
    except keys.KeyFormatError as exc:
        raise _fail(SignatureFailure.INVALID_KEY, str(exc)) from exc
    primitives = _primitives(parsed, kind)
    if not any(keys.verify_bytes(public_key_pem, p, parsed.signature, base) for p in primitives):
        message = f"signature by {parsed.key_id} does not verify"
        raise _fail(SignatureFailure.INVALID_SIGNATURE, message)


# --- signing -----------------------------------------------------------------------------------


def _signing_setup(
    method: str, url: str, headers: Mapping[str, str], private_key_pem: str
) -> tuple[_Request, bool]:
    """The request view (ValueError for a bad URL) and whether the key is RSA (else Ed25519)."""
    return _Request.of(method, url, headers), keys.private_key_kind(private_key_pem) == "rsa"


def sign_request_cavage(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    key_id: str,
    private_key_pem: str,
    now: datetime,
) -> dict[str, str]:
    """Headers to add (Host, Date, Digest when there is a body, Signature), Mastodon style."""
    if any(c in key_id for c in '"\\\r\n'):
        raise ValueError(f"key id cannot be quoted: {key_id!r}")
    req, rsa = _signing_setup(method, url, headers, private_key_pem)
    added = {"Host": req.authority, "Date": http_date(now)}
    covered = ["(request-target)", "host", "date"]
    if body is not None:
        added["Digest"] = body_digest_cavage(body)
        covered += ["digest", "content-type"] if "content-type" in req.fields else ["digest"]
    elif "accept" in req.fields:
        covered.append("accept")
    req.fields.update((name.lower(), value) for name, value in added.items())
    base = _cavage_base(tuple(covered), req, {})
    signature = keys.sign_bytes(private_key_pem, "rsa-pkcs1-sha256" if rsa else "ed25519", base)
    added["Signature"] = (
        f'keyId="{key_id}",algorithm="{"rsa-sha256" if rsa else "hs2019"}",'
        f'headers="{" ".join(covered)}",signature="{base64.b64encode(signature).decode()}"'
    )
    return added


def sign_request_rfc9421(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    key_id: str,
    private_key_pem: str,
    now: datetime,
    label: str = "sig1",
) -> dict[str, str]:
    """Headers to add (Content-Digest when there is a body, Signature-Input, Signature)."""
    req, rsa = _signing_setup(method, url, headers, private_key_pem)
    added: dict[str, str] = {}
    covered = ["@method", "@target-uri"]
    if body is not None:
        added["Content-Digest"] = req.fields["content-digest"] = content_digest(body)
        covered.append("content-digest")
        covered += ["content-type"] if "content-type" in req.fields else []
    params: sfv.Params = {
        "created": int(_aware(now).timestamp()),
        "keyid": key_id,
        "alg": "rsa-v1_5-sha256" if rsa else "ed25519",
    }
    member = sfv.InnerList(tuple(sfv.Item(name) for name in covered), params)
    base = _rfc9421_base(tuple(covered), req, sfv.serialize_member(member))
    signature = keys.sign_bytes(private_key_pem, "rsa-pkcs1-sha256" if rsa else "ed25519", base)
    added["Signature-Input"] = sfv.serialize_dictionary({label: member})
    added["Signature"] = sfv.serialize_dictionary({label: sfv.Item(signature)})
    return added
