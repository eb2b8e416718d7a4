"""Personal data sealed at rest and masked in every answer and log line (ARCHITECTURE invariant 5)."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from servers import BACKENDS

from bot.infra.logs import MaskingFormatter, mask_numbers
from store.sealing import Sealer


def test_sealing_round_trips_and_hides():
    sealer = Sealer("k" * 32)
    sealed = sealer.seal("+8613800138000")
    assert "13800138000" not in sealed
    assert sealer.open(sealed) == "+8613800138000"
    assert sealer.seal("+8613800138000") != sealed  # a fresh nonce each time
    assert sealer.lookup_hash("phone", "+8613800138000") == Sealer("k" * 32).lookup_hash("phone", "+8613800138000")
    assert sealer.lookup_hash("phone", "+8613800138000") != Sealer("j" * 32).lookup_hash("phone", "+8613800138000")
    with pytest.raises(Exception):  # noqa: B017  (InvalidTag: a sealed value cannot be altered)
        sealer.open(sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1])


@pytest.mark.parametrize("text", [
    "to 13800138000", "+8613800138000 replied", "0086 138 0013 8000", "138-0013-8000", "call +447700900123",
    "请回电１３８００１３８０００", "＋８６ １３８-００１３-８０００", "call ＋４４７７００９００１２３",
])
def test_log_mask_covers_every_way_a_number_is_written(text):
    masked = mask_numbers(text).translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    assert "00138000" not in masked.replace(" ", "").replace("-", "") and "7700900123" not in masked


FULL_WIDTH = str.maketrans("0123456789+", "０１２３４５６７８９＋")


@given(middle=st.text("0123456789", min_size=4, max_size=4), end=st.text("0123456789", min_size=4, max_size=4),
       second=st.sampled_from("3456789"), prefix=st.sampled_from(["", "+86", "0086", "+86 ", "86"]),
       sep=st.sampled_from(["", " ", "-"]), wide=st.lists(st.booleans(), min_size=17, max_size=17),
       before=st.text(alphabet="请回电话是：，。 abc", max_size=5), after=st.text(alphabet="谢谢。 ,x", max_size=5))
def test_a_mobile_in_ascii_or_full_width_digits_loses_its_middle(
        middle: str, end: str, second: str, prefix: str, sep: str, wide: list[bool], before: str, after: str) -> None:
    """Any mix of ASCII and full-width (a Chinese input method's) digits: the middle four never survive."""
    written = f"{prefix}1{second}0{sep}{middle}{sep}{end}"
    mixed = "".join(c.translate(FULL_WIDTH) if w else c for c, w in zip(written, wide + [False] * 10, strict=False))
    masked = mask_numbers(before + mixed + after)
    digits = "".join(c for c in masked.translate(str.maketrans("０１２３４５６７８９", "0123456789")) if c.isdigit())
    assert f"1{second}0{middle}{end}" not in digits and "****" in masked


def test_log_mask_covers_openids():
    openid = "oAbCdEfGhIjKlMnOpQrStUvWxYz1"
    masked = mask_numbers(f"from {openid}: hello")
    assert openid not in masked and "oAbC****xYz1" in masked


def test_the_formatter_masks_arguments_and_tracebacks():
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "number %s", ("13800138000",), None)
    try:
        raise ValueError("bad +8613912345678")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    out = MaskingFormatter("%(message)s").format(record)
    assert "13800138000" not in out and "13912345678" not in out and "138****8000" in out


async def test_a_whole_conversation_leaves_no_number_in_the_logs_or_the_sqlite_file(hcp, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    case_no, phone, _ = await hcp.reminded()
    await hcp.sms(phone, "5")
    await hcp.sms(phone, "1 2")
    await hcp.sms(hcp.new_phone(), "1")
    await hcp.case(case_no)

    formatter = MaskingFormatter("%(message)s")
    logged = "\n".join(formatter.format(r) for r in caplog.records)
    assert phone not in logged
    await hcp.rt.db.close()  # flush WAL into the file before reading its bytes
    db_file = Path(hcp.rt.settings.database_url.split("///", 1)[1])
    blobs = b"".join(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    assert phone.encode() not in blobs and ("+86" + phone).encode() not in blobs
    with sqlite3.connect(db_file) as conn:
        [(masked,)] = conn.execute("SELECT masked FROM contacts").fetchall()[:1]
    assert masked == phone[:3] + "****" + phone[-4:]


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
async def test_contacts_are_found_by_keyed_hash_not_by_number(hcp):
    from sqlmodel import select

    from store.models import Contact

    phone = hcp.new_phone()
    await hcp.post_case(phone=phone)
    await hcp.post_case(phone="+86" + phone)  # the same person
    async with hcp.rt.db.read() as session:
        contacts = (await session.exec(select(Contact))).all()
    assert len(contacts) == 1
    [c] = contacts
    assert phone not in c.address_sealed and phone not in c.address_hash
    assert hcp.rt.sealer.open(c.address_sealed) == "+86" + phone
