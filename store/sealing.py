"""Sealing personal data: phone numbers and openids are stored encrypted and found by a keyed hash.

One secret key feeds everything through HKDF with a label per purpose, so that the look-up hash,
the encryption key and the link-signing key never coincide and a leak of one use reveals no other.

Two families of algorithms (`HAOCHAPING_CRYPTO`):
- "aes" (the default): HKDF-SHA-256, AES-256-GCM, HMAC-SHA-256;
- "sm", the national algorithms a 商用密码应用安全性评估 (密评) expects where cryptography protects personal data:
  HKDF-SM3, SM4-GCM (SM4 in GCM mode with a 96-bit nonce and a 128-bit tag, as OpenSSL 3 provides it through
  `cryptography`), HMAC-SM3 (GB/T 32905 SM3, GB/T 32907 SM4; tests/store/test_sealing_sm.py holds their published
  vectors).
The stored form is the same (nonce, ciphertext, tag, base64); which family sealed a database is part of the key's
fingerprint, so a service started with the other one refuses instead of sealing new data the old cannot join.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ALGORITHMS = ("aes", "sm")
NONCE = 12
TAG = 16


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithms {algorithm!r}: expected one of {', '.join(ALGORITHMS)}")
    return hashes.SM3() if algorithm == "sm" else hashes.SHA256()


def derive(secret: str, label: str, length: int = 32, algorithm: str = "aes") -> bytes:
    return HKDF(algorithm=_hash(algorithm), length=length, salt=b"haochaping/v1",
                info=label.encode()).derive(secret.encode())


def fingerprint(secret: str, algorithm: str = "aes") -> str:
    """Names a key and its algorithms without revealing the key: what sealed the data (store/settings.SEALED_WITH).
    The AES fingerprint is the one recorded before the national algorithms existed."""
    return derive(secret, "fingerprint" if algorithm == "aes" else f"fingerprint:{algorithm}", 16, algorithm).hex()


def mac(key: bytes, data: bytes, algorithm: str = "aes") -> bytes:
    """HMAC-SHA-256 or HMAC-SM3."""
    if algorithm == "aes":
        return hmac.new(key, data, hashlib.sha256).digest()
    h = crypto_hmac.HMAC(key, _hash(algorithm))
    h.update(data)
    return h.finalize()


class _SM4GCM:
    """SM4 in GCM mode, the interface of AESGCM (`cryptography` has no AEAD class of its own for it)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, nonce: bytes, data: bytes, associated: bytes | None) -> bytes:
        encryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce)).encryptor()
        if associated:
            encryptor.authenticate_additional_data(associated)
        return encryptor.update(data) + encryptor.finalize() + encryptor.tag

    def decrypt(self, nonce: bytes, data: bytes, associated: bytes | None) -> bytes:
        decryptor = Cipher(algorithms.SM4(self._key), modes.GCM(nonce, data[-TAG:])).decryptor()
        if associated:
            decryptor.authenticate_additional_data(associated)
        return decryptor.update(data[:-TAG]) + decryptor.finalize()


class Sealer:
    """Seals with one key. During an online rotation (`haochaping keys rotate`) it also holds the key the data was
    sealed with before (`previous`): what is still sealed with that one opens, and a look-up asks both hashes,
    while everything written is sealed and hashed with the new key only."""

    def __init__(self, secret: str, algorithm: str = "aes", previous: Sealer | None = None) -> None:
        if len(secret) < 16:
            raise ValueError("the secret key must be at least 16 characters")
        _hash(algorithm)  # a name it does not know is refused here
        self.algorithm = algorithm
        self._aead = (_SM4GCM(derive(secret, "seal", 16, "sm")) if algorithm == "sm"
                      else AESGCM(derive(secret, "seal")))
        self._hash_key = derive(secret, "lookup", 32, algorithm)
        self._secret = secret
        self.previous = previous

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(NONCE)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), None)
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, sealed: str) -> str:
        """The plaintext; under a rotation, a value the new key does not open (GCM's tag tells, never a guess)
        is opened with the previous one."""
        try:
            return self.open_own(sealed)
        except InvalidTag:
            if self.previous is None:
                raise
            return self.previous.open(sealed)

    def open_own(self, sealed: str) -> str:
        """The plaintext of a value sealed with this very key; InvalidTag for any other."""
        raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        return self._aead.decrypt(raw[:NONCE], raw[NONCE:], None).decode()

    def lookup_hash(self, kind: str, value: str) -> str:
        """Deterministic, keyed: equal addresses meet in an index without the index holding them."""
        return mac(self._hash_key, f"{kind}:{value}".encode(), self.algorithm).hex()

    def rotating_from(self, previous: Sealer) -> Sealer:
        """This key, opening and finding what `previous` sealed too."""
        ring = copy.copy(self)
        ring.previous = previous
        return ring

    def lookup_hashes(self, kind: str, value: str) -> tuple[str, ...]:
        """What a look-up asks for: the hash under this key, and under a rotation also the one under the previous
        key (a row not re-sealed yet); what is written carries the first only."""
        mine = self.lookup_hash(kind, value)
        return (mine,) if self.previous is None else (mine, self.previous.lookup_hash(kind, value))

    def subkey(self, label: str) -> bytes:
        return derive(self._secret, label, 32, self.algorithm)

    def mac(self, key: bytes, data: bytes) -> bytes:
        """The keyed hash of this family (HMAC-SHA-256 or HMAC-SM3), for what the service signs (rating links)."""
        return mac(key, data, self.algorithm)
