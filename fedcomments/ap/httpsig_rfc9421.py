"""RFC 9421 HTTP message signatures: the signature base, reading `Signature-Input` and
`Signature`, and signing. Verification, shared with draft-cavage, is in httpsig.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from fedcomments.ap import keys, sfv
from fedcomments.ap.httpsig_request import (
    ParsedSignature,
    SignatureError,
    SignatureFailure,
    _aware,
    _fail,
    _Request,
    _signing_setup,
    _timestamp,
    content_digest,
)

_RFC9421_ALGORITHMS: dict[str, keys.Primitive] = {
    "rsa-v1_5-sha256": "rsa-pkcs1-sha256",
    "rsa-pss-sha512": "rsa-pss-sha512",
    "ed25519": "ed25519",
}
_DERIVED = {"@method", "@target-uri", "@authority", "@scheme", "@request-target", "@path", "@query"}


def _rfc9421_base(covered: tuple[str, ...], req: _Request, signature_params: str) -> bytes:
    lines = [f'"{name}": {req.component(name)}' for name in covered]
    lines.append(f'"@signature-params": {signature_params}')
    return "\n".join(lines).encode("utf-8")


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
