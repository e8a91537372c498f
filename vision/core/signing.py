"""Ed25519 signatures of model cards: who may roll a model out to the boxes.

A model version is its card (card.yaml, which names the model file and its sha256) and that
file; signing the card's bytes signs both. The engineer who trains a model signs its card with
a private key kept off the center (`streetvision models sign`); each box trusts the public keys
its site config lists (`model_updates.trusted_keys`), so a center that is broken into cannot
hand the boxes a model of its own. Keys and signatures travel as base64 of their raw bytes.
Uses `cryptography` (the Python Cryptographic Authority's maintained binding of OpenSSL).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

__all__ = ["SIGNATURE_SUFFIX", "SignatureError", "check_public_key", "generate_key", "public_key_of", "sign", "verify"]

SIGNATURE_SUFFIX = ".sig"  # card.yaml.sig beside card.yaml


class SignatureError(ValueError):
    """A signature that does not verify with any trusted key, or a key that is not one."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str, size: int) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what}: not base64") from None
    if len(raw) != size:
        raise SignatureError(f"{what}: {len(raw)} bytes, an Ed25519 {what} has {size}")
    return raw


def generate_key(private_path: Path) -> str:
    """Writes a new private key (PEM, readable by its owner only); returns its public key."""
    import os

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return public_key_of(private_path)


def _private(private_path: Path):  # type: ignore[no-untyped-def] # cryptography's key type, imported lazily
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SignatureError(f"{private_path}: not an Ed25519 private key")
    return key


def public_key_of(private_path: Path) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = _private(private_path).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64(raw)


def sign(data: bytes, private_path: Path) -> str:
    """The signature of `data`, base64."""
    return _b64(_private(private_path).sign(data))


def check_public_key(text: str) -> str:
    """`text` if it is a base64 Ed25519 public key (for config validation)."""
    _unb64(text, "public key", 32)
    return text


def verify(data: bytes, signature: str, trusted: list[str]) -> int:
    """The index of the trusted key that signed `data`; SignatureError when none did."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig = _unb64(signature, "signature", 64)
    for i, key in enumerate(trusted):
        try:
            Ed25519PublicKey.from_public_bytes(_unb64(key, "public key", 32)).verify(sig, data)
            return i
        except InvalidSignature:
            continue
    raise SignatureError("the signature does not verify with any trusted key")
