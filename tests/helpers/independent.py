"""Signing and verifying with implementations that are not ours (cross-checks).

RFC 9421: the `http-message-signatures` package. draft-cavage: `pyhttpsig` (import httpsig).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Mapping
from datetime import datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)
from http_message_signatures.structures import CaseInsensitiveDict
from httpsig import HeaderSigner, HeaderVerifier


@dataclasses.dataclass
class Message:
    """The request shape http_message_signatures reads."""

    method: str
    url: str
    headers: CaseInsensitiveDict


def _host(url: str) -> str:
    return urlsplit(url).netloc


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def cavage_sign(method: str, url: str, headers: dict[str, str], body: bytes | None,
                key_id: str, pem: str, now: datetime) -> dict[str, str]:
    """draft-cavage rsa-sha256 signature made by pyhttpsig, Mastodon's header set."""
    added = {"Host": _host(url), "Date": format_datetime(now, usegmt=True)}
    names = ["(request-target)", "host", "date"]
    if body is not None:
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        added["Digest"] = f"SHA-256={digest}"
        names.append("digest")
    if "Content-Type" in headers:
        names.append("content-type")
    signer = HeaderSigner(key_id, pem, algorithm="rsa-sha256", sign_header="signature",
                          headers=names)
    signed = signer.sign({**headers, **added}, method=method, path=_path(url))
    return {**added, "Signature": signed["signature"]}


def rfc9421_sign(method: str, url: str, headers: dict[str, str], body: bytes | None,
                 key_id: str, pem: str, now: datetime) -> dict[str, str]:
    """RFC 9421 rsa-v1_5-sha256 signature (with Content-Digest) by http-message-signatures."""
    message = Message(method, url, CaseInsensitiveDict(headers))
    covered = ["@method", "@target-uri"]
    if "Content-Type" in headers:
        covered.append("content-type")
    HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: pem.encode()}),
    ).sign(message, key_id=key_id, created=now, label="sig1", body=body,
           covered_component_ids=tuple(covered))
    return {k: v for k, v in message.headers.items() if k.lower() not in
            {h.lower() for h in headers}}


def cavage_verify(headers: Mapping[str, str], public_pem: str, method: str, path: str) -> bool:
    """pyhttpsig's verdict on a draft-cavage signature covering Mastodon's headers."""
    required = ["(request-target)", "host", "date", "digest"]
    verifier = HeaderVerifier(dict(headers), public_pem, required_headers=required,
                              method=method, path=path, sign_header="signature")
    return bool(verifier.verify())


def rfc9421_verify(headers: Mapping[str, str], public_pem: str, method: str, url: str,
                   body: bytes, key_id: str) -> bool:
    """http-message-signatures' verdict on an RFC 9421 signature with content-digest."""
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.RSA_V1_5_SHA256,
        key_resolver=MappingKeyResolver(public_keys={key_id: public_pem.encode()},
                                        private_keys={}),
    )
    results = verifier.verify(Message(method, url, CaseInsensitiveDict(dict(headers))),
                              body=body, require_components=("@method", "content-digest"))
    return bool(results)
