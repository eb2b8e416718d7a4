"""Signed rating-page links (PUBLIC_URL/r/{token}): short enough for an SMS, unforgeable.

A token names one case and carries an HMAC of it; whether the case can still be rated is decided
by the store when the page opens, not by the token, so no expiry is baked in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable

Mac = Callable[[bytes, bytes], bytes]


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _ALPHABET[r] + out
        if n == 0:
            return out


class Links:
    """`mac`: the keyed hash of the configured algorithms (HMAC-SHA-256, or HMAC-SM3 with HAOCHAPING_CRYPTO=sm);
    `previous_mac`: the previous key's, when a rotation changed the algorithms too."""

    def __init__(self, public_url: str, key: bytes, previous: bytes | None = None, mac: Mac = hmac_sha256,
                 previous_mac: Mac | None = None) -> None:
        self.public_url = public_url.rstrip("/")
        # After `haochaping secret rotate`, links already sent under the previous key keep working.
        self._signers = [(key, mac)] + ([(previous, previous_mac or mac)] if previous is not None else [])

    @staticmethod
    def _mac(payload: str, key: bytes, mac: Mac) -> str:
        return base64.urlsafe_b64encode(mac(key, payload.encode())[:12]).decode().rstrip("=")

    def token(self, case_id: int) -> str:
        payload = _b36(case_id)
        return f"{payload}.{self._mac(payload, *self._signers[0])}"

    def url(self, case_id: int) -> str:
        return f"{self.public_url}/r/{self.token(case_id)}"

    def case_id(self, token: str) -> int | None:
        payload, _, mac = token.partition(".")
        if not payload or not mac or len(payload) > 12 or not all(c in _ALPHABET for c in payload):
            return None
        signed = any(hmac.compare_digest(mac.encode(), self._mac(payload, key, fn).encode())
                     for key, fn in self._signers)
        return int(payload, 36) if signed else None
