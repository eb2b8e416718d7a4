"""Signed rating-page links (PUBLIC_URL/r/{token}): short enough for an SMS, unforgeable.

A token names one case and carries an HMAC of it; whether the case can still be rated is decided
by the store when the page opens, not by the token, so no expiry is baked in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _ALPHABET[r] + out
        if n == 0:
            return out


class Links:
    def __init__(self, public_url: str, key: bytes, previous: bytes | None = None) -> None:
        self.public_url = public_url.rstrip("/")
        self._key = key
        # After `haochaping secret rotate`, links already sent under the previous key keep working.
        self._previous = previous

    def _mac(self, payload: str, key: bytes | None = None) -> str:
        digest = hmac.new(key or self._key, payload.encode(), hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def token(self, case_id: int) -> str:
        payload = _b36(case_id)
        return f"{payload}.{self._mac(payload)}"

    def url(self, case_id: int) -> str:
        return f"{self.public_url}/r/{self.token(case_id)}"

    def case_id(self, token: str) -> int | None:
        payload, _, mac = token.partition(".")
        if not payload or not mac or len(payload) > 12 or not all(c in _ALPHABET for c in payload):
            return None
        keys = (self._key,) if self._previous is None else (self._key, self._previous)
        signed = any(hmac.compare_digest(mac.encode(), self._mac(payload, key).encode()) for key in keys)
        return int(payload, 36) if signed else None
