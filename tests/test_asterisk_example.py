"""examples/asterisk_fastagi.py, the README's Asterisk script, run against a stand-in Asterisk
(tests/fakes/asterisk_agi.py) and the real service: the rating it drives through the JSON keypad dialog is stored
once, a hang-up stores nothing."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest
from fakes.asterisk_agi import FakeAsterisk
from helpers import TOKEN, Hcp

from examples import asterisk_fastagi


@pytest.fixture
async def agi_port(hcp: Hcp) -> AsyncIterator[int]:
    app = asterisk_fastagi.application(str(hcp.client.make_url("")).rstrip("/"), TOKEN)
    server = await asyncio.start_server(app.handler, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()
    await server.wait_closed()


async def test_a_bad_rating_with_reasons_is_stored_once(hcp: Hcp, agi_port: int) -> None:
    case_no = (await hcp.post_case(phone=hcp.new_phone()))["case_no"]
    asterisk = FakeAsterisk(agi_port, f"1733561234.{secrets.randbelow(9999)}", "13800138000", args=[case_no],
                            keys=["4", "13#"])
    await asterisk.call()
    assert asterisk.commands[-1] == "HANGUP"
    synth = [c for c in asterisk.commands if c.startswith("EXEC MRCPSynth")]
    assert any("非常满意请按1" in c for c in synth) and any("已记录您的评价" in c for c in synth)
    gets = [c for c in asterisk.commands if c.startswith("GET DATA")]
    assert gets == ["GET DATA silence/1 8000 1", "GET DATA silence/1 10000 9"]
    case = await hcp.case(case_no)
    [ev] = case["evaluations"]
    assert ev["grade"] == "dissatisfied" and ev["reasons"] == ["attitude", "process"] and ev["channel"] == "phone"
    assert len(case["work_orders"]) == 1


async def test_silence_twice_then_goodbye_and_a_hang_up_store_nothing(hcp: Hcp, agi_port: int) -> None:
    case_no = (await hcp.post_case(phone=hcp.new_phone()))["case_no"]
    silent = FakeAsterisk(agi_port, "1733561234.1", "13800138000", args=[case_no], keys=[None, None])
    await silent.call()
    assert any("感谢您的来电，再见" in c for c in silent.commands) and silent.commands[-1] == "HANGUP"
    gone = FakeAsterisk(agi_port, "1733561234.2", "13800138000", args=[case_no], keys=["5"], hang_up_at_get_data=1)
    await gone.call()
    assert "HANGUP" not in gone.commands  # the caller hung up first
    assert (await hcp.case(case_no))["evaluations"] == []
