"""The simulator's 12345 keypad runs the JSON keypad dialog a centre's switch runs (issue 24), so a centre tries
its prompts and recordings there before going live: the policy's recordings show beside the prompts they replace,
and the call is one of the dialog's calls, stored once like a switch's."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import Hcp, without_providers
from simulator_support import Sim, world_evaluations

from bot.infra.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return without_providers(settings)


@pytest.fixture
def policy_path(tmp_path: Path) -> str:
    path = tmp_path / "policy.toml"
    path.write_text('[hotline.recordings.zh_Hans]\n"voice.grade_menu" = "centre/zh/grade_menu.wav"\n',
                    encoding="utf-8")
    return str(path)


async def test_a_recorded_prompt_shows_its_file_and_the_rating_is_stored_once(hcp: Hcp) -> None:
    sim = Sim(hcp)
    await sim.open()
    doc = await sim.do("call")
    spoken = [e for e in doc["phone_log"] if e["dir"] == "out"]
    assert [e.get("audio") for e in spoken] == [None, "centre/zh/grade_menu.wav"]
    assert "非常满意请按1" in spoken[1]["text"]
    ticket = doc["cases"][0]["case_no"]
    doc = await sim.do("keys", {"digits": "2"})
    assert doc["call"] is None
    assert [e["grade"] for e in await world_evaluations(hcp, ticket)] == ["satisfied"]
