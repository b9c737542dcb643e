"""HTTP signatures: spec vectors, cross-checks with independent libraries, every failure reason."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import http_sf
import pytest
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)
from http_message_signatures.structures import CaseInsensitiveDict
from httpsig import HeaderSigner, HeaderVerifier  # the pyhttpsig package
from multidict import CIMultiDict

from fedcomments.ap import httpsig, keys, sfv
from fedcomments.ap.httpsig import SignatureError
from fedcomments.ap.httpsig import SignatureFailure as F
from fedcomments.errors import FedcommentsError
from tests.helpers.independent import Message
from tests.helpers.vectors import (
    CAVAGE_PRIVATE,
    CAVAGE_PUBLIC,
    RFC_ED25519_PRIVATE,
    RFC_ED25519_PUBLIC,
    RFC_RSA_PSS_PUBLIC,
)

# --- published vectors ---------------------------------------------------------------------------

# draft-cavage-http-signatures-12, appendix C: the request signed with the "Test" key.
CAVAGE_URL = "https://example.com/foo?param=value&pet=dog"
CAVAGE_NOW = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)
CAVAGE_HEADERS = {
    "Host": "example.com",
    "Date": "Sun, 05 Jan 2014 21:31:40 GMT",
    "Content-Type": "application/json",
    "Digest": "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
    "Content-Length": "18",
}
BODY = b'{"hello": "world"}'
C1_SIGNATURE = (
    "SjWJWbWN7i0wzBvtPl8rbASWz5xQW6mcJmn+ibttBqtifLN7Sazz6m79cNfwwb8DMJ5cou1s7uEGKKCs+FLEEaDV5l"
    "p7q25WqS+lavg7T8hc0GppauB6hbgEKTwblDHYGEtbGmtdHgVCk9SuS13F0hZ8FD0k/5OxEPXe5WozsbM="
)
C2_SIGNATURE = (
    "qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HM"
    "be8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0="
)
C3_SIGNATURE = (
    "vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52La"
    "EUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE="
)

# RFC 9421 appendix B: the request (B.2) and its signatures by the B.1 test keys.
RFC_URL = "https://example.com/foo?param=Value&Pet=dog"
RFC_CREATED = datetime.fromtimestamp(1618884473, UTC)
RFC_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest": "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNN"
    "yealdVLvRwEmTHWXvJwew==:",
    "Content-Length": "18",
}
B21_INPUT = 'sig-b21=();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"'
B21_SIGNATURE = (
    "sig-b21=:d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wg"
    "GxbtRxf8Udx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx"
    "2VjBqJzsPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnL"
    "H1g+s++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q==:"
)
B23_INPUT = (
    'sig-b23=("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" '
    '"content-length");created=1618884473;keyid="test-key-rsa-pss"'
)
B23_SIGNATURE = (
    "sig-b23=:bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683"
    "+qRpRRU5p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJH1"
    "pFkh/aYA2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8LZH"
    "896+QIF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA==:"
)
B26_INPUT = (
    'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");'
    'created=1618884473;keyid="test-key-ed25519"'
)
B26_SIGNATURE = (
    "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRC"
    "w==:"
)

# --- our own scenario ----------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
INBOX = "https://blog.example/inbox"
KEY_ID = "https://remote.example/users/alice#main-key"
AS_JSON = {"Content-Type": "application/activity+json"}


@pytest.fixture(scope="module")
def rsa() -> keys.KeyPair:
    return keys.generate_rsa_keypair()


@pytest.fixture(scope="module")
def other_rsa() -> keys.KeyPair:
    return keys.generate_rsa_keypair()


@pytest.fixture(scope="module")
def ed() -> keys.KeyPair:
    return keys.generate_ed25519_keypair()


def cavage_signed(
    pair: keys.KeyPair,
    *,
    now: datetime = NOW,
    method: str = "POST",
    url: str = INBOX,
    body: bytes | None = BODY,
    headers: Mapping[str, str] = AS_JSON,
) -> dict[str, str]:
    added = httpsig.sign_request_cavage(
        method, url, headers, body, key_id=KEY_ID, private_key_pem=pair.private_pem, now=now
    )
    return {**headers, **added}


def rfc_signed(
    pair: keys.KeyPair,
    *,
    now: datetime = NOW,
    method: str = "POST",
    url: str = INBOX,
    body: bytes | None = BODY,
    headers: Mapping[str, str] = AS_JSON,
) -> dict[str, str]:
    added = httpsig.sign_request_rfc9421(
        method, url, headers, body, key_id=KEY_ID, private_key_pem=pair.private_pem, now=now
    )
    return {**headers, **added}


def check(
    headers: Mapping[str, str],
    public_pem: str,
    *,
    now: datetime = NOW,
    method: str = "POST",
    url: str = INBOX,
    body: bytes | None = BODY,
) -> httpsig.ParsedSignature:
    parsed = httpsig.parse_request_signature(method, url, headers)
    httpsig.verify_request(
        parsed, public_pem, method=method, url=url, headers=headers, body=body, now=now
    )
    return parsed


def failure(headers: Mapping[str, str], public_pem: str, **kwargs: object) -> F:
    with pytest.raises(SignatureError) as caught:
        check(headers, public_pem, **kwargs)  # type: ignore[arg-type]
    return caught.value.failure


def hand_cavage(
    private_pem: str,
    pairs: list[tuple[str, str]],
    *,
    algorithm: str | None = "rsa-sha256",
    extra: str = "",
) -> str:
    """A cavage Signature value whose signing string is spelled out line by line by the test."""
    primitive = "ed25519" if keys.private_key_kind(private_pem) == "ed25519" else "rsa-pkcs1-sha256"
    signing_string = "\n".join(f"{name}: {value}" for name, value in pairs).encode()
    signature = base64.b64encode(keys.sign_bytes(private_pem, primitive, signing_string)).decode()
    alg = f'algorithm="{algorithm}",' if algorithm else ""
    names = " ".join(name for name, _ in pairs)
    return f'keyId="{KEY_ID}",{alg}{extra}headers="{names}",signature="{signature}"'


def hand_rfc(
    private_pem: str, components: list[tuple[str, str]], params: str, label: str = "sig1"
) -> dict[str, str]:
    """RFC 9421 headers whose signature base is spelled out by the test."""
    inner = "(" + " ".join(f'"{name}"' for name, _ in components) + ")" + params
    lines = [f'"{name}": {value}' for name, value in components]
    base = "\n".join([*lines, f'"@signature-params": {inner}']).encode()
    primitive = "ed25519" if keys.private_key_kind(private_pem) == "ed25519" else "rsa-pkcs1-sha256"
    signature = base64.b64encode(keys.sign_bytes(private_pem, primitive, base)).decode()
    return {"Signature-Input": f"{label}={inner}", "Signature": f"{label}=:{signature}:"}


def sha(name: str, body: bytes) -> str:
    return base64.b64encode(hashlib.new(name, body).digest()).decode()


# --- golden vectors: digests ---------------------------------------------------------------------


def test_cavage_digest_of_the_draft_body():
    """Given the draft's example body, when digested, then the Digest value is the published one."""
    assert httpsig.body_digest_cavage(BODY) == CAVAGE_HEADERS["Digest"]


def test_content_digest_of_the_example_body():
    """Given the RFC 9530 example body, when digested, then Content-Digest is the sha-256 member."""
    assert httpsig.content_digest(BODY) == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"


def test_digest_of_an_empty_body():
    """Given an empty body, when digested, then both forms carry SHA-256 of nothing."""
    empty = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert httpsig.body_digest_cavage(b"") == f"SHA-256={empty}"
    assert httpsig.content_digest(b"") == f"sha-256=:{empty}:"


# --- golden vectors: draft-cavage-12 appendix C --------------------------------------------------


def test_cavage_c1_default_test_signs_date_only():
    """Given C.1 (no headers param, rsa-sha256), when parsed, then only date is signed, exactly."""
    headers = {
        **CAVAGE_HEADERS,
        "Signature": f'keyId="Test",algorithm="rsa-sha256",signature="{C1_SIGNATURE}"',
    }
    parsed = httpsig.parse_request_signature("POST", CAVAGE_URL, headers)
    assert parsed.covered == ("date",)
    assert parsed.signature_base == b"date: Sun, 05 Jan 2014 21:31:40 GMT"
    ours = keys.sign_bytes(CAVAGE_PRIVATE, "rsa-pkcs1-sha256", parsed.signature_base)
    assert base64.b64encode(ours).decode() == C1_SIGNATURE


def test_cavage_c1_is_refused_by_our_coverage_rule():
    """Given C.1's valid date-only signature on a POST, when verified, then coverage fails."""
    headers = {
        **CAVAGE_HEADERS,
        "Signature": f'keyId="Test",algorithm="rsa-sha256",signature="{C1_SIGNATURE}"',
    }
    assert failure(headers, CAVAGE_PUBLIC, now=CAVAGE_NOW, url=CAVAGE_URL) is F.MISSING_COMPONENT


def test_cavage_c2_basic_test_is_reproduced_exactly_by_our_signer():
    """Given C.2's request without a body, when we sign it, then our Signature header is C.2's."""
    added = httpsig.sign_request_cavage(
        "POST", CAVAGE_URL, {}, None, key_id="Test", private_key_pem=CAVAGE_PRIVATE, now=CAVAGE_NOW
    )
    assert added == {
        "Host": "example.com",
        "Date": "Sun, 05 Jan 2014 21:31:40 GMT",
        "Signature": 'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date",'
        f'signature="{C2_SIGNATURE}"',
    }


def test_cavage_c2_authorization_form_parses_to_the_same_signing_string():
    """Given C.2 as `Authorization: Signature …`, when parsed, then the signing string matches."""
    value = (
        'Signature keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date", '
        f'signature="{C2_SIGNATURE}"'
    )
    parsed = httpsig.parse_request_signature(
        "POST", CAVAGE_URL, {**CAVAGE_HEADERS, "Authorization": value}
    )
    assert parsed.signature_base == (
        b"(request-target): post /foo?param=value&pet=dog\nhost: example.com\n"
        b"date: Sun, 05 Jan 2014 21:31:40 GMT"
    )
    assert parsed.signature == base64.b64decode(C2_SIGNATURE)
    assert keys.verify_bytes(
        CAVAGE_PUBLIC, "rsa-pkcs1-sha256", parsed.signature, parsed.signature_base
    )


def test_cavage_c2_on_a_post_lacks_the_digest():
    """Given C.2 (no digest signed) on a POST with a body, when verified, then DIGEST_MISSING."""
    headers = {
        **CAVAGE_HEADERS,
        "Signature": 'keyId="Test",algorithm="rsa-sha256",headers='
        f'"(request-target) host date",signature="{C2_SIGNATURE}"',
    }
    assert failure(headers, CAVAGE_PUBLIC, now=CAVAGE_NOW, url=CAVAGE_URL) is F.DIGEST_MISSING


def test_cavage_c3_all_headers_verifies_end_to_end():
    """Given C.3 (all headers, digest), when verified at the draft's date, then it passes."""
    covered = "(request-target) host date content-type digest content-length"
    headers = {
        **CAVAGE_HEADERS,
        "Signature": f'keyId="Test",algorithm="rsa-sha256",headers="{covered}",'
        f'signature="{C3_SIGNATURE}"',
    }
    parsed = check(headers, CAVAGE_PUBLIC, now=CAVAGE_NOW, url=CAVAGE_URL)
    assert parsed.signature_base == (
        b"(request-target): post /foo?param=value&pet=dog\nhost: example.com\n"
        b"date: Sun, 05 Jan 2014 21:31:40 GMT\ncontent-type: application/json\n"
        b"digest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\ncontent-length: 18"
    )
    ours = keys.sign_bytes(CAVAGE_PRIVATE, "rsa-pkcs1-sha256", parsed.signature_base)
    assert base64.b64encode(ours).decode() == C3_SIGNATURE


def test_cavage_c3_as_printed_in_draft_12_is_refused():
    """Given draft-12's C.3 text ((created) with rsa-sha256), when parsed, then MALFORMED."""
    # draft-12 forbids (created) with rsa-* algorithms yet prints it; its signature is draft-09's.
    value = (
        'keyId="Test",algorithm="rsa-sha256",created=1402170695, expires=1402170699,'
        'headers="(request-target) (created) (expires) host date content-type digest '
        'content-length",'
        f'signature="{C3_SIGNATURE}"'
    )
    with pytest.raises(SignatureError) as caught:
        httpsig.parse_request_signature("POST", CAVAGE_URL, {**CAVAGE_HEADERS, "Signature": value})
    assert caught.value.failure is F.MALFORMED
    assert "(created) cannot be used with rsa-sha256" in str(caught.value)


def test_cavage_created_and_expires_build_the_hs2019_signing_string():
    """Given hs2019 with (created)/(expires), when parsed, then their raw values are signed."""
    value = (
        'keyId="Test",algorithm="hs2019",created=1402170695, expires=1402170699,'
        'headers="(request-target) (created) (expires) host date",signature="AAAA"'
    )
    parsed = httpsig.parse_request_signature(
        "POST", CAVAGE_URL, {**CAVAGE_HEADERS, "Signature": value}
    )
    assert parsed.signature_base == (
        b"(request-target): post /foo?param=value&pet=dog\n(created): 1402170695\n"
        b"(expires): 1402170699\nhost: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT"
    )
    assert parsed.created == datetime(2014, 6, 7, 19, 51, 35, tzinfo=UTC)
    assert parsed.expires == datetime(2014, 6, 7, 19, 51, 39, tzinfo=UTC)


# --- golden vectors: RFC 9421 appendix B ---------------------------------------------------------


def test_rfc9421_b21_minimal_base_and_published_pss_signature():
    """Given B.2.1 (RSA-PSS, nothing covered), when parsed, then the base is exact and verifies."""
    headers = {**RFC_HEADERS, "Signature-Input": B21_INPUT, "Signature": B21_SIGNATURE}
    parsed = httpsig.parse_request_signature("POST", RFC_URL, headers)
    assert parsed.signature_base == (
        b'"@signature-params": ();created=1618884473;keyid="test-key-rsa-pss";'
        b'nonce="b3k2pp5k7z-50gnwp.yemd"'
    )
    assert (parsed.label, parsed.key_id, parsed.algorithm) == ("sig-b21", "test-key-rsa-pss", None)
    assert keys.verify_bytes(
        RFC_RSA_PSS_PUBLIC, "rsa-pss-sha512", parsed.signature, parsed.signature_base
    )
    # Valid cryptography, but it signs nothing about the request: our policy refuses it.
    assert failure(headers, RFC_RSA_PSS_PUBLIC, now=RFC_CREATED, url=RFC_URL) is F.MISSING_COMPONENT


def test_rfc9421_b23_full_coverage_verifies_end_to_end():
    """Given B.2.3 (RSA-PSS without alg, sha-512 digest), when verified, then it passes exactly."""
    headers = {**RFC_HEADERS, "Signature-Input": B23_INPUT, "Signature": B23_SIGNATURE}
    parsed = check(headers, RFC_RSA_PSS_PUBLIC, now=RFC_CREATED, url=RFC_URL)
    assert parsed.signature_base == (
        b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n"@method": POST\n"@path": /foo\n'
        b'"@query": ?param=Value&Pet=dog\n"@authority": example.com\n'
        b'"content-type": application/json\n"content-digest": sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2'
        b'UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:\n"content-length": 18\n'
        b'"@signature-params": ("date" "@method" "@path" "@query" "@authority" "content-type" '
        b'"content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"'
    )


def test_rfc9421_b26_ed25519_signature_is_reproduced_byte_for_byte():
    """Given B.2.6, when we sign its base with the test Ed25519 key, then we get its signature."""
    headers = {**RFC_HEADERS, "Signature-Input": B26_INPUT, "Signature": B26_SIGNATURE}
    parsed = httpsig.parse_request_signature("POST", RFC_URL, headers)
    assert parsed.signature_base == (
        b'"date": Tue, 20 Apr 2021 02:07:55 GMT\n"@method": POST\n"@path": /foo\n'
        b'"@authority": example.com\n"content-type": application/json\n"content-length": 18\n'
        b'"@signature-params": ("date" "@method" "@path" "@authority" "content-type" '
        b'"content-length");created=1618884473;keyid="test-key-ed25519"'
    )
    ours = keys.sign_bytes(RFC_ED25519_PRIVATE, "ed25519", parsed.signature_base)
    assert f"sig-b26=:{base64.b64encode(ours).decode()}:" == B26_SIGNATURE
    assert parsed.created == RFC_CREATED


def test_rfc9421_b26_leaves_the_query_unsigned_so_policy_refuses_it():
    """Given B.2.6 (@path but no @query on a URL with a query), when verified, then refused."""
    headers = {**RFC_HEADERS, "Signature-Input": B26_INPUT, "Signature": B26_SIGNATURE}
    with pytest.raises(SignatureError, match="@target-uri") as caught:
        check(headers, RFC_ED25519_PUBLIC, now=RFC_CREATED, url=RFC_URL)
    assert caught.value.failure is F.MISSING_COMPONENT


# --- cross-checks with independent implementations -----------------------------------------------


def _resolver(pem: str, private: bool) -> MappingKeyResolver:
    return MappingKeyResolver(
        public_keys={} if private else {KEY_ID: pem.encode()},
        private_keys={KEY_ID: pem.encode()} if private else {},
    )


@pytest.mark.parametrize(
    ("pair_name", "algorithm"), [("rsa", algorithms.RSA_V1_5_SHA256), ("ed", algorithms.ED25519)]
)
def test_our_rfc9421_signature_verifies_with_http_message_signatures(
    pair_name: str, algorithm: type, request: pytest.FixtureRequest
):
    """Given our RFC 9421 signature, when http_message_signatures verifies it, then it accepts."""
    pair: keys.KeyPair = request.getfixturevalue(pair_name)
    now = datetime.now(UTC)  # the library checks `created` against the real clock
    headers = rfc_signed(pair, now=now)
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithm, key_resolver=_resolver(pair.public_pem, private=False)
    )
    results = verifier.verify(
        Message("POST", INBOX, CaseInsensitiveDict(headers)),
        body=BODY,
        require_components=("@method", "@target-uri", "content-digest", "content-type"),
    )
    assert [(r.label, r.parameters["keyid"], r.body) for r in results] == [("sig1", KEY_ID, BODY)]


@pytest.mark.parametrize(
    ("pair_name", "algorithm"),
    [
        ("rsa", algorithms.RSA_V1_5_SHA256),
        ("rsa", algorithms.RSA_PSS_SHA512),
        ("ed", algorithms.ED25519),
    ],
)
def test_http_message_signatures_signature_verifies_with_ours(
    pair_name: str, algorithm: type, request: pytest.FixtureRequest
):
    """Given a signature made by http_message_signatures, when we verify it, then it passes."""
    pair: keys.KeyPair = request.getfixturevalue(pair_name)
    message = Message("POST", INBOX, CaseInsensitiveDict(AS_JSON))
    HTTPMessageSigner(
        signature_algorithm=algorithm, key_resolver=_resolver(pair.private_pem, True)
    ).sign(
        message,
        key_id=KEY_ID,
        created=NOW,
        label="theirs",
        body=BODY,
        covered_component_ids=("@method", "@target-uri", "content-type"),
    )
    parsed = check(dict(message.headers.items()), pair.public_pem)
    assert (parsed.label, parsed.algorithm) == ("theirs", algorithm.algorithm_id)
    assert parsed.covered == ("@method", "@target-uri", "content-type", "content-digest")


def test_our_cavage_signature_verifies_with_pyhttpsig(rsa: keys.KeyPair):
    """Given our cavage signature, when pyhttpsig verifies it, then it accepts (not if changed)."""
    headers = cavage_signed(rsa)
    required = ["(request-target)", "host", "date", "digest", "content-type"]
    verifier = HeaderVerifier(
        headers,
        rsa.public_pem,
        required_headers=required,
        method="POST",
        path="/inbox",
        sign_header="signature",
    )
    assert verifier.verify() is True
    tampered = HeaderVerifier(
        {**headers, "Date": httpsig.http_date(NOW + timedelta(seconds=1))},
        rsa.public_pem,
        required_headers=required,
        method="POST",
        path="/inbox",
        sign_header="signature",
    )
    assert tampered.verify() is False


@pytest.mark.parametrize("sign_header", ["signature", "authorization"])
def test_pyhttpsig_signature_verifies_with_ours(rsa: keys.KeyPair, sign_header: str):
    """Given pyhttpsig's rsa-sha256 signature (either header), when we verify it, then it passes."""
    base = {
        "Host": "blog.example",
        "Date": httpsig.http_date(NOW),
        "Digest": httpsig.body_digest_cavage(BODY),
        **AS_JSON,
    }
    signer = HeaderSigner(
        KEY_ID,
        rsa.private_pem,
        algorithm="rsa-sha256",
        sign_header=sign_header,
        headers=["(request-target)", "host", "date", "digest", "content-type"],
    )
    signed = dict(signer.sign(base, method="POST", path="/inbox"))
    parsed = check(signed, rsa.public_pem)
    assert (parsed.scheme, parsed.key_id, parsed.algorithm) == ("cavage", KEY_ID, "rsa-sha256")


# --- signing output ------------------------------------------------------------------------------


def test_sign_cavage_post_headers(rsa: keys.KeyPair):
    """Given a POST with a content type, when signed (cavage), then Mastodon's headers result."""
    added = httpsig.sign_request_cavage(
        "POST", INBOX, AS_JSON, BODY, key_id=KEY_ID, private_key_pem=rsa.private_pem, now=NOW
    )
    assert set(added) == {"Host", "Date", "Digest", "Signature"}
    assert (added["Host"], added["Date"]) == ("blog.example", "Sat, 01 Mar 2025 12:00:00 GMT")
    assert added["Digest"] == httpsig.body_digest_cavage(BODY)
    assert re.fullmatch(
        rf'keyId="{re.escape(KEY_ID)}",algorithm="rsa-sha256",'
        r'headers="\(request-target\) host date digest content-type",'
        r'signature="[A-Za-z0-9+/=]{344}"',
        added["Signature"],
    )


def test_sign_cavage_post_without_content_type(rsa: keys.KeyPair):
    """Given a POST without Content-Type, when signed, then content-type is not in the list."""
    added = httpsig.sign_request_cavage(
        "POST", INBOX, {}, BODY, key_id=KEY_ID, private_key_pem=rsa.private_pem, now=NOW
    )
    assert 'headers="(request-target) host date digest"' in added["Signature"]


def test_sign_cavage_get_covers_accept_and_no_digest(ed: keys.KeyPair):
    """Given a GET with Accept and an Ed25519 key, when signed, then hs2019 covers accept."""
    added = httpsig.sign_request_cavage(
        "GET",
        "https://remote.example/users/alice",
        {"accept": "application/activity+json"},
        None,
        key_id=KEY_ID,
        private_key_pem=ed.private_pem,
        now=NOW,
    )
    assert "Digest" not in added
    assert 'algorithm="hs2019",headers="(request-target) host date accept"' in added["Signature"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://blog.example:8443/inbox", "blog.example:8443"),
        ("https://blog.example:443/inbox", "blog.example"),
        ("http://blog.example:80/inbox", "blog.example"),
        ("http://blog.example:443/inbox", "blog.example:443"),
        ("https://BLOG.Example/inbox", "blog.example"),
        ("https://[2001:db8::1]:8443/inbox", "[2001:db8::1]:8443"),
    ],
)
def test_signed_host_keeps_only_non_default_ports(ed: keys.KeyPair, url: str, host: str):
    """Given a URL, when signed, then Host is the lower-case host, with a non-default port."""
    added = httpsig.sign_request_cavage(
        "GET", url, {}, None, key_id=KEY_ID, private_key_pem=ed.private_pem, now=NOW
    )
    assert added["Host"] == host
    check({**added}, ed.public_pem, method="GET", url=url, body=None)


def test_sign_rfc9421_post_headers(rsa: keys.KeyPair):
    """Given a POST, when signed (RFC 9421), then Content-Digest and this Signature-Input appear."""
    added = httpsig.sign_request_rfc9421(
        "POST", INBOX, AS_JSON, BODY, key_id=KEY_ID, private_key_pem=rsa.private_pem, now=NOW
    )
    assert added["Content-Digest"] == httpsig.content_digest(BODY)
    assert added["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest" "content-type");created=1740830400;'
        f'keyid="{KEY_ID}";alg="rsa-v1_5-sha256"'
    )
    assert re.fullmatch(r"sig1=:[A-Za-z0-9+/=]{344}:", added["Signature"])


def test_sign_rfc9421_get_with_label_and_ed25519(ed: keys.KeyPair):
    """Given a GET and a label, when signed with Ed25519, then method and target are covered."""
    added = httpsig.sign_request_rfc9421(
        "GET", INBOX, {}, None, key_id=KEY_ID, private_key_pem=ed.private_pem, now=NOW, label="fc"
    )
    assert set(added) == {"Signature-Input", "Signature"}
    assert added["Signature-Input"] == (
        f'fc=("@method" "@target-uri");created=1740830400;keyid="{KEY_ID}";alg="ed25519"'
    )


def test_signing_needs_an_aware_clock_and_a_quotable_key_id(rsa: keys.KeyPair):
    """Given a naive `now` or a key id with a quote, when signing, then ValueError is raised."""
    with pytest.raises(ValueError, match="timezone-aware"):
        httpsig.sign_request_rfc9421(
            "GET",
            INBOX,
            {},
            None,
            key_id=KEY_ID,
            private_key_pem=rsa.private_pem,
            now=datetime(2025, 1, 1),
        )
    with pytest.raises(ValueError, match="cannot be quoted"):
        httpsig.sign_request_cavage(
            "GET", INBOX, {}, None, key_id='a"b', private_key_pem=rsa.private_pem, now=NOW
        )


# --- verification: success paths -----------------------------------------------------------------


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
@pytest.mark.parametrize("pair_name", ["rsa", "ed"])
def test_round_trip(signer, pair_name: str, request: pytest.FixtureRequest):
    """Given a POST we signed, when verified with the matching key, then it passes."""
    pair: keys.KeyPair = request.getfixturevalue(pair_name)
    parsed = check(signer(pair), pair.public_pem)
    assert parsed.key_id == KEY_ID
    assert parsed.scheme == ("cavage" if signer is cavage_signed else "rfc9421")


def test_parse_exposes_what_the_caller_needs_before_any_key(rsa: keys.KeyPair):
    """Given a signed POST, when parsed, then key id, algorithm, coverage and time are exposed."""
    parsed = httpsig.parse_request_signature("POST", INBOX, rfc_signed(rsa))
    assert parsed.key_id == KEY_ID and parsed.algorithm == "rsa-v1_5-sha256"
    assert parsed.covered == ("@method", "@target-uri", "content-digest", "content-type")
    assert parsed.created == NOW and parsed.expires is None
    assert parsed.params["keyid"] == KEY_ID
    with pytest.raises(TypeError):
        parsed.params["keyid"] = "other"  # type: ignore[index]


def test_header_names_are_case_insensitive(rsa: keys.KeyPair):
    """Given signed headers with odd name casing (dict, CIMultiDict), when verified, then pass."""
    for headers in (cavage_signed(rsa), rfc_signed(rsa)):
        shouted = {name.upper(): value for name, value in headers.items()}
        check(shouted, rsa.public_pem)
        check(
            CIMultiDict((name.swapcase(), value) for name, value in headers.items()), rsa.public_pem
        )


def test_repeated_field_lines_are_joined_in_order(ed: keys.KeyPair):
    """Given two Accept lines in a multidict, when signed and verified, then they read 'a, b'."""
    lines = CIMultiDict(
        [("Accept", "application/activity+json"), ("Accept", "application/ld+json")]
    )
    headers = CIMultiDict(lines)
    headers.extend(
        httpsig.sign_request_cavage(
            "GET", INBOX, lines, None, key_id=KEY_ID, private_key_pem=ed.private_pem, now=NOW
        )
    )
    parsed = check(headers, ed.public_pem, method="GET", body=None)
    assert b"accept: application/activity+json, application/ld+json" in parsed.signature_base
    only_first = {name: value for name, value in reversed(list(headers.items()))}
    assert failure(only_first, ed.public_pem, method="GET", body=None) is F.INVALID_SIGNATURE


def test_authorization_signature_form(rsa: keys.KeyPair):
    """Given the cavage params in `Authorization: Signature …`, when verified, then it passes."""
    headers = cavage_signed(rsa)
    headers["Authorization"] = "Signature " + headers.pop("Signature")
    assert check(headers, rsa.public_pem).scheme == "cavage"


def test_rfc9421_wins_over_cavage_when_both_are_sent(rsa: keys.KeyPair):
    """Given both schemes on one request, when parsed, then RFC 9421 is used."""
    headers = rfc_signed(rsa)
    headers["Authorization"] = "Signature " + cavage_signed(rsa)["Signature"]
    assert check(headers, rsa.public_pem).scheme == "rfc9421"


def test_cavage_ed25519_algorithm_label(ed: keys.KeyPair):
    """Given algorithm="ed25519" and the usual headers, when verified, then it passes."""
    headers = {
        "Host": "blog.example",
        "Date": httpsig.http_date(NOW),
        "Digest": httpsig.body_digest_cavage(BODY),
    }
    headers["Signature"] = hand_cavage(
        ed.private_pem,
        [
            ("(request-target)", "post /inbox"),
            ("host", "blog.example"),
            ("date", headers["Date"]),
            ("digest", headers["Digest"]),
        ],
        algorithm="ed25519",
    )
    assert check(headers, ed.public_pem).algorithm == "ed25519"


def test_cavage_created_only_hs2019_without_algorithm(ed: keys.KeyPair):
    """Given no algorithm and (created) instead of Date, when verified, then hs2019 rules apply."""
    created = int(NOW.timestamp()) - 30
    headers = {"Host": "blog.example", "Digest": httpsig.body_digest_cavage(BODY)}
    headers["Signature"] = hand_cavage(
        ed.private_pem,
        [
            ("(request-target)", "post /inbox"),
            ("(created)", str(created)),
            ("host", "blog.example"),
            ("digest", headers["Digest"]),
        ],
        algorithm=None,
        extra=f"created={created},",
    )
    parsed = check(headers, ed.public_pem)
    assert parsed.algorithm is None and parsed.created == NOW - timedelta(seconds=30)


def test_cavage_without_headers_param_defaults_by_algorithm():
    """Given no headers param, when parsed, then rsa-sha256 covers date, hs2019 (created)."""
    rsa_sig = httpsig.parse_request_signature(
        "GET",
        INBOX,
        {"Date": "x", "Signature": 'keyId="k",algorithm="rsa-sha256",signature="AA=="'},
    )
    hs_sig = httpsig.parse_request_signature(
        "GET", INBOX, {"Signature": 'keyId="k",algorithm="hs2019",created=1,signature="AA=="'}
    )
    assert (rsa_sig.covered, hs_sig.covered) == (("date",), ("(created)",))


def test_get_request_needs_no_digest(rsa: keys.KeyPair):
    """Given a GET signed without a body, when verified with body None, then both schemes pass."""
    for signer in (cavage_signed, rfc_signed):
        check(
            signer(rsa, method="GET", body=None, headers={}),
            rsa.public_pem,
            method="GET",
            body=None,
        )


# --- verification: every failure reason ----------------------------------------------------------


def test_signature_error_carries_the_failure_and_maps_to_401():
    """Given a SignatureError, when inspected, then it is a 401 FedcommentsError with its reason."""
    error = SignatureError(F.EXPIRED, "too late")
    assert isinstance(error, FedcommentsError) and error.http_status == 401
    assert error.failure is F.EXPIRED and "too late" in str(error)


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
def test_tampered_body_is_a_digest_mismatch(rsa: keys.KeyPair, signer):
    """Given a signed POST, when the body changes, then DIGEST_MISMATCH."""
    assert failure(signer(rsa), rsa.public_pem, body=BODY + b" ") is F.DIGEST_MISMATCH


def test_tampered_body_with_recomputed_digest_breaks_the_signature(rsa: keys.KeyPair):
    """Given a signed POST, when body and Digest both change, then the signature no longer holds."""
    headers = {**cavage_signed(rsa), "Digest": httpsig.body_digest_cavage(b"{}")}
    assert failure(headers, rsa.public_pem, body=b"{}") is F.INVALID_SIGNATURE


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
def test_tampered_covered_header_is_invalid(rsa: keys.KeyPair, signer):
    """Given a signed POST, when a covered header (Content-Type) changes, then INVALID_SIGNATURE."""
    headers = {**signer(rsa), "Content-Type": "text/html"}
    assert failure(headers, rsa.public_pem) is F.INVALID_SIGNATURE


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
def test_replay_to_another_target_is_invalid(rsa: keys.KeyPair, signer):
    """Given a POST signed for /inbox, when replayed to another inbox, then INVALID_SIGNATURE."""
    other = "https://blog.example/users/bob/inbox"
    assert failure(signer(rsa), rsa.public_pem, url=other) is F.INVALID_SIGNATURE


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
def test_wrong_key_is_invalid(rsa: keys.KeyPair, other_rsa: keys.KeyPair, signer):
    """Given a signed POST, when verified with another actor's key, then INVALID_SIGNATURE."""
    assert failure(signer(rsa), other_rsa.public_pem) is F.INVALID_SIGNATURE


def test_unparsable_key_is_invalid_key(rsa: keys.KeyPair):
    """Given a garbage public key, when verifying, then INVALID_KEY."""
    assert failure(cavage_signed(rsa), "-----BEGIN PUBLIC KEY-----\nAA==\n") is F.INVALID_KEY


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
@pytest.mark.parametrize(
    ("signed_at", "ok"),
    [
        (NOW - timedelta(minutes=66), False),
        (NOW - timedelta(minutes=65, seconds=1), False),
        (NOW - timedelta(minutes=65), True),
        (NOW + timedelta(minutes=60), True),
        (NOW + timedelta(minutes=60, seconds=1), False),
        (NOW + timedelta(minutes=61), False),
    ],
    ids=["-66m", "-65m1s", "-65m", "+60m", "+60m1s", "+61m"],
)
def test_time_window_edges(rsa: keys.KeyPair, signer, signed_at: datetime, ok: bool):
    """Given a signature made at an offset from now, when verified, then only [-65m, +60m] pass."""
    headers = signer(rsa, now=signed_at)
    if ok:
        check(headers, rsa.public_pem)
    else:
        assert failure(headers, rsa.public_pem) is F.DATE_OUT_OF_WINDOW


def test_cavage_created_outside_the_window(ed: keys.KeyPair):
    """Given hs2019 with (created) 66 minutes old, when verified, then DATE_OUT_OF_WINDOW."""
    created = int((NOW - timedelta(minutes=66)).timestamp())
    headers = {"Host": "blog.example", "Digest": httpsig.body_digest_cavage(BODY)}
    headers["Signature"] = hand_cavage(
        ed.private_pem,
        [
            ("(request-target)", "post /inbox"),
            ("(created)", str(created)),
            ("host", "blog.example"),
            ("digest", headers["Digest"]),
        ],
        algorithm="hs2019",
        extra=f"created={created},",
    )
    assert failure(headers, ed.public_pem) is F.DATE_OUT_OF_WINDOW


def test_cavage_expires_in_the_past(ed: keys.KeyPair):
    """Given hs2019 with (expires) one second ago, when verified, then EXPIRED."""
    created, expires = int(NOW.timestamp()) - 60, int(NOW.timestamp()) - 1
    headers = {"Host": "blog.example", "Digest": httpsig.body_digest_cavage(BODY)}
    headers["Signature"] = hand_cavage(
        ed.private_pem,
        [
            ("(request-target)", "post /inbox"),
            ("(created)", str(created)),
            ("(expires)", str(expires)),
            ("host", "blog.example"),
            ("digest", headers["Digest"]),
        ],
        algorithm="hs2019",
        extra=f"created={created},expires={expires},",
    )
    assert failure(headers, ed.public_pem) is F.EXPIRED
    check(headers, ed.public_pem, now=NOW - timedelta(seconds=1))  # still valid at its expiry


def test_rfc9421_expires_in_the_past(rsa: keys.KeyPair):
    """Given an expired RFC 9421 signature (made by the library), when verified, then EXPIRED."""
    message = Message("POST", INBOX, CaseInsensitiveDict(AS_JSON))
    HTTPMessageSigner(
        signature_algorithm=algorithms.RSA_V1_5_SHA256,
        key_resolver=_resolver(rsa.private_pem, True),
    ).sign(
        message,
        key_id=KEY_ID,
        created=NOW - timedelta(minutes=5),
        body=BODY,
        expires=NOW - timedelta(seconds=1),
        covered_component_ids=("@method", "@target-uri"),
    )
    assert failure(dict(message.headers.items()), rsa.public_pem) is F.EXPIRED


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {"Signature": 'keyId="k",algorithm="rsa-sha512",signature="AA=="'},
            F.UNSUPPORTED_ALGORITHM,
        ),
        (
            {"Signature": 'keyId="k",algorithm="hmac-sha256",signature="AA=="'},
            F.UNSUPPORTED_ALGORITHM,
        ),
        (
            {
                "Signature-Input": 'sig1=("@method");created=1;keyid="k";alg="hmac-sha256"',
                "Signature": "sig1=:AA==:",
            },
            F.UNSUPPORTED_ALGORITHM,
        ),
        (
            {
                "Signature-Input": 'sig1=("@method");created=1;keyid="k";alg="ecdsa-p256-sha256"',
                "Signature": "sig1=:AA==:",
            },
            F.UNSUPPORTED_ALGORITHM,
        ),
    ],
)
def test_unsupported_algorithms_are_refused_at_parse(headers: dict[str, str], expected: F):
    """Given an algorithm we do not implement, when parsed, then UNSUPPORTED_ALGORITHM."""
    with pytest.raises(SignatureError) as caught:
        httpsig.parse_request_signature("GET", INBOX, {"Date": "x", **headers})
    assert caught.value.failure is expected


@pytest.mark.parametrize(
    "headers",
    [
        {"Signature": 'keyId="k",signature="not base64!"'},
        {"Signature": 'keyId="k" signature="AA=="'},
        {"Signature": 'keyId="k",keyId="j",signature="AA=="'},
        {"Signature": 'algorithm="rsa-sha256",signature="AA=="'},
        {"Signature": 'keyId="k",algorithm="hs2019",headers="",signature="AA=="'},
        {"Signature": 'keyId="k",algorithm="hs2019",headers="(created)",signature="AA=="'},
        {"Signature": 'keyId="k",algorithm="hs2019",created=yesterday,signature="AA=="'},
        {"Authorization": 'Signature keyId="k",signature="AA=="junk'},
        {"Signature-Input": 'sig1=("@method"', "Signature": "sig1=:AA==:"},
        {"Signature-Input": 'sig1=("@method");created=1;keyid="k"'},
        {"Signature-Input": 'sig1=("@method");created=1;keyid="k"', "Signature": 'sig1="AA=="'},
        {"Signature-Input": 'sig1=("@method");created="1";keyid="k"', "Signature": "sig1=:AA==:"},
        {"Signature-Input": 'sig1=("@method");created=1', "Signature": "sig1=:AA==:"},
        {"Signature-Input": 'sig1=("Date");created=1;keyid="k"', "Signature": "sig1=:AA==:"},
        {
            "Signature-Input": 'sig1=("@method" "@method");created=1;keyid="k"',
            "Signature": "sig1=:AA==:",
        },
        {"Signature-Input": 'sig1="@method";created=1;keyid="k"', "Signature": "sig1=:AA==:"},
    ],
)
def test_malformed_signatures_are_refused_at_parse(headers: dict[str, str]):
    """Given a syntactically broken signature, when parsed, then MALFORMED."""
    with pytest.raises(SignatureError) as caught:
        httpsig.parse_request_signature("GET", INBOX, {"Date": "x", **headers})
    assert caught.value.failure is F.MALFORMED


@pytest.mark.parametrize(
    "headers",
    [
        {"Signature": 'keyId="k",headers="(request-target) (key-id)",signature="AA=="'},
        {
            "Signature-Input": 'sig1=("@query-param";name="a");created=1;keyid="k"',
            "Signature": "sig1=:AA==:",
        },
        {"Signature-Input": 'sig1=("@status");created=1;keyid="k"', "Signature": "sig1=:AA==:"},
        {
            "Signature-Input": 'sig1=("content-digest";sf);created=1;keyid="k"',
            "Signature": "sig1=:AA==:",
        },
    ],
)
def test_unsupported_components_are_refused_at_parse(headers: dict[str, str]):
    """Given a component we cannot resolve, when parsed, then UNSUPPORTED_COMPONENT."""
    with pytest.raises(SignatureError) as caught:
        httpsig.parse_request_signature("GET", INBOX, {"Date": "x", **headers})
    assert caught.value.failure is F.UNSUPPORTED_COMPONENT


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer abc"}, {"Signature-Input": "", "Signature": ""}],
    ids=["none", "bearer", "empty-input"],
)
def test_unsigned_requests_are_missing(headers: dict[str, str]):
    """Given a request with no usable signature header, when parsed, then MISSING."""
    with pytest.raises(SignatureError) as caught:
        httpsig.parse_request_signature("POST", INBOX, {**AS_JSON, **headers})
    assert caught.value.failure is F.MISSING


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
def test_covered_header_absent_is_missing_component(rsa: keys.KeyPair, signer):
    """Given a signed POST, when a covered header is dropped, then MISSING_COMPONENT at parse."""
    headers = signer(rsa)
    del headers["Content-Type"]
    with pytest.raises(SignatureError, match="content-type") as caught:
        httpsig.parse_request_signature("POST", INBOX, headers)
    assert caught.value.failure is F.MISSING_COMPONENT


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
def test_post_whose_signature_does_not_cover_a_digest(rsa: keys.KeyPair, signer):
    """Given a POST whose digest is sent but not signed, when verified, then DIGEST_MISSING."""
    headers = signer(rsa, body=None)
    headers.update(
        {"Digest": httpsig.body_digest_cavage(BODY), "Content-Digest": httpsig.content_digest(BODY)}
    )
    assert failure(headers, rsa.public_pem) is F.DIGEST_MISSING


@pytest.mark.parametrize(
    ("pairs", "missing"),
    [
        ([("(request-target)", "get /inbox"), ("date", "DATE")], "host"),
        ([("host", "blog.example"), ("date", "DATE")], "(request-target)"),
        ([("(request-target)", "get /inbox"), ("host", "blog.example")], "date or (created)"),
    ],
)
def test_cavage_get_coverage_rules(rsa: keys.KeyPair, pairs: list[tuple[str, str]], missing: str):
    """Given a GET signature omitting a required header, when verified, then MISSING_COMPONENT."""
    date = httpsig.http_date(NOW)
    pairs = [(name, date if value == "DATE" else value) for name, value in pairs]
    headers = {
        "Host": "blog.example",
        "Date": date,
        "Signature": hand_cavage(rsa.private_pem, pairs),
    }
    with pytest.raises(SignatureError, match=re.escape(missing)) as caught:
        check(headers, rsa.public_pem, method="GET", body=None)
    assert caught.value.failure is F.MISSING_COMPONENT


def test_post_with_an_empty_body_still_needs_a_digest(rsa: keys.KeyPair):
    """Given a POST with an empty body and no signed digest, when verified, then DIGEST_MISSING."""
    headers = cavage_signed(rsa, body=None)
    assert failure(headers, rsa.public_pem, body=b"") is F.DIGEST_MISSING
    assert failure(headers, rsa.public_pem, body=None) is F.DIGEST_MISSING


def test_any_method_with_a_body_needs_a_digest(rsa: keys.KeyPair):
    """Given a PUT carrying a body but no signed digest, when verified, then DIGEST_MISSING."""
    headers = cavage_signed(rsa, method="PUT", body=None)
    assert failure(headers, rsa.public_pem, method="PUT", body=BODY) is F.DIGEST_MISSING
    check(headers, rsa.public_pem, method="PUT", body=None)


def test_cavage_get_signature_presented_as_post(rsa: keys.KeyPair):
    """Given a GET-style signature (no digest), when presented on a POST, then DIGEST_MISSING."""
    headers = cavage_signed(rsa, method="GET", body=None)
    assert failure(headers, rsa.public_pem, method="POST") is F.DIGEST_MISSING


def test_rfc9421_coverage_rules(rsa: keys.KeyPair):
    """Given RFC 9421 signatures lacking @method, the target or created, then MISSING_COMPONENT."""
    get = [("@method", "GET"), ("@target-uri", INBOX)]
    for components, params, missing in [
        (get[1:], f';created={int(NOW.timestamp())};keyid="{KEY_ID}"', "@method"),
        (get[:1], f';created={int(NOW.timestamp())};keyid="{KEY_ID}"', "@target-uri"),
        (
            [get[0], ("@authority", "blog.example")],
            f';created={int(NOW.timestamp())};keyid="k"',
            "@target-uri",
        ),
        (get, f';keyid="{KEY_ID}"', "created"),
    ]:
        headers = hand_rfc(rsa.private_pem, components, params)
        with pytest.raises(SignatureError, match=missing) as caught:
            check(headers, rsa.public_pem, method="GET", body=None)
        assert caught.value.failure is F.MISSING_COMPONENT


def test_rfc9421_authority_and_path_suffice_without_a_query(rsa: keys.KeyPair):
    """Given @method @authority @path on a query-less URL, when verified, then it passes."""
    components = [("@method", "GET"), ("@authority", "blog.example"), ("@path", "/inbox")]
    headers = hand_rfc(rsa.private_pem, components, f';created={int(NOW.timestamp())};keyid="k"')
    check(headers, rsa.public_pem, method="GET", body=None)


def test_ed25519_key_with_rsa_sha256_is_a_key_type_mismatch(ed: keys.KeyPair):
    """Given algorithm rsa-sha256 but an Ed25519 key, when verified, then KEY_TYPE_MISMATCH."""
    headers = cavage_signed(ed)
    headers["Signature"] = headers["Signature"].replace(
        'algorithm="hs2019"', 'algorithm="rsa-sha256"'
    )
    assert failure(headers, ed.public_pem) is F.KEY_TYPE_MISMATCH


def test_rfc9421_rsa_alg_with_an_ed25519_key_is_a_key_type_mismatch(
    rsa: keys.KeyPair, ed: keys.KeyPair
):
    """Given alg rsa-v1_5-sha256 but an Ed25519 key, when verified, then KEY_TYPE_MISMATCH."""
    assert failure(rfc_signed(rsa), ed.public_pem) is F.KEY_TYPE_MISMATCH


def test_hs2019_ed25519_signature_against_an_rsa_key_is_invalid(
    ed: keys.KeyPair, rsa: keys.KeyPair
):
    """Given hs2019 signed with Ed25519, when checked with an RSA key, then INVALID_SIGNATURE."""
    assert failure(cavage_signed(ed), rsa.public_pem) is F.INVALID_SIGNATURE


def test_verify_needs_an_aware_clock(rsa: keys.KeyPair):
    """Given a naive `now`, when verifying, then ValueError (a bug, not a bad request)."""
    with pytest.raises(ValueError, match="timezone-aware"):
        check(cavage_signed(rsa), rsa.public_pem, now=datetime(2025, 3, 1, 12))


# --- key-independent checks (check_request) ---------------------------------------------------


def _hs2019_expired(pair: keys.KeyPair) -> dict[str, str]:
    created, expires = int(NOW.timestamp()) - 60, int(NOW.timestamp()) - 1
    headers = {"Host": "blog.example", "Digest": httpsig.body_digest_cavage(BODY)}
    headers["Signature"] = hand_cavage(
        pair.private_pem,
        [("(request-target)", "post /inbox"), ("(created)", str(created)),
         ("(expires)", str(expires)), ("host", "blog.example"), ("digest", headers["Digest"])],
        algorithm="hs2019", extra=f"created={created},expires={expires},",
    )
    return headers


def _cavage_without_host(pair: keys.KeyPair) -> dict[str, str]:
    headers = {"Date": httpsig.http_date(NOW), "Digest": httpsig.body_digest_cavage(BODY)}
    headers["Signature"] = hand_cavage(
        pair.private_pem,
        [("(request-target)", "post /inbox"), ("date", headers["Date"]),
         ("digest", headers["Digest"])],
    )
    return headers


def _rfc_without_created(pair: keys.KeyPair) -> dict[str, str]:
    digest = httpsig.content_digest(BODY)
    components = [("@method", "POST"), ("@target-uri", INBOX), ("content-digest", digest)]
    return {"Content-Digest": digest,
            **hand_rfc(pair.private_pem, components, f';keyid="{KEY_ID}"')}


def _bad_date(pair: keys.KeyPair) -> dict[str, str]:
    headers = cavage_signed(pair)
    return {**headers, "Date": "yesterday"}


#: (name, signed headers, verify arguments, expected failure) — each breaks one rule that
#: needs no key; the signature is otherwise made with the right key.
KEYLESS_FAILURES = [
    ("stale-cavage", lambda p: cavage_signed(p, now=NOW - timedelta(minutes=66)), {},
     F.DATE_OUT_OF_WINDOW),
    ("future-rfc9421", lambda p: rfc_signed(p, now=NOW + timedelta(minutes=61)), {},
     F.DATE_OUT_OF_WINDOW),
    ("expired", _hs2019_expired, {}, F.EXPIRED),
    ("tampered-body-cavage", cavage_signed, {"body": BODY + b" "}, F.DIGEST_MISMATCH),
    ("tampered-body-rfc9421", rfc_signed, {"body": BODY + b" "}, F.DIGEST_MISMATCH),
    ("digest-not-signed", lambda p: cavage_signed(p, body=None), {}, F.DIGEST_MISSING),
    ("get-signature-on-post", lambda p: cavage_signed(p, method="GET", body=None), {},
     F.DIGEST_MISSING),
    ("host-not-covered", _cavage_without_host, {}, F.MISSING_COMPONENT),
    ("created-missing", _rfc_without_created, {}, F.MISSING_COMPONENT),
    ("unreadable-date", _bad_date, {}, F.MALFORMED),
]


def _keyless(headers: Mapping[str, str], *, body: bytes | None = BODY, method: str = "POST",
             url: str = INBOX, now: datetime = NOW) -> None:
    parsed = httpsig.parse_request_signature(method, url, headers)
    httpsig.check_request(parsed, method=method, url=url, headers=headers, body=body, now=now)


@pytest.mark.parametrize(("make", "kwargs", "expected"),
                         [case[1:] for case in KEYLESS_FAILURES],
                         ids=[case[0] for case in KEYLESS_FAILURES])
def test_check_request_refuses_what_no_key_could_fix(rsa: keys.KeyPair, ed: keys.KeyPair,
                                                     make, kwargs, expected: F):
    """Given a request breaking a rule that needs no key, when check_request runs (no key at
    all), then it raises the very failure verify_request raises with the right key."""
    pair = ed if make is _hs2019_expired else rsa
    headers = make(pair)
    with pytest.raises(SignatureError) as keyless:
        _keyless(headers, **kwargs)
    with pytest.raises(SignatureError) as keyed:
        check(headers, pair.public_pem, **kwargs)
    assert keyless.value.failure is expected and keyed.value.failure is expected
    assert str(keyless.value) == str(keyed.value)


@pytest.mark.parametrize("signer", [cavage_signed, rfc_signed])
@pytest.mark.parametrize("pair_name", ["rsa", "ed"])
def test_check_request_passes_a_good_request_without_a_key(signer, pair_name: str,
                                                           request: pytest.FixtureRequest):
    """Given a well-formed, timely, correctly digested request, when check_request runs,
    then it returns None: only the key could still refuse it."""
    pair = request.getfixturevalue(pair_name)
    assert _keyless(signer(pair)) is None


def test_check_request_leaves_key_failures_to_verify_request(rsa: keys.KeyPair,
                                                             other_rsa: keys.KeyPair):
    """Given requests failing only because of the key (another key signed, a covered header
    changed after signing), when check_request runs, then it passes them, and
    verify_request refuses them as INVALID_SIGNATURE."""
    forged = cavage_signed(other_rsa)
    changed = {**rfc_signed(rsa), "Content-Type": "text/html"}
    for headers in (forged, changed):
        assert _keyless(headers) is None
        assert failure(headers, rsa.public_pem) is F.INVALID_SIGNATURE


def test_check_request_follows_verify_request_order(rsa: keys.KeyPair):
    """Given a request that is both stale and carries a tampered body, when checked with and
    without a key, then both report the time window first (the documented order)."""
    headers = cavage_signed(rsa, now=NOW - timedelta(hours=2))
    with pytest.raises(SignatureError) as keyless:
        _keyless(headers, body=b"tampered")
    assert keyless.value.failure is F.DATE_OUT_OF_WINDOW
    assert failure(headers, rsa.public_pem, body=b"tampered") is F.DATE_OUT_OF_WINDOW


def test_check_request_covered_header_absent_at_check_time(rsa: keys.KeyPair):
    """Given a signature parsed from a request, when checked against headers lacking a covered
    one, then check_request says MISSING_COMPONENT, as verify_request does."""
    headers = cavage_signed(rsa)
    parsed = httpsig.parse_request_signature("POST", INBOX, headers)
    stripped = {k: v for k, v in headers.items() if k != "Content-Type"}
    with pytest.raises(SignatureError, match="content-type") as caught:
        httpsig.check_request(parsed, method="POST", url=INBOX, headers=stripped, body=BODY,
                              now=NOW)
    assert caught.value.failure is F.MISSING_COMPONENT


def test_check_request_needs_an_aware_clock(rsa: keys.KeyPair):
    """Given a naive `now`, when check_request runs, then ValueError (a bug, not a request)."""
    with pytest.raises(ValueError, match="timezone-aware"):
        _keyless(cavage_signed(rsa), now=datetime(2025, 3, 1, 12))


# --- digests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        (f"SHA-256={sha('sha256', BODY)},SHA-512={sha('sha512', BODY)}", None),
        (f"MD5=abc, sha-256={sha('sha256', BODY)}", None),
        (f"SHA-512={sha('sha512', BODY)}", None),
        (f"SHA-256={sha('sha256', BODY)}, SHA-512={sha('sha512', b'other')}", F.DIGEST_MISMATCH),
        (f"SHA-256={sha('sha256', b'other')}", F.DIGEST_MISMATCH),
        ("SHA-256=***", F.DIGEST_MISMATCH),
        ("MD5=abc, UNIXsum=30637", F.DIGEST_MISSING),
    ],
)
def test_cavage_multiple_digests(rsa: keys.KeyPair, digest: str, expected: F | None):
    """Given a signed Digest with several algorithms, when verified, then all known must match."""
    date = httpsig.http_date(NOW)
    headers = {"Host": "blog.example", "Date": date, "Digest": digest}
    headers["Signature"] = hand_cavage(
        rsa.private_pem,
        [
            ("(request-target)", "post /inbox"),
            ("host", "blog.example"),
            ("date", date),
            ("digest", digest),
        ],
    )
    if expected is None:
        check(headers, rsa.public_pem)
    else:
        assert failure(headers, rsa.public_pem) is expected


@pytest.mark.parametrize(
    ("digest", "expected"),
    [
        (f"sha-256=:{sha('sha256', BODY)}:, sha-512=:{sha('sha512', BODY)}:", None),
        (f"sha-512=:{sha('sha512', BODY)}:", None),
        (f"md5=:AAAA:, sha-256=:{sha('sha256', BODY)}:", None),
        (f"sha-512=:{sha('sha512', b'x')}:, sha-256=:{sha('sha256', BODY)}:", F.DIGEST_MISMATCH),
        ("md5=:AAAA:", F.DIGEST_MISSING),
        ("sha-256=abc", F.MALFORMED),
        ("sha-256=:AAAA", F.MALFORMED),
    ],
)
def test_rfc9421_multiple_content_digests(rsa: keys.KeyPair, digest: str, expected: F | None):
    """Given a signed Content-Digest with several members, when verified, then all known match."""
    components = [("@method", "POST"), ("@target-uri", INBOX), ("content-digest", digest)]
    headers = {
        "Content-Digest": digest,
        **hand_rfc(
            rsa.private_pem, components, f';created={int(NOW.timestamp())};keyid="{KEY_ID}"'
        ),
    }
    if expected is None:
        check(headers, rsa.public_pem)
    else:
        assert failure(headers, rsa.public_pem) is expected


# --- several RFC 9421 signatures -----------------------------------------------------------------


def _two_signatures(first: dict[str, str], second: dict[str, str]) -> dict[str, str]:
    return {
        **AS_JSON,
        "Content-Digest": httpsig.content_digest(BODY),
        "Signature-Input": f"{first['Signature-Input']}, {second['Signature-Input']}",
        "Signature": f"{first['Signature']}, {second['Signature']}",
    }


def test_first_usable_label_is_chosen(rsa: keys.KeyPair, ed: keys.KeyPair):
    """Given an HMAC signature then ours, when parsed, then the first usable label (ours) wins."""
    hmac_sig = {
        "Signature-Input": 'proxy=("@method");created=1;keyid="p";alg="hmac-sha256"',
        "Signature": "proxy=:AAAA:",
    }
    ours = rfc_signed(ed)
    parsed = check(_two_signatures(hmac_sig, ours), ed.public_pem)
    assert (parsed.label, parsed.algorithm) == ("sig1", "ed25519")


def test_first_of_two_usable_labels_wins_without_fallback(rsa: keys.KeyPair, ed: keys.KeyPair):
    """Given two usable signatures, when the first fails, then there is no fallback to the next."""
    first = httpsig.sign_request_rfc9421(
        "POST",
        INBOX,
        AS_JSON,
        BODY,
        key_id="a",
        label="a",
        private_key_pem=rsa.private_pem,
        now=NOW,
    )
    second = httpsig.sign_request_rfc9421(
        "POST", INBOX, AS_JSON, BODY, key_id="b", label="b", private_key_pem=ed.private_pem, now=NOW
    )
    headers = _two_signatures(first, second)
    assert httpsig.parse_request_signature("POST", INBOX, headers).key_id == "a"
    check(headers, rsa.public_pem)
    assert failure(headers, ed.public_pem) is F.KEY_TYPE_MISMATCH


def test_all_labels_unusable_reports_the_first_problem():
    """Given only unusable labels, when parsed, then the first label's failure is raised."""
    headers = {
        "Signature-Input": 'a=("@method");created=1;keyid="k";alg="hmac-sha256", b=("@x")',
        "Signature": "a=:AAAA:, b=:AAAA:",
    }
    with pytest.raises(SignatureError) as caught:
        httpsig.parse_request_signature("GET", INBOX, headers)
    assert caught.value.failure is F.UNSUPPORTED_ALGORITHM


# --- structured fields (RFC 8941), cross-checked with http_sf ------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        B23_INPUT,
        B26_SIGNATURE,
        'sig1=("@method" "@target-uri");created=1618884473;keyid="k\\"x\\\\y";alg=tok, '
        "sig2=:AAEC:;a=?0",
        "flag;x=-12.5, n=0042, d=1.50, t=*foo/bar:baz, e=()",
        'a=( "x"   "y" );p=?1,b=1  ,c=:YQ==:',
        "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:AA:",
    ],
)
def test_structured_dictionary_round_trip_matches_http_sf(text: str):
    """Given a Dictionary field, when parsed and re-serialised, then we match http_sf exactly."""
    ours = sfv.serialize_dictionary(sfv.parse_dictionary(text))
    assert ours == http_sf.ser(http_sf.parse(text.encode(), tltype="dictionary"))


def test_structured_values_parse_to_python_types():
    """Given a Dictionary with every bare type, when parsed, then values get the right types."""
    parsed = sfv.parse_dictionary('a=1;s="x";t=tok;b=?1;d=-0.5;y=:AQI=:, l=("p" 2);q')
    assert parsed["a"] == sfv.Item(
        1, {"s": "x", "t": "tok", "b": True, "d": -0.5, "y": b"\x01\x02"}
    )
    assert isinstance(parsed["a"].params["t"], sfv.Token)
    assert parsed["l"] == sfv.InnerList((sfv.Item("p"), sfv.Item(2)), {"q": True})


@pytest.mark.parametrize(
    "text",
    [
        "a=1,",
        "A=1",
        "a=(1 2",
        'a="unterminated',
        'a="bad\\escape"',
        "a=:not base64!:",
        "a=?2",
        "a=1234567890123456",
        "a=1.2345",
        "a=1 b=2",
        'a="tab\there"',
    ],
)
def test_structured_parse_errors_agree_with_http_sf(text: str):
    """Given an invalid Dictionary, when parsed, then we and http_sf both refuse it."""
    with pytest.raises(sfv.StructuredFieldError):
        sfv.parse_dictionary(text)
    with pytest.raises(ValueError):
        http_sf.parse(text.encode(), tltype="dictionary")


def test_structured_serialiser_refuses_unrepresentable_values():
    """Given values RFC 8941 cannot carry, when serialising, then StructuredFieldError."""
    for value in (10**15, "naïve", sfv.Token("1abc")):
        with pytest.raises(sfv.StructuredFieldError):
            sfv.serialize_bare_item(value)
    with pytest.raises(sfv.StructuredFieldError):
        sfv.serialize_dictionary({"Upper": sfv.Item(1)})


def test_cavage_parameter_pattern_matches_the_plain_grammar() -> None:
    """Given 20,000 seeded mutations of Signature header values, then the unrolled parameter
    pattern matches exactly what the plain per-character grammar matches, at every offset."""
    import random
    import re

    from fedcomments.ap.httpsig_cavage import _CAVAGE_PARAM

    plain = re.compile(
        r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^",\s]*))\s*(?:,|$)')
    rng = random.Random(20261126)
    alphabet = 'ab=", \\\tZ9-_\n'
    seeds = ['keyId="https://a/b#k",algorithm="rsa-sha256",headers="(request-target) host",'
             'signature="QUJD+/=="', 'a="x\\"y", b=c', 'k="\\\\", z="q"']
    for _ in range(20_000):
        chars = list(rng.choice(seeds))
        for _ in range(rng.randint(0, 4)):
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(alphabet))
        value = "".join(chars)
        for pos in range(0, len(value), 5):
            ours, reference = _CAVAGE_PARAM.match(value, pos), plain.match(value, pos)
            assert (ours and (ours.groups(), ours.end())) == \
                (reference and (reference.groups(), reference.end())), (value, pos)


# --- the covered Host names the URL ---------------------------------------------------------


def test_cavage_covered_host_must_name_the_url(rsa: keys.KeyPair) -> None:
    """Given draft-cavage signatures over (request-target) host date digest with various
    Host values, when each is checked against https://blog.example/inbox, then only those
    naming that authority (case and the default port aside) hold; the others fail with
    WRONG_HOST before any key is involved."""
    def verdict(host: str) -> str:
        headers = {"Host": host, "Date": httpsig.http_date(NOW),
                   "Digest": httpsig.body_digest_cavage(BODY), **AS_JSON}
        signer = HeaderSigner(KEY_ID, rsa.private_pem, algorithm="rsa-sha256",
                              sign_header="signature",
                              headers=["(request-target)", "host", "date", "digest"])
        signed = dict(signer.sign(headers, method="POST", path="/inbox"))
        parsed = httpsig.parse_request_signature("POST", INBOX, signed)
        try:
            httpsig.check_request(parsed, method="POST", url=INBOX, headers=signed, body=BODY,
                                  now=NOW)
            check(signed, rsa.public_pem)
        except httpsig.SignatureError as exc:
            return exc.failure.value
        return "ok"

    hosts = ["blog.example", "BLOG.Example", "blog.example:443", "other.example",
             "blog.example:8443", "blog.example.evil", "blog.example/inbox",
             "user@blog.example", ""]
    assert {host: verdict(host) for host in hosts} == {
        "blog.example": "ok", "BLOG.Example": "ok", "blog.example:443": "ok",
        **{host: "wrong_host" for host in hosts[3:]}}
