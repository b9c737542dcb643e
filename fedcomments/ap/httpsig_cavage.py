"""draft-cavage-12 HTTP signatures as Mastodon speaks them: the signature base, reading the
`Signature` (or `Authorization: Signature`) parameters, and signing. Verification, shared
with RFC 9421, is in httpsig.py."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from fedcomments.ap import keys
from fedcomments.ap.httpsig_request import (
    ParsedSignature,
    SignatureFailure,
    _fail,
    _Request,
    _signing_setup,
    _timestamp,
    body_digest_cavage,
    http_date,
)

_CAVAGE_ALGORITHMS: dict[str, keys.Primitive] = {
    "rsa-sha256": "rsa-pkcs1-sha256",
    "ed25519": "ed25519",
}
_PSEUDO = {"(request-target)", "(created)", "(expires)"}
_UNESCAPE = re.compile(r"\\(.)")
_CAVAGE_PARAM = re.compile(
    # The quoted value as an unrolled loop (runs of plain characters, then one escape):
    # a per-character alternation walks a 344-character RSA signature very slowly.
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^",\s]*))\s*(?:,|$)'
)


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
