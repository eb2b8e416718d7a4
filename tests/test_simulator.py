"""The simulator over its JSON API, as its page's script uses it: a sample case, the clock moved
past 24 hours, the reminder on the simulated phone, a bad grade with reasons, the stored rating; the
WeChat chat and the 12345 keypad through the same dialog code; and never with a real provider."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from conftest import BACKENDS

from bot.config import Settings

on_both = pytest.mark.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The embedded default's providers: no Twilio (the local provider), so the simulator is on."""
    return dataclasses.replace(settings, twilio_account_sid=None, twilio_auth_token=None)


class Sim:
    def __init__(self, hcp: Any) -> None:
        self.hcp = hcp
        self.cookie = ""

    async def open(self) -> str:
        response = await self.hcp.client.get("/simulator/")
        assert response.status == 200
        self.cookie = response.cookies["hcp_sim"].value
        return await response.text()

    async def do(self, action: str, body: dict[str, Any] | None = None, expect: int = 200) -> dict[str, Any]:
        response = await self.hcp.client.post(f"/simulator/api/{action}", json=body or {},
                                              headers={"Cookie": f"hcp_sim={self.cookie}"})
        doc = await response.json()
        assert response.status == expect, doc
        return doc


@on_both
async def test_the_whole_sms_conversation(hcp):
    sim = Sim(hcp)
    page = await sim.open()
    assert 'src="/static/simulator.js' in page
    doc = await sim.do("case", {"channel": "sms"})
    [case] = doc["cases"]
    assert case["reminders"] == [] and case["remind_at"]

    doc = await sim.do("clock", {"hours": 24})
    reminders = [e for e in doc["sms"] if e["dir"] == "out" and e.get("kind") == "reminder"]
    assert len(reminders) == 1 and "1" in reminders[0]["text"] and "5" in reminders[0]["text"]

    doc = await sim.do("text", {"channel": "sms", "text": "4"})
    assert doc["sms"][-1]["dir"] == "out" and "1" in doc["sms"][-1]["text"]
    doc = await sim.do("text", {"channel": "sms", "text": "1 3"})
    [evaluation] = doc["cases"][0]["evaluations"]
    assert (evaluation["grade"], evaluation["reasons"], evaluation["channel"]) == (
        "dissatisfied", ["attitude", "process"], "sms")
    assert len(doc["cases"][0]["work_orders"]) == 1
    assert "+86" not in str(doc) and doc["phone"].count("*") == 4


async def test_the_simulator_is_404_with_a_real_provider(hcp, settings):
    hcp.rt.settings = dataclasses.replace(settings, twilio_account_sid="AC" + "0" * 32, twilio_auth_token="x" * 32)
    for method, path in (("GET", "/simulator/"), ("GET", "/simulator/api/state"), ("POST", "/simulator/api/case")):
        response = await hcp.client.request(method, path, json={} if method == "POST" else None)
        assert response.status == 404, path
