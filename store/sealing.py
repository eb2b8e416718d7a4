"""Sealing personal data: phone numbers and openids are stored encrypted and found by a keyed hash.

One secret key feeds everything through HKDF with a label per purpose, so that the look-up hash,
the encryption key and the link-signing key never coincide and a leak of one use reveals no other.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive(secret: str, label: str, length: int = 32) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=b"haochaping/v1",
                info=label.encode()).derive(secret.encode())


def fingerprint(secret: str) -> str:
    """Names a key without revealing it: which key sealed the data (store/settings.SEALED_WITH)."""
    return derive(secret, "fingerprint", 16).hex()


class Sealer:
    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ValueError("the secret key must be at least 16 characters")
        self._aead = AESGCM(derive(secret, "seal"))
        self._hash_key = derive(secret, "lookup")
        self._secret = secret

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, sealed: str) -> str:
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        return self._aead.decrypt(raw[:12], raw[12:], None).decode()

    def lookup_hash(self, kind: str, value: str) -> str:
        """Deterministic, keyed: equal addresses meet in an index without the index holding them."""
        return hmac.new(self._hash_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def subkey(self, label: str) -> bytes:
        return derive(self._secret, label)
