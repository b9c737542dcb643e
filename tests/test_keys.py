"""Key pairs, PEM loading and caching, FEP-521a multibase keys, and the sign/verify primitives."""

from __future__ import annotations

import base64
import textwrap

import pytest
from Crypto.PublicKey import ECC  # pycryptodome, an independent source of a P-256 key

from fedcomments.ap import keys
from fedcomments.ap.keys import KeyFormatError

# RFC 9421 appendix B.1.4 (test-key-ed25519).
RFC_ED25519_PRIVATE = """-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF
-----END PRIVATE KEY-----
"""
RFC_ED25519_PUBLIC = """-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=
-----END PUBLIC KEY-----
"""
# RFC 9421 appendix B.1.2 (test-key-rsa-pss): the private key carries the RSASSA-PSS OID.
RFC_RSA_PSS_PRIVATE = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADALBgkqhkiG9w0BAQoEggSqMIIEpgIBAAKCAQEAr4tmm3r20Wd/Pbqv
P1s2+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry5
3mm+oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7Oyr
FAHqgDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUA
AN5WUtzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw
9lq4aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oy
c6XI2wIDAQABAoIBAQCUB8ip+kJiiZVKF8AqfB/aUP0jTAqOQewK1kKJ/iQCXBCq
pbo360gvdt05H5VZ/RDVkEgO2k73VSsbulqezKs8RFs2tEmU+JgTI9MeQJPWcP6X
aKy6LIYs0E2cWgp8GADgoBs8llBq0UhX0KffglIeek3n7Z6Gt4YFge2TAcW2WbN4
XfK7lupFyo6HHyWRiYHMMARQXLJeOSdTn5aMBP0PO4bQyk5ORxTUSeOciPJUFktQ
HkvGbym7KryEfwH8Tks0L7WhzyP60PL3xS9FNOJi9m+zztwYIXGDQuKM2GDsITeD
2mI2oHoPMyAD0wdI7BwSVW18p1h+jgfc4dlexKYRAoGBAOVfuiEiOchGghV5vn5N
RDNscAFnpHj1QgMr6/UG05RTgmcLfVsI1I4bSkbrIuVKviGGf7atlkROALOG/xRx
DLadgBEeNyHL5lz6ihQaFJLVQ0u3U4SB67J0YtVO3R6lXcIjBDHuY8SjYJ7Ci6Z6
vuDcoaEujnlrtUhaMxvSfcUJAoGBAMPsCHXte1uWNAqYad2WdLjPDlKtQJK1diCm
rqmB2g8QE99hDOHItjDBEdpyFBKOIP+NpVtM2KLhRajjcL9Ph8jrID6XUqikQuVi
4J9FV2m42jXMuioTT13idAILanYg8D3idvy/3isDVkON0X3UAVKrgMEne0hJpkPL
FYqgetvDAoGBAKLQ6JZMbSe0pPIJkSamQhsehgL5Rs51iX4m1z7+sYFAJfhvN3Q/
OGIHDRp6HjMUcxHpHw7U+S1TETxePwKLnLKj6hw8jnX2/nZRgWHzgVcY+sPsReRx
NJVf+Cfh6yOtznfX00p+JWOXdSY8glSSHJwRAMog+hFGW1AYdt7w80XBAoGBAImR
NUugqapgaEA8TrFxkJmngXYaAqpA0iYRA7kv3S4QavPBUGtFJHBNULzitydkNtVZ
3w6hgce0h9YThTo/nKc+OZDZbgfN9s7cQ75x0PQCAO4fx2P91Q+mDzDUVTeG30mE
t2m3S0dGe47JiJxifV9P3wNBNrZGSIF3mrORBVNDAoGBAI0QKn2Iv7Sgo4T/XjND
dl2kZTXqGAk8dOhpUiw/HdM3OGWbhHj2NdCzBliOmPyQtAr770GITWvbAI+IRYyF
S7Fnk6ZVVVHsxjtaHy1uJGFlaZzKR4AGNaUTOJMs6NadzCmGPAxNQQOCqoUjn4XR
rOjr9w349JooGXhOxbu8nOxX
-----END PRIVATE KEY-----
"""
RFC_RSA_PSS_PUBLIC = """-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr4tmm3r20Wd/PbqvP1s2
+QEtvpuRaV8Yq40gjUR8y2Rjxa6dpG2GXHbPfvMs8ct+Lh1GH45x28Rw3Ry53mm+
oAXjyQ86OnDkZ5N8lYbggD4O3w6M6pAvLkhk95AndTrifbIFPNU8PPMO7OyrFAHq
gDsznjPFmTOtCEcN2Z1FpWgchwuYLPL+Wokqltd11nqqzi+bJ9cvSKADYdUAAN5W
Utzdpiy6LbTgSxP7ociU4Tn0g5I6aDZJ7A8Lzo0KSyZYoA485mqcO0GVAdVw9lq4
aOT9v6d+nb4bnNkQVklLQ3fVAvJm+xdDOp9LCNCN48V2pnDOkFV6+U9nV5oyc6XI
2wIDAQAB
-----END PUBLIC KEY-----
"""
# draft-cavage-http-signatures-12 appendix C: a PKCS#1 ("traditional") RSA private key.
CAVAGE_PRIVATE = """-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
"""
CAVAGE_PUBLIC = """-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3
6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6
Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw
oYi+1hqp1fIekaxsyQIDAQAB
-----END PUBLIC KEY-----
"""
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
