"""The national algorithms behind HAOCHAPING_CRYPTO=sm (store/sealing.py), checked against their published
known answers, so that an OpenSSL without them, or with a wrong build of them, fails here and not in a 密评:
- SM3, GB/T 32905-2016 appendix A: "abc" and "abcd" × 16;
- SM4, GB/T 32907-2016 appendix A: one block, and the same block encrypted 1,000,000 times;
then the sealer built on them: SM4-GCM round trips and refuses a changed byte, HMAC-SM3 look-ups are keyed and
differ from the AES family's, and a sealed value of one family does not open in the other."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from store.sealing import Sealer, fingerprint, mac

KEY = "k" * 32


def sm3(data: bytes) -> str:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize().hex()


def test_sm3_gives_the_answers_of_gb_t_32905() -> None:
    assert sm3(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert sm3(b"abcd" * 16) == "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_sm4_gives_the_answers_of_gb_t_32907() -> None:
    key = bytes.fromhex("0123456789abcdeffedcba9876543210")
    block = Cipher(algorithms.SM4(key), modes.ECB()).encryptor()
    assert block.update(key).hex() == "681edf34d206965e86b3e94f536e4246"
    text = key
    for _ in range(1_000_000):
        text = block.update(text)
    assert text.hex() == "595298c7c6fd271f0402f804c33d3f66"
    decrypt = Cipher(algorithms.SM4(key), modes.ECB()).decryptor()
    assert decrypt.update(bytes.fromhex("681edf34d206965e86b3e94f536e4246")) == key


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=0, max_size=200))
def test_sm4_gcm_sealing_round_trips_any_text(text: str) -> None:
    sealer = Sealer(KEY, "sm")
    sealed = sealer.seal(text)
    assert sealer.open(sealed) == text and sealed != sealer.seal(text)  # a fresh nonce each time


def test_a_changed_byte_or_the_other_family_does_not_open() -> None:
    sm, aes = Sealer(KEY, "sm"), Sealer(KEY, "aes")
    sealed = sm.seal("+8613800138000")
    flipped = sealed[:20] + ("A" if sealed[20] != "A" else "B") + sealed[21:]
    with pytest.raises(InvalidTag):
        sm.open(flipped)
    with pytest.raises(InvalidTag):
        aes.open(sealed)
    with pytest.raises(InvalidTag):
        sm.open(aes.seal("+8613800138000"))


def test_hmac_sm3_look_ups_are_keyed_stable_and_apart_from_the_aes_family() -> None:
    phone = "+8613800138000"
    sm = Sealer(KEY, "sm")
    assert sm.lookup_hash("phone", phone) == Sealer(KEY, "sm").lookup_hash("phone", phone)
    assert sm.lookup_hash("phone", phone) != Sealer("j" * 32, "sm").lookup_hash("phone", phone)
    assert sm.lookup_hash("phone", phone) != Sealer(KEY, "aes").lookup_hash("phone", phone)
    assert len(sm.lookup_hash("phone", phone)) == 64
    assert mac(b"key", b"data", "sm") != mac(b"key", b"data", "aes")
    assert fingerprint(KEY, "sm") != fingerprint(KEY, "aes") and fingerprint(KEY) == fingerprint(KEY, "aes")


def test_unknown_algorithms_are_refused() -> None:
    with pytest.raises(ValueError, match="expected one of aes, sm"):
        Sealer(KEY, "des")
