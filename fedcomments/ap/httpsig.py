"""HTTP request signatures, the receiving side: read a request's signature (RFC 9421 or
draft-cavage) and verify it: coverage, time window, body digest, then the key. Pure: no I/O;
`now` is passed in.

This module is also where the rest of the code takes signature names from: signing and the
digest helpers live in httpsig_cavage.py and httpsig_rfc9421.py, the failures, the parsed
signature and the request view in httpsig_request.py, and are re-exported here."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from fedcomments.ap import keys, sfv
from fedcomments.ap.httpsig_cavage import (
    _CAVAGE_ALGORITHMS,
    _cavage_base,
    _parse_cavage,
    sign_request_cavage,
)
from fedcomments.ap.httpsig_request import (
    ParsedSignature,
    SignatureError,
    SignatureFailure,
    _aware,
    _fail,
    _Request,
    _request,
    body_digest_cavage,
    content_digest,
    host_names,
    http_date,
)
from fedcomments.ap.httpsig_rfc9421 import (
    _RFC9421_ALGORITHMS,
    _parse_rfc9421,
    _rfc9421_base,
    sign_request_rfc9421,
)

__all__ = [
    "MAX_AGE", "MAX_FUTURE", "ParsedSignature", "SignatureError", "SignatureFailure",
    "body_digest_cavage", "check_request", "content_digest", "http_date",
    "parse_request_signature", "sign_request_cavage", "sign_request_rfc9421", "verify_request",
]

#: Mastodon accepts a signature until created + 5 min expiry + 1 h clock skew, and refuses one
#: created more than 1 h in the future; we use the same effective window for Date and `created`.
MAX_AGE = timedelta(minutes=65)
MAX_FUTURE = timedelta(minutes=60)
_HASHES = {"sha-256": "sha256", "sha-512": "sha512"}  # digest label -> hashlib name


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
    # RFC 9421's @authority comes from `url` (our own base URL), but a Host field is
    # whatever the sender wrote: a request signed for another server (and replayed here)
    # would otherwise verify. The covered Host must name the URL it arrived at.
    if "host" in covered and "host" in req.fields and not host_names(req, req.fields["host"]):
        raise _fail(SignatureFailure.WRONG_HOST,
                    f"signed for host {req.fields['host'][:100]!r}, not {req.authority!r}")


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
    makes before it reaches the key: coverage (MISSING_COMPONENT, DIGEST_MISSING), a covered
    Host naming another authority than `url`'s (WRONG_HOST), every
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
    a body; RFC 9421: @method, the target, `created`, content-digest when there is a body; a
    covered Host must name `url`'s authority), the
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
