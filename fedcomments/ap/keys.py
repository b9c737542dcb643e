"""Actor key pairs: generate, load (cached), convert FEP-521a multibase keys, and the raw
sign/verify primitives the HTTP-signature layer builds on (it never sees `cryptography`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from fedcomments.errors import FedcommentsError

KeyKind = Literal["rsa", "ed25519"]
#: Signature primitives, named by what they compute rather than by any protocol's label.
Primitive = Literal["rsa-pkcs1-sha256", "rsa-pss-sha512", "ed25519"]

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
# Multicodec prefixes (unsigned varints) used by FEP-521a `publicKeyMultibase`.
_ED25519_PUB_CODEC = b"\xed\x01"  # 0xed, raw 32-byte key
_RSA_PUB_CODEC = b"\x85\x24"  # 0x1205, DER RSAPublicKey (PKCS#1), as Fedify emits it


class KeyFormatError(FedcommentsError):
    """A key (PEM or multibase) cannot be parsed, or is of a type we do not support."""

    http_status = 400
    exit_code = 2


@dataclass(frozen=True)
class KeyPair:
    """A private key (PKCS#8 PEM) and its public half (SubjectPublicKeyInfo PEM)."""

    private_pem: str
    public_pem: str


def _private_to_pem(key: PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _public_to_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def generate_rsa_keypair(bits: int = 2048) -> KeyPair:
    """A fresh RSA key pair; 2048 bits is what Mastodon generates and every peer accepts."""
    if bits < 2048:
        raise ValueError("RSA keys shorter than 2048 bits are not generated")
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return KeyPair(_private_to_pem(key), _public_to_pem(key.public_key()))


def generate_ed25519_keypair() -> KeyPair:
    """A fresh Ed25519 key pair (FEP-521a peers such as Fedify publish these)."""
    key = ed25519.Ed25519PrivateKey.generate()
    return KeyPair(_private_to_pem(key), _public_to_pem(key.public_key()))


@functools.lru_cache(maxsize=64)
def load_private_key(private_pem: str) -> PrivateKey:
    """Parse an unencrypted PKCS#8 or PKCS#1 PEM private key; parsed keys are cached."""
    try:
        key = serialization.load_pem_private_key(private_pem.strip().encode("ascii"), None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unparsable private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyFormatError(f"unsupported private key type {type(key).__name__}")
    return key


@functools.lru_cache(maxsize=1024)
def load_public_key(public_pem: str) -> PublicKey:
    """Parse a SubjectPublicKeyInfo or PKCS#1 (`RSA PUBLIC KEY`) PEM; parsed keys are cached.

    Some older fediverse software publishes PKCS#1 RSA public keys, so both forms are accepted.
    """
    try:
        key = serialization.load_pem_public_key(public_pem.strip().encode("ascii"))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unparsable public key: {exc}") from exc
    if not isinstance(key, rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise KeyFormatError(f"unsupported public key type {type(key).__name__}")
    return key


def key_kind(key: PrivateKey | PublicKey) -> KeyKind:
    """'rsa' or 'ed25519' for a loaded key."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    return "ed25519"


def public_key_kind(public_pem: str) -> KeyKind:
    """'rsa' or 'ed25519' for a public key PEM (raises KeyFormatError)."""
    return key_kind(load_public_key(public_pem))


def private_key_kind(private_pem: str) -> KeyKind:
    """'rsa' or 'ed25519' for a private key PEM (raises KeyFormatError)."""
    return key_kind(load_private_key(private_pem))


def public_pem_from_private(private_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM of a private key's public half."""
    return _public_to_pem(load_private_key(private_pem).public_key())


def canonical_public_pem(public_pem: str) -> str:
    """The SubjectPublicKeyInfo PEM for any accepted public key PEM (e.g. a PKCS#1 one)."""
    return _public_to_pem(load_public_key(public_pem))


def _b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        digit = _B58_ALPHABET.find(char)
        if digit < 0:
            raise KeyFormatError(f"invalid base58btc character {char!r}")
        number = number * 58 + digit
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    # Each leading '1' stands for one leading zero byte.
    zeros = len(text) - len(text.lstrip("1"))
    return b"\x00" * zeros + body


def _b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, digit = divmod(number, 58)
        out = _B58_ALPHABET[digit] + out
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + out


def public_key_from_multibase(value: str) -> str:
    """PEM for a FEP-521a `publicKeyMultibase` ('z' + base58btc of multicodec prefix + key).

    Fedify and other FEP-521a implementations publish Ed25519 keys (prefix 0xed01) this way;
    Fedify also emits RSA keys as multicodec 0x1205 over a PKCS#1 DER, accepted as well.
    """
    if not value.startswith("z"):
        raise KeyFormatError("publicKeyMultibase must be base58btc (prefix 'z')")
    raw = _b58decode(value[1:])
    try:
        if raw.startswith(_ED25519_PUB_CODEC):
            if len(raw) != len(_ED25519_PUB_CODEC) + 32:
                raise KeyFormatError("Ed25519 multikey must hold exactly 32 key bytes")
            key: PublicKey = ed25519.Ed25519PublicKey.from_public_bytes(raw[2:])
        elif raw.startswith(_RSA_PUB_CODEC):
            loaded = serialization.load_der_public_key(raw[2:])
            if not isinstance(loaded, rsa.RSAPublicKey):
                raise KeyFormatError("multicodec 0x1205 does not hold an RSA key")
            key = loaded
        else:
            raise KeyFormatError(f"unsupported multicodec prefix {raw[:2].hex()}")
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise KeyFormatError(f"unparsable multikey: {exc}") from exc
    return _public_to_pem(key)


def multibase_from_public_pem(public_pem: str) -> str:
    """The FEP-521a `publicKeyMultibase` form of a public key PEM (inverse of the above)."""
    key = load_public_key(public_pem)
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = _ED25519_PUB_CODEC + key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        raw = _RSA_PUB_CODEC + key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
    return "z" + _b58encode(raw)


def primitive_key_kind(primitive: Primitive) -> KeyKind:
    """The key type a signature primitive needs."""
    return "ed25519" if primitive == "ed25519" else "rsa"


def _pss() -> padding.PSS:
    # RFC 9421 section 3.3.1: MGF1 with SHA-512 and a 64-byte salt.
    return padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)


def sign_bytes(private_pem: str, primitive: Primitive, data: bytes) -> bytes:
    """Sign `data` with a primitive; the key type must fit (ValueError otherwise)."""
    key = load_private_key(private_pem)
    if key_kind(key) != primitive_key_kind(primitive):
        raise ValueError(f"{primitive} cannot sign with a {key_kind(key)} key")
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if primitive == "rsa-pss-sha512":
        return key.sign(data, _pss(), hashes.SHA512())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def verify_bytes(public_pem: str, primitive: Primitive, signature: bytes, data: bytes) -> bool:
    """True when `signature` over `data` verifies; False on any mismatch (key type included)."""
    key = load_public_key(public_pem)
    if key_kind(key) != primitive_key_kind(primitive):
        return False
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        elif primitive == "rsa-pss-sha512":
            key.verify(signature, data, _pss(), hashes.SHA512())
        else:
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True
