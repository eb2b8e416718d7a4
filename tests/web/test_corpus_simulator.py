"""The corpus of real-looking replies (tests/corpus/grades.tsv) in the simulator's WeChat chat, the third
path of test_corpus_channels.py (a module of its own: the simulator runs only without providers).

Every third row, every kind of reply among them: the simulator hands a text to the same inbound road as the
WeChat webhook (bot/inbound/conversation.py), which test_corpus_channels.py drives with all 625 rows; what
is the simulator's own (its session, its case, its chat log) is the same for any row.
"""

from __future__ import annotations

import pytest
from corpus_support import BAD, ROWS, check, said
from helpers import Hcp, without_providers

from bot.infra.config import Settings
from dialogs import messages as m


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The embedded default's providers (none), where the simulator is on."""
    return without_providers(settings)


async def test_the_corpus_in_the_simulators_wechat_chat(hcp: Hcp) -> None:
    thanks = said(hcp, m.THANKS)
    wrong = []
    headers = {"Origin": "https://hcp.example.gov.cn"}
    for row in ROWS[::3]:
        hcp.client.session.cookie_jar.clear()
        resp = await hcp.client.post("/simulator/api/reset", json={}, headers=headers)
        cookie = resp.cookies["hcp_sim"].value
        send = {"Cookie": f"hcp_sim={cookie}", **headers}
        resp = await hcp.client.post("/simulator/api/case", json={"channel": "wechat"}, headers=send)
        [case] = (await resp.json())["cases"]
        resp = await hcp.client.post("/simulator/api/text", json={"channel": "wechat", "text": row.reply},
                                     headers=send)
        doc = await resp.json()
        assert resp.status == 200, doc
        first = "\n".join(e["text"] for e in doc["wechat"] if e["dir"] == "out")
        reasons_asked = "服务态度差" in first
        if reasons_asked and row.expected in BAD:
            resp = await hcp.client.post("/simulator/api/text", json={"channel": "wechat", "text": "1"},
                                         headers=send)
            doc = await resp.json()
        stored = [(e["grade"], e["reasons"]) for c in doc["cases"] if c["case_no"] == case["case_no"]
                  for e in c["evaluations"]]
        asked_again = "待评价" in first and "1非常满意" in first
        problem = check(row, first, thanks, reasons_asked, asked_again, stored)
        if problem:
            wrong.append(problem)
    assert not wrong, "\n".join(wrong)
