"""Key pairs, PEM loading and caching, FEP-521a multibase keys, and the sign/verify primitives."""

from __future__ import annotations

import base64
import textwrap

import pytest
from Crypto.PublicKey import ECC  # pycryptodome, an independent source of a P-256 key

from fedcomments.ap import keys
from fedcomments.ap.keys import KeyFormatError
from tests.helpers.vectors import (
    CAVAGE_PRIVATE,
    CAVAGE_PUBLIC,
    RFC_ED25519_PRIVATE,
    RFC_ED25519_PUBLIC,
    RFC_RSA_PSS_PRIVATE,
    RFC_RSA_PSS_PUBLIC,
)

# W3C did:key examples: an Ed25519 key (its JWK x is O2onvM62…) and a 2048-bit RSA key.
DID_KEY_ED25519 = "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"
DID_KEY_ED25519_X = "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik"
DID_KEY_RSA = (
    "z4MXj1wBzi9jUstyPMS4jQqB6KdJaiatPkAtVtGc6bQEQEEsKTic4G7Rou3iBf9vPmT5dbkm9qsZsuVNjq8HCuW1w2"
    "4nhBFGkRE4cd2Uf2tfrB3N7h4mnyPp1BF3ZttHTYv3DLUPi1zMdkULiow3M1GfXkoC6DoxDUm1jmN6GBj22SjVsr6d"
    "xezRVQc7aj9TxE7JLbMH1wh5X3kA58H3DFW8rnYMakFGbca5CB2Jf6CnGQZmL7o5uJAdTwXfy2iiiyPxXEGerMhHwh"
    "jTA1mKYobyk2CpeEcmvynADfNZ5MBvcCS7m3XkFCMNUYBS9NQ3fze6vMSUPsNa6GVYmKx2x6JrdEjCk3qRMMmyjnjC"
    "MfR4pXbRMZa3i"
)
DID_KEY_P256 = "zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169"


def _b58(data: bytes) -> str:
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    number, out = int.from_bytes(data, "big"), ""
    while number:
        number, digit = divmod(number, 58)
        out = alphabet[digit] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _pem_body(pem: str) -> bytes:
    lines = [line for line in pem.strip().splitlines() if not line.startswith("-----")]
    return base64.b64decode("".join(lines))


def _pem(label: str, der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"


def test_generate_rsa_keypair_is_pkcs8_and_spki():
    """Given a fresh RSA pair, when inspected, then it is PKCS#8/SPKI PEM, 2048-bit, and matched."""
    pair = keys.generate_rsa_keypair()
    assert pair.private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert pair.public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert keys.load_public_key(pair.public_pem).key_size == 2048
    assert keys.public_pem_from_private(pair.private_pem) == pair.public_pem
    assert keys.public_key_kind(pair.public_pem) == "rsa"


def test_generate_rsa_keypair_refuses_short_keys():
    """Given a request for a 1024-bit key, when generating, then it is refused."""
    with pytest.raises(ValueError, match="2048"):
        keys.generate_rsa_keypair(1024)


def test_generate_ed25519_keypair_round_trips():
    """Given a fresh Ed25519 pair, when inspected, then it is Ed25519 and the halves match."""
    pair = keys.generate_ed25519_keypair()
    assert pair.private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert keys.public_pem_from_private(pair.private_pem) == pair.public_pem
    assert keys.private_key_kind(pair.private_pem) == "ed25519"


def test_keypair_is_frozen():
    """Given a KeyPair, when a field is assigned, then it refuses (keys are values)."""
    pair = keys.KeyPair("a", "b")
    with pytest.raises(AttributeError):
        pair.private_pem = "c"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("private_pem", "public_pem"),
    [
        (RFC_ED25519_PRIVATE, RFC_ED25519_PUBLIC),
        (RFC_RSA_PSS_PRIVATE, RFC_RSA_PSS_PUBLIC),
        (CAVAGE_PRIVATE, CAVAGE_PUBLIC),
    ],
    ids=["rfc9421-ed25519", "rfc9421-rsa-pss-oid", "cavage-pkcs1"],
)
def test_public_pem_from_private_matches_published_vectors(private_pem: str, public_pem: str):
    """Given a published test private key, when deriving its public half, then it matches."""
    assert keys.public_pem_from_private(private_pem) == public_pem


def test_pkcs1_public_key_is_accepted_and_canonicalised():
    """Given an `RSA PUBLIC KEY` (PKCS#1) PEM, when loaded, then it equals the SPKI form."""
    spki = _pem_body(CAVAGE_PUBLIC)
    pkcs1 = _pem("RSA PUBLIC KEY", spki[22:])  # SPKI wraps the PKCS#1 structure after 22 bytes
    assert keys.canonical_public_pem(pkcs1) == CAVAGE_PUBLIC


def test_loaded_keys_are_cached():
    """Given the same PEM twice, when loading, then the parsed object is reused from the cache."""
    pair = keys.generate_ed25519_keypair()
    before = keys.load_public_key.cache_info().hits
    assert keys.load_public_key(pair.public_pem) is keys.load_public_key(pair.public_pem)
    assert keys.load_public_key.cache_info().hits >= before + 1
    assert keys.load_public_key.cache_info().maxsize == 1024
    assert keys.load_private_key(pair.private_pem) is keys.load_private_key(pair.private_pem)


@pytest.mark.parametrize(
    "pem",
    ["", "not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "clé"],
)
def test_unparsable_public_keys_raise_key_format_error(pem: str):
    """Given garbage instead of a public key, when loading, then KeyFormatError is raised."""
    with pytest.raises(KeyFormatError, match="unparsable public key"):
        keys.load_public_key(pem)


def test_unparsable_private_key_raises_key_format_error():
    """Given a public PEM where a private key is expected, when loading, then KeyFormatError."""
    with pytest.raises(KeyFormatError, match="unparsable private key"):
        keys.load_private_key(CAVAGE_PUBLIC)


def test_elliptic_curve_public_key_is_refused():
    """Given a P-256 key (not used by our peers), when loading, then its type is refused."""
    ec_pem = ECC.generate(curve="P-256").public_key().export_key(format="PEM")
    with pytest.raises(KeyFormatError, match="unsupported public key type"):
        keys.load_public_key(ec_pem)


def test_key_format_error_is_a_bad_input_error():
    """Given KeyFormatError, when mapped at a boundary, then it reads as bad input (400, exit 2)."""
    assert (KeyFormatError.http_status, KeyFormatError.exit_code) == (400, 2)


def test_ed25519_multibase_decodes_to_the_did_key_example():
    """Given the did:key Ed25519 example, when decoded, then its raw key is the published JWK x."""
    pem = keys.public_key_from_multibase(DID_KEY_ED25519)
    x = base64.urlsafe_b64encode(_pem_body(pem)[-32:]).decode().rstrip("=")
    assert x == DID_KEY_ED25519_X
    assert keys.public_key_kind(pem) == "ed25519"
    assert keys.multibase_from_public_pem(pem) == DID_KEY_ED25519


def test_rfc9421_ed25519_key_multibase_round_trip():
    """Given the RFC 9421 Ed25519 key, when encoded to multibase and back, then the PEM survives."""
    encoded = keys.multibase_from_public_pem(RFC_ED25519_PUBLIC)
    assert encoded.startswith("z6Mk")  # every Ed25519 multikey starts so (0xed01 prefix)
    assert keys.public_key_from_multibase(encoded) == RFC_ED25519_PUBLIC


def test_rsa_multibase_decodes_the_did_key_example():
    """Given the did:key RSA example (multicodec 0x1205), when decoded, then it round-trips."""
    pem = keys.public_key_from_multibase(DID_KEY_RSA)
    assert keys.load_public_key(pem).key_size == 2048
    assert keys.multibase_from_public_pem(pem) == DID_KEY_RSA


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("u7QE", "base58btc"),  # base64url multibase, not base58btc
        ("z0OIl", "invalid base58btc character"),
        (DID_KEY_P256, "unsupported multicodec prefix 8024"),
        ("z" + _b58(b"\xed\x01" + bytes(31)), "exactly 32 key bytes"),
    ],
)
def test_bad_multibase_values_raise_key_format_error(value: str, message: str):
    """Given a bad or unsupported publicKeyMultibase, when decoded, then KeyFormatError says why."""
    with pytest.raises(KeyFormatError, match=message):
        keys.public_key_from_multibase(value)


@pytest.mark.parametrize("primitive", ["rsa-pkcs1-sha256", "rsa-pss-sha512"])
def test_rsa_primitives_sign_and_verify(primitive: keys.Primitive):
    """Given an RSA key, when signing with a primitive, then only that data and key verify."""
    signature = keys.sign_bytes(RFC_RSA_PSS_PRIVATE, primitive, b"hello")
    assert keys.verify_bytes(RFC_RSA_PSS_PUBLIC, primitive, signature, b"hello")
    assert not keys.verify_bytes(RFC_RSA_PSS_PUBLIC, primitive, signature, b"hellO")
    assert not keys.verify_bytes(CAVAGE_PUBLIC, primitive, signature, b"hello")


def test_pkcs1_and_pss_are_not_interchangeable():
    """Given a PKCS#1 v1.5 signature, when checked as PSS, then it does not verify."""
    signature = keys.sign_bytes(RFC_RSA_PSS_PRIVATE, "rsa-pkcs1-sha256", b"x")
    assert not keys.verify_bytes(RFC_RSA_PSS_PUBLIC, "rsa-pss-sha512", signature, b"x")


def test_ed25519_primitive_is_deterministic():
    """Given the RFC Ed25519 key, when signing twice, then both signatures are equal and verify."""
    first = keys.sign_bytes(RFC_ED25519_PRIVATE, "ed25519", b"data")
    assert first == keys.sign_bytes(RFC_ED25519_PRIVATE, "ed25519", b"data")
    assert keys.verify_bytes(RFC_ED25519_PUBLIC, "ed25519", first, b"data")


def test_primitive_with_the_wrong_key_type():
    """Given an Ed25519 key, when used with an RSA primitive, then sign fails, verify is False."""
    with pytest.raises(ValueError, match="cannot sign with a ed25519 key"):
        keys.sign_bytes(RFC_ED25519_PRIVATE, "rsa-pkcs1-sha256", b"x")
    signature = keys.sign_bytes(RFC_ED25519_PRIVATE, "ed25519", b"x")
    assert not keys.verify_bytes(RFC_ED25519_PUBLIC, "rsa-pkcs1-sha256", signature, b"x")
